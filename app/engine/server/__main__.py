"""Entry point of the engine child: ``python -m app.engine.server --model PATH ...``."""

from __future__ import annotations

import asyncio
import logging
import sys

from app.core.logs import configure_logging
from app.engine.server.model import ModelLoadError
from app.engine.server.options import OptionsError, parse_options
from app.engine.server.runner import serve

EXIT_USAGE = 2
EXIT_FAILED = 1


def main() -> int:
    configure_logging(None, "INFO", stream=sys.stderr)
    log = logging.getLogger("app.engine.server")
    try:
        options = parse_options()
    except OptionsError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    try:
        return asyncio.run(serve(options))
    except (ModelLoadError, OptionsError) as exc:
        log.error("%s", exc)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
