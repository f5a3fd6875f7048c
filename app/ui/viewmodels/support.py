"""``SupportViewModel``: the Settings page's "Create support bundle…" command.

The bundle writer does blocking file I/O, so it runs in a worker thread; the doctor report comes
from an injected coroutine. By default that is the CLI's own ``doctor --json`` run as a child
process: the report's code lives in the CLI layer, which the UI must not import, and one report
format for both paths is what support wants.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Final

from app.core.errors import UserFacingError
from app.core.logs import redact
from app.core.paths import AppPaths
from app.core.support_bundle import BundleResult, write_support_bundle
from app.ui.viewmodels.wallet import Failure

DOCTOR_LIMIT_S: Final = 120.0
DoctorReport = Callable[[], Awaitable[Mapping[str, Any]]]


class SupportViewModel:
    """Writes support bundles of one data folder; failures come back as :class:`Failure`."""

    def __init__(self, paths: AppPaths, doctor: DoctorReport) -> None:
        self._paths = paths
        self._doctor = doctor

    @classmethod
    def for_data_dir(cls, data_dir: Path, network: str) -> SupportViewModel:
        paths = AppPaths(data_dir)
        return cls(paths, lambda: doctor_from_cli(paths, network))

    async def create_bundle(self, target: Path) -> BundleResult | Failure:
        """Write the bundle to ``target``; the file dialog has already confirmed replacing it."""
        try:
            doctor = await self._doctor()
        except Exception as exc:  # the bundle is most needed when something is broken
            doctor = {"error": f"{type(exc).__name__}: {redact(str(exc))}"}
        try:
            return await asyncio.to_thread(
                write_support_bundle, target, self._paths, doctor, overwrite=True
            )
        except UserFacingError as exc:
            return Failure(exc.describe())


async def doctor_from_cli(paths: AppPaths, network: str) -> Mapping[str, Any]:
    """``cocoon-provider doctor --json`` for ``paths`` in a child process, or ``{"error": …}``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "--data-dir",
        str(paths.data_dir),
        "--network",
        network,
        "doctor",
        "--json",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "COCOON_PROVIDER_QUIET_LOGS": "1"},
    )
    out: bytes | None = None
    try:
        async with asyncio.timeout(DOCTOR_LIMIT_S):
            out, _ = await process.communicate()
    except TimeoutError:
        pass
    finally:
        if process.returncode is None:  # timed out or cancelled: the child must not linger
            process.kill()
    if out is None:
        await process.wait()
        return {"error": f"doctor did not finish within {DOCTOR_LIMIT_S:.0f} s"}
    if process.returncode != 0:
        return {"error": f"doctor exited with status {process.returncode}"}
    try:
        report: Mapping[str, Any] = json.loads(out)
    except ValueError:
        return {"error": "doctor printed no JSON report"}
    return report
