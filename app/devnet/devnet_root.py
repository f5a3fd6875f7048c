"""The local test network's root-contract configuration: ``resources/devnet/root-config.json``.

A fake-TON configuration (docs/protocol.md §6.5) with the reference's contract codes and the
devnet's prices; ``resources/devnet/SOURCE.md`` records where it comes from and why those prices.
"""

from __future__ import annotations

import functools

from app.core.paths import resources_dir
from app.network.root_config import RootConfig, RootConfigError, parse_fake_ton_config


@functools.cache
def devnet_root_config() -> RootConfig:
    """The bundled devnet root configuration (read once; a ``RootConfig`` is immutable)."""
    path = resources_dir() / "devnet" / "root-config.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RootConfigError(
            f"The local network's root configuration {path} is missing.", hint="Reinstall the app."
        ) from None
    return parse_fake_ton_config(text)
