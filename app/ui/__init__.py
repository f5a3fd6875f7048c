"""The PySide6 desktop UI: it observes typed service state and calls async commands."""
