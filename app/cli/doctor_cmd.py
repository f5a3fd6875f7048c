"""``cocoon-provider doctor``: what this computer can do and what the app is doing — GPUs, driver,
sandbox, model, benchmark, recent jobs and wallets — for people and (``--json``) for support.

Public facts only: no secrets, no prompts or answers (the job store never has them).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import platform
import sys
from typing import Any

from app import __version__
from app.bootstrap import build_job_store, network_root, pipeline_snapshot
from app.cli.context import CliContext
from app.core.errors import UserFacingError
from app.engine.benchmark import BenchmarkCache, model_sha256
from app.engine.benchmark_runner import benchmark_key
from app.engine.catalog import load_catalog
from app.engine.gpu_probe import GpuInventory, gpu_report, probe
from app.engine.planning import EnginePlan, plan_engine
from app.engine.sandbox import detect_sandbox
from app.engine.tee import probe_tee
from app.network.dialer import dialer_for
from app.network.reachability import check_proxies
from app.network.worker_config import parse_host_port
from app.wallet.vault import VAULT_SUFFIX, WalletVault
from app.wallet.vault_format import VaultError

JOBS_IN_REPORT = 20


def register(sub: argparse._SubParsersAction[Any]) -> None:
    parser = sub.add_parser(
        "doctor",
        help="check this computer: GPUs, driver, sandbox, model, benchmark, jobs",
        description="Report what this computer can do and what the app has done, for you or "
        "for support. Contains no secrets and no request texts.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, ctx: CliContext) -> int:
    report = asyncio.run(build_report(ctx))
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(render(report))
    return 0


async def build_report(ctx: CliContext) -> dict[str, Any]:
    settings = ctx.settings.current.value
    inventory = await probe()
    sandbox = await asyncio.to_thread(detect_sandbox)
    model, plan = _model_section(inventory, ctx)
    return {
        "app": {
            "version": __version__,
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "data_dir": str(ctx.paths.data_dir),
            "log_file": str(ctx.paths.log_file),
            "network": ctx.network,
        },
        "gpus": gpu_report(inventory),
        "sandbox": {"level": sandbox.level.value, "reason": sandbox.reason},
        "model": model,
        "benchmark": await _benchmark_section(ctx, inventory, plan),
        "engine_settings": {
            "model": settings.engine.model or "(automatic)",
            "backend_url": settings.engine.backend_url or "(built-in engine)",
            "temperature_cap_c": settings.engine.temperature_cap_c,
            "power_cap_w": settings.engine.power_cap_w,
        },
        "jobs": await _jobs_section(ctx),
        "wallets": _wallets_section(ctx),
        "pipeline": (await pipeline_snapshot(ctx.paths, ctx.network, settings)).to_json(),
        "tee": (await asyncio.to_thread(probe_tee)).to_json(),
        "proxies": await _proxies_section(ctx),
    }


async def _proxies_section(ctx: CliContext) -> list[dict[str, Any]]:
    """Each configured custom proxy dialled as the worker would, up to the runner framing."""
    worker = ctx.settings.current.value.worker
    if ctx.network != "custom":
        return []
    try:
        targets = [parse_host_port(p, what="proxy address") for p in worker.proxies]
        root = network_root(ctx.network, ctx.settings.current.value)
        if root is not None:
            targets += [p for p in root.proxy_addresses if p not in targets]
        router = worker.router_socks5.strip()
        dial = dialer_for(
            router_socks5=parse_host_port(router, what="router SOCKS5 address") if router else None,
            router_leg="" if worker.plain_tcp else worker.router_policy,
        )
    except UserFacingError as exc:
        return [{"address": "", "ok": False, "detail": exc.describe()}]
    return [dataclasses.asdict(check) for check in await check_proxies(targets, dial)]


def _model_section(
    inventory: GpuInventory, ctx: CliContext
) -> tuple[dict[str, Any], EnginePlan | None]:
    try:
        catalog = load_catalog()
        plan = plan_engine(
            inventory, catalog, ctx.settings.current.value.engine, ctx.paths.models_dir
        )
    except UserFacingError as exc:
        return {"ok": False, "error": exc.describe()}, None
    launch = plan.launch
    return {
        "ok": True,
        "name": plan.choice.model.name,
        "device": plan.device_label,
        "why": plan.choice.reason,
        "file": str(launch.model_path),
        "size_bytes": plan.choice.model.size_bytes,
        "license": plan.choice.model.license,
        "context_per_request": launch.context_length,
        "parallel_requests": launch.parallel,
        "threads": launch.threads,
        "gpu_layers": launch.gpu_layers,
    }, plan


async def _benchmark_section(
    ctx: CliContext, inventory: GpuInventory, plan: EnginePlan | None
) -> dict[str, Any] | None:
    if plan is None:
        return None
    sha = await model_sha256(plan.launch.model_path, plan.choice.model.sha256)
    key = benchmark_key(inventory, plan.gpu, sha)
    result = BenchmarkCache(ctx.paths.cache_dir).load(key)
    if result is None:
        return {"cached": False, "hint": "Run 'cocoon-provider bench' to measure this computer."}
    return {"cached": True, **result.to_json()}


async def _jobs_section(ctx: CliContext) -> dict[str, Any]:
    if not ctx.paths.jobs_db.exists():
        return {"today": None, "recent": []}
    store = build_job_store(ctx.paths)
    await store.start()
    try:
        today = await store.today_totals()
        recent = json.loads(await store.export_json(JOBS_IN_REPORT))
    finally:
        await store.aclose()
    return {
        "today": None if today is None else dataclasses.asdict(today),
        "recent": recent,
    }


def _wallets_section(ctx: CliContext) -> list[dict[str, Any]]:
    wallets: list[dict[str, Any]] = []
    for path in sorted(ctx.paths.wallets_dir.glob(f"*{VAULT_SUFFIX}")):
        try:
            public = WalletVault.load(path).public
        except VaultError as exc:
            wallets.append({"file": path.name, "error": exc.message})
            continue
        wallets.append(
            {
                "address": public.address,
                "version": public.wallet_version.value,
                "network": public.network.value,
            }
        )
    return wallets


def render(report: dict[str, Any]) -> str:
    """The report as a few readable lines."""
    app, gpus, sandbox, model = report["app"], report["gpus"], report["sandbox"], report["model"]
    lines = [
        f"cocoon-provider {app['version']} · Python {app['python']} · {app['platform']}",
        f"Data folder: {app['data_dir']}  (network: {app['network']})",
        "",
        f"GPUs:     {_gpu_line(gpus)}",
        f"Sandbox:  {sandbox['level']} — {sandbox['reason']}",
    ]
    if model["ok"]:
        lines.append(
            f"Model:    {model['name']} on {model['device']} · {model['parallel_requests']} at "
            f"once · {model['context_per_request']} tokens each"
        )
    else:
        lines.append(f"Model:    problem — {model['error']}")
    bench = report["benchmark"]
    if bench is None or not bench.get("cached"):
        lines.append("Benchmark: not run yet (cocoon-provider bench)")
    else:
        lines.append("Benchmark: cached result available (see --json)")
    today = report["jobs"].get("today")
    if today:
        lines.append(
            f"Jobs today: {today['succeeded']} served, {today['failed']} failed, "
            f"{today['adjusted_tokens']} tokens"
        )
    wallets = report["wallets"]
    lines.append(
        f"Wallets:  {len(wallets)}" + "".join(f"\n  {w.get('address', w)}" for w in wallets)
    )
    lines += ["", "Confidential computing (what official COCOON proxies require):"]
    for check in report["tee"]:
        lines.append(f"  {'✓' if check['ok'] else '✗'} {check['title']}: {check['reason']}")
    if report["proxies"]:
        lines += ["", "Proxies (dialled as the worker would):"]
        for proxy in report["proxies"]:
            mark = "✓" if proxy["ok"] else "✗"
            lines.append(f"  {mark} {proxy['address']}: {proxy['detail']}")
    lines += ["", "Why earning works or not (the app's own dashboard shows it live):"]
    for stage in report["pipeline"]:
        mark = {"ok": "✓", "blocked": "✗", "waiting": "…", "skipped": "-"}[stage["state"]]
        lines.append(f"  {mark} {stage['title']}: {stage['reason']}")
        if stage["fix"] and stage["state"] in ("blocked", "waiting"):
            lines.append(f"      → {stage['fix']}")
    return "\n".join(lines)


def _gpu_line(gpus: dict[str, Any]) -> str:
    found = gpus.get("gpus") or []
    if not found:
        return str(gpus.get("message") or gpus.get("state"))
    names = ", ".join(f"{g.get('name')} ({g.get('index')})" for g in found)
    return f"{names} · driver {gpus.get('driver_version')}"
