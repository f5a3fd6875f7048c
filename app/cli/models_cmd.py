"""``cocoon-provider models``: the models this app can serve, which are installed, and downloading
one (resumable, free-disk checked, SHA-256 verified)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from app.cli.context import CliContext
from app.engine.catalog import ModelEntry, installed_models, load_catalog
from app.engine.download import DownloadProgress, ModelDownloader
from app.engine.sizing import gib_text


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser("models", help="list the servable models, or download one")
    actions = parser.add_subparsers(dest="models_action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every model in the catalog and whether it is here")
    listing.add_argument("--json", action="store_true", help="print one JSON document")
    listing.set_defaults(handler=list_models)
    fetch = actions.add_parser("download", help="download a model (resumes a broken download)")
    fetch.add_argument("name", help="the model's name, as 'models list' shows it")
    fetch.set_defaults(handler=download_model)


def list_models(args: argparse.Namespace, ctx: CliContext) -> int:
    catalog = load_catalog()
    here = installed_models(catalog, ctx.paths.models_dir)
    rows: list[dict[str, Any]] = [
        {
            "name": m.name,
            "installed": m.name in here,
            "bundled": m.bundled,
            "size_bytes": m.size_bytes,
            "min_vram_bytes": m.min_vram_bytes,
            "min_ram_bytes": m.min_ram_bytes,
            "license": m.license,
        }
        for m in catalog.models
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        mark = "installed" if row["installed"] else "—"
        print(
            f"{row['name']:<40} {gib_text(row['size_bytes']):>9}  "
            f"needs {gib_text(row['min_vram_bytes'])} GPU / {gib_text(row['min_ram_bytes'])} RAM"
            f"  {mark}"
        )
    return 0


def download_model(args: argparse.Namespace, ctx: CliContext) -> int:
    model = load_catalog().get(args.name)
    return asyncio.run(_download(ctx, model))


async def _download(ctx: CliContext, model: ModelEntry) -> int:
    downloader = ModelDownloader(ctx.paths.models_dir)
    unsubscribe = downloader.progress.subscribe(_show_progress)
    try:
        path = await downloader.download(model)
    finally:
        unsubscribe()
        await downloader.aclose()
    print(f"\n{model.name} is ready: {path}")
    return 0


def _show_progress(progress: DownloadProgress) -> None:
    if progress.state == "downloading" and progress.total_bytes:
        print(
            f"\r{progress.state} {progress.fraction:6.1%} of {gib_text(progress.total_bytes)}",
            end="",
            file=sys.stderr,
            flush=True,
        )
    elif progress.state in {"checking", "verifying"}:
        print(f"\r{progress.state}…", end="", file=sys.stderr, flush=True)
