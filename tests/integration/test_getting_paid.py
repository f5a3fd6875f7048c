"""From served tokens to TON in the owner's wallet, as a user runs it: a fresh data folder,
``run --headless`` on the local network (fast cadence), then ``earnings --json`` and ``wallet
balance --json``; a restart shows the same voucher state.

The backend is the mock OpenAI server in this process (fast, deterministic usage); everything
else is the real app in a child process: test proxy, worker, SQLite ledger, node wallet, worker
and proxy contracts on the simulated chain.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.core.money import format_ton
from app.devnet.mock_backend import MockBackend, MockBackendConfig

ROOT = Path(__file__).parents[2]
MODEL = "Qwen/Qwen3-8B"
PASSWORD = "correct horse battery staple"
# Fast cadence: the proxy commits every 0.2 s and anchors every 2 s, the policy looks every
# 2 s and cashes out as soon as the fee is at most the amount.
SETTINGS = """schema_version = 2
[devnet]
demand_requests_per_minute = {demand}
db_commit_every_ms = 200
chain_commit_every_ms = 2000
[payouts]
threshold_nanoton = 0
max_fee_percent = 100
check_every_s = 2
"""


@pytest.fixture
async def backend() -> AsyncIterator[MockBackend]:
    mock = MockBackend(MockBackendConfig(model=MODEL))
    await mock.start()
    yield mock
    await mock.aclose()


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}}
    env.pop("QT_QPA_PLATFORM", None)
    env.update(PYTHONPATH=str(ROOT), COCOON_PROVIDER_PASSWORD=PASSWORD)
    return env


async def _cli(data: Path, *args: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "--data-dir",
        str(data),
        *args,
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
        cwd=ROOT,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    document: dict[str, Any] = json.loads(out)
    return document


class Headless:
    """``run --headless`` in a child process; its status lines as they come."""

    def __init__(self, data: Path, backend: MockBackend) -> None:
        self.data, self.backend = data, backend
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Headless:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "--data-dir",
            str(self.data),
            "run",
            "--headless",
            "--backend-url",
            self.backend.url,
            "--model",
            MODEL,
            "--status-interval",
            "0.5",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=_env(),
            cwd=ROOT,
        )
        return self

    async def until(self, predicate: Any, limit_s: float) -> str:
        assert self.proc is not None
        assert self.proc.stdout is not None
        async with asyncio.timeout(limit_s):
            while True:
                raw = await self.proc.stdout.readline()
                assert raw, f"the worker exited: {self.lines[-5:]}"
                line = raw.decode().rstrip()
                self.lines.append(line)
                if predicate(line):
                    return line

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.proc.communicate(), 30)
        assert self.proc.returncode == 0, self.lines[-5:]


@pytest.mark.slow
@pytest.mark.allow_log_warnings  # the in-process mock backend logs answers cut off by the stop
async def test_earnings_reach_the_owners_wallet_exactly(
    tmp_path: Path, backend: MockBackend
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "settings.toml").write_text(SETTINGS.format(demand=3000))
    async with Headless(data, backend) as run:
        created = await run.until(lambda line: "Created a wallet" in line, 60)
        # Two payouts into the owner's wallet (each after a voucher of at least the fee).
        await run.until(lambda line: "paid 0 TON" not in line and " paid " in line, 150)
        first = await _cli(data, "earnings")
        await run.until(
            lambda line: (
                " paid " in line and _paid_ton(line) > first["totals"]["paid_nanoton"] / 1e9
            ),
            150,
        )
    assert "it holds local-network test TON only" in created

    ledger = await _cli(data, "earnings")
    wallet = await _cli(data, "wallet", "balance")
    totals = ledger["totals"]
    payouts = [p for p in ledger["payouts"] if p["kind"] == "payout"]
    assert len(payouts) >= 2
    assert all(p["state"] == "paid" and p["tx_hash"] for p in payouts)
    # The owner's wallet received exactly what the ledger says was paid, and nothing else.
    assert wallet["balance_nanoton"] == totals["paid_nanoton"]
    assert totals["paid_nanoton"] == sum(p["amount_nanoton"] for p in payouts)
    assert totals["earned_nanoton"] >= totals["vouchered_nanoton"] >= totals["paid_nanoton"] > 0
    [proxy] = ledger["proxies"]
    assert proxy["paid_tokens"] * proxy["fee_per_token_nanoton"] == totals["paid_nanoton"]
    assert proxy["owner"] == wallet["address"]

    # A restart (no new demand) shows the same vouchers and payouts from the first line on.
    (data / "settings.toml").write_text(SETTINGS.format(demand=0))
    async with Headless(data, backend) as again:
        line = await again.until(lambda line: "vouchered" in line, 60)
        await again.until(lambda line: "proxies 1" in line, 60)
    assert f"paid {_fmt(totals['paid_nanoton'])} TON" in line
    after = await _cli(data, "earnings")
    assert after["totals"]["paid_nanoton"] == totals["paid_nanoton"]
    [proxy_after] = after["proxies"]
    assert proxy_after["voucher_tokens"] >= proxy["voucher_tokens"]
    assert proxy_after["paid_tokens"] == proxy["paid_tokens"]
    assert not any("Created a wallet" in text for text in again.lines)


def _paid_ton(line: str) -> float:
    return float(line.split(" paid ")[1].split()[0])


def _fmt(nanoton: int) -> str:
    return format_ton(nanoton, trim=True)
