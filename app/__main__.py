"""Entry points: ``python -m app`` / ``cocoon-provider`` (CLI) and ``cocoon-provider-gui``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from app.cli.main import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    return cli_main(argv)


def gui_main() -> int:
    return cli_main(["gui", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
