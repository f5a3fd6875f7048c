"""The TON wallet: keys, encrypted vault, chain access (live and simulated), history, withdrawals."""
