"""Reusable widgets of the desktop UI (charts, panels) that pages compose."""
