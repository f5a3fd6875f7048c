"""The TON wallet: keys, encrypted vault, chain access (live, simulated), history, withdrawals."""
