"""Dialogs of the desktop UI (wallet creation, import, withdrawal, passwords)."""
