"""Pure-Python core: settings, observable state, money, errors, paths and logging (no Qt)."""
