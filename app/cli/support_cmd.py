"""``cocoon-provider support-bundle FILE``: logs, settings, the doctor report and versions in one
redacted zip to attach to a bug report (see :mod:`app.core.support_bundle` for what goes in)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
from typing import Any

from app.cli.context import CliContext
from app.cli.doctor_cmd import build_report
from app.core.logs import FILE_ONLY, redact
from app.core.support_bundle import REPORT_NAME, check_target, write_support_bundle

_log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "support-bundle",
        help="write a zip for support: logs, settings, doctor report (secrets removed)",
        description="Write FILE, a zip with the logs, settings, the doctor report and versions "
        "for a bug report. Secrets, TON addresses, IP addresses and anything prompt-like are "
        f"removed first; {REPORT_NAME.rsplit('/', 1)[-1]} inside lists what (kinds and counts "
        "only). Wallet files, databases and models are never included.",
    )
    parser.add_argument("file", type=Path, metavar="FILE", help="the zip file to write")
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, ctx: CliContext) -> int:
    target: Path = args.file.expanduser()
    check_target(target, overwrite=args.force)  # refuse before the slower doctor run
    doctor = asyncio.run(_doctor(ctx))
    result = write_support_bundle(target, ctx.paths, doctor, overwrite=args.force)
    print(
        f"Wrote {result.path}: {len(result.entries)} files, {result.redacted} items redacted "
        f"(see {REPORT_NAME.rsplit('/', 1)[-1]} inside)."
    )
    return 0


async def _doctor(ctx: CliContext) -> dict[str, Any]:
    try:
        return await build_report(ctx)
    except Exception as exc:  # a bundle is most needed when something is broken: keep going
        _log.warning("doctor report failed for the support bundle", exc_info=True, extra=FILE_ONLY)
        return {"error": f"{type(exc).__name__}: {redact(str(exc))}"}
