"""The main window's pages: Dashboard, Wallet and Settings."""
