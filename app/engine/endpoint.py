"""Where an OpenAI-compatible inference backend listens: a Unix socket or a URL, and its API key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from app.core.errors import UserFacingError


@dataclass(frozen=True, slots=True)
class BackendEndpoint:
    """How the worker reaches the inference server.

    ``base_url`` always carries scheme, host and port (for a Unix socket it is a placeholder such
    as ``http://engine``, used for the Host header and paths); ``unix_socket``, when set, is where
    the bytes actually go. ``api_key`` is sent as ``Authorization: Bearer`` when set. ``capacity``
    is how many requests the backend really serves at once (its parallel slots).
    """

    base_url: str
    unix_socket: Path | None = None
    api_key: str | None = None
    capacity: int = 1

    def __repr__(self) -> str:  # never print the key
        key = "set" if self.api_key else "none"
        return (
            f"BackendEndpoint(base_url={self.base_url!r}, unix_socket={self.unix_socket!r}, "
            f"api_key={key}, capacity={self.capacity})"
        )

    @classmethod
    def from_url(cls, url: str, *, capacity: int = 1) -> BackendEndpoint:
        """Parse a user-given ``--backend-url`` (http only; host and port required)."""
        parts = urlsplit(url.strip())
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise UserFacingError(
                f"'{url}' is not a backend URL.",
                hint="Use http://HOST:PORT, e.g. http://127.0.0.1:8000",
            )
        try:
            port = parts.port
        except ValueError as exc:
            raise UserFacingError(f"'{url}' has an invalid port.") from exc
        port = port or (443 if parts.scheme == "https" else 80)
        return cls(base_url=f"{parts.scheme}://{parts.hostname}:{port}", capacity=capacity)
