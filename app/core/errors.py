"""The error hierarchy: every error a user may see carries a plain-language message and a hint."""

from __future__ import annotations


class AppError(Exception):
    """Base of every error this app raises on purpose."""


class UserFacingError(AppError):
    """An error whose message is written for the user, with an optional hint on what to do next.

    ``str(err)`` is the message alone; :meth:`describe` adds the hint. Messages never contain
    secrets: callers pass only public facts (paths, field names, addresses).
    """

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def describe(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class SettingsError(UserFacingError):
    """The settings file or a settings value is invalid."""


class ServiceError(UserFacingError):
    """A long-lived service failed to start or stop."""
