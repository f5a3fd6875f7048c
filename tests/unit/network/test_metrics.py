"""The metrics endpoint's pure parts: the text format (HELP/TYPE, escaping, values), the snapshot
built from the services' state, counters that survive a Stop/Start, the lag sampler, the token."""

from __future__ import annotations

import asyncio
import math
import re

import pytest
from keyring.backend import KeyringBackend

from app.core.billing import TokensUsed
from app.core.errors import UserFacingError
from app.engine.gpu_sample import GpuSample
from app.engine.supervisor import EngineStatus
from app.engine.telemetry import GpuReading, TelemetrySnapshot
from app.network.earning import EarningStatus
from app.network.metrics_auth import (
    METRICS_TOKEN_ENV,
    authorised,
    is_loopback,
    read_metrics_token,
    require_token,
)
from app.network.metrics_format import (
    escape_help,
    escape_label_value,
    format_value,
    render_metrics,
)
from app.network.metrics_lag import LoopLagSampler
from app.network.metrics_snapshot import (
    GpuMetrics,
    MetricsSnapshot,
    RunningTotals,
    Totals,
    snapshot_of,
)
from app.network.request_server import ServingStatus
from app.network.worker import WorkerStatus
from tests.conftest import MemoryKeyring

EXPECTED = {
    "cocoon_provider_up": "gauge",
    "cocoon_provider_requests_served_total": "counter",
    "cocoon_provider_requests_failed_total": "counter",
    "cocoon_provider_tokens_total": "counter",
    "cocoon_provider_earned_nanotons_total": "counter",
    "cocoon_provider_vouchered_nanotons": "gauge",
    "cocoon_provider_paid_nanotons_total": "counter",
    "cocoon_provider_proxy_connections": "gauge",
    "cocoon_provider_engine_restarts_total": "counter",
    "cocoon_provider_gpu_info": "gauge",
    "cocoon_provider_gpu_temperature_celsius": "gauge",
    "cocoon_provider_gpu_power_watts": "gauge",
    "cocoon_provider_gpu_utilization_ratio": "gauge",
    "cocoon_provider_event_loop_lag_seconds": "gauge",
}
EVERY_INTERFACE = "0.0.0.0"  # noqa: S104 - what the refusal is about
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<labels>.*)\})? (?P<value>\S+)$")


def _sample() -> GpuSample:
    return GpuSample(
        taken_at=1.0,
        temperature_c=70,
        fan_percent=None,
        power_mw=123_500,
        power_limit_mw=None,
        gpu_util_percent=50,
        memory_util_percent=None,
        graphics_clock_mhz=None,
        sm_clock_mhz=None,
        memory_clock_mhz=None,
        throttle_reasons=None,
        energy_mj=None,
        vram_used_bytes=None,
        vram_total_bytes=None,
        processes=None,
    )


def _session(served: int, failed: int = 0, prompt: int = 0, restarts: int = 0) -> MetricsSnapshot:
    return MetricsSnapshot(
        served=served,
        failed=failed,
        tokens=TokensUsed(prompt_tokens_used=prompt, total_tokens_used=prompt),
        engine_restarts=restarts,
    )


def _parse(text: str) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str, str]]]:
    helps: dict[str, str] = {}
    types: dict[str, str] = {}
    samples: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, text_ = line[len("# HELP ") :].partition(" ")
            helps[name] = text_
        elif line.startswith("# TYPE "):
            name, _, kind = line[len("# TYPE ") :].partition(" ")
            assert name in helps, f"TYPE before HELP for {name}"
            types[name] = kind
        else:
            match = SAMPLE.match(line)
            assert match is not None, line
            assert match["name"] in types, f"a sample of {match['name']} before its TYPE"
            samples.append((match["name"], match["labels"] or "", match["value"]))
    return helps, types, samples


def test_every_metric_has_help_and_type_lines_before_its_samples() -> None:
    snapshot = MetricsSnapshot(gpus=(GpuMetrics(0, "RTX", 70, 120.5, 0.5),))
    text = render_metrics(snapshot, Totals(), loop_lag_s=0.0)
    assert text.endswith("\n")
    helps, types, samples = _parse(text)
    assert types == EXPECTED
    assert all(helps[name] for name in EXPECTED)
    names = {name for name, _, _ in samples}
    assert names == set(EXPECTED)
    assert ("cocoon_provider_up", "", "1") in samples


def test_counters_follow_the_naming_conventions() -> None:
    for name, kind in EXPECTED.items():
        assert name.startswith("cocoon_provider_")
        assert name.endswith("_total") == (kind == "counter"), name


def test_tokens_have_one_sample_per_kind() -> None:
    totals = RunningTotals().observe(
        MetricsSnapshot(
            served=1,
            failed=0,
            tokens=TokensUsed(1, 2, 3, 4, 10),
        )
    )
    _, _, samples = _parse(render_metrics(MetricsSnapshot(), totals, loop_lag_s=0.0))
    tokens = {labels: value for name, labels, value in samples if name.endswith("tokens_total")}
    assert tokens == {
        'kind="prompt"': "1",
        'kind="cached"': "2",
        'kind="completion"': "3",
        'kind="reasoning"': "4",
    }


def test_label_values_and_help_are_escaped() -> None:
    assert escape_label_value('a\\b "c"\nd') == 'a\\\\b \\"c\\"\\nd'
    assert escape_help('say "hi"\\\nbye') == 'say "hi"\\\\\\nbye'
    snapshot = MetricsSnapshot(gpus=(GpuMetrics(3, 'GPU "X"\\\n'),))
    text = render_metrics(snapshot, Totals(), loop_lag_s=0.0)
    assert 'cocoon_provider_gpu_info{gpu="3",name="GPU \\"X\\"\\\\\\n"} 1\n' in text
    # Every sample is still one line.
    _parse(text)


def test_a_gpu_without_a_reading_has_only_its_info_line() -> None:
    snapshot = MetricsSnapshot(gpus=(GpuMetrics(0, "A"), GpuMetrics(1, "B", 60, None, 0.25)))
    _, _, samples = _parse(render_metrics(snapshot, Totals(), loop_lag_s=0.0))
    gpu = [(n, labels, v) for n, labels, v in samples if n.startswith("cocoon_provider_gpu_")]
    assert gpu == [
        ("cocoon_provider_gpu_info", 'gpu="0",name="A"', "1"),
        ("cocoon_provider_gpu_info", 'gpu="1",name="B"', "1"),
        ("cocoon_provider_gpu_temperature_celsius", 'gpu="1"', "60"),
        ("cocoon_provider_gpu_utilization_ratio", 'gpu="1"', "0.25"),
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [(7, "7"), (0.5, "0.5"), (math.nan, "NaN"), (math.inf, "+Inf"), (-math.inf, "-Inf")],
)
def test_values(value: float, text: str) -> None:
    assert format_value(value) == text


def test_the_snapshot_reads_the_earning_status_telemetry_and_ledger() -> None:
    earning = EarningStatus(
        phase="earning",
        engine=EngineStatus(state="ready", restarts=2),
        worker=WorkerStatus(connected_proxies=3),
        serving=ServingStatus(served=9, failed=1, tokens=TokensUsed(5, 0, 7, 0, 12)),
    )
    telemetry = TelemetrySnapshot(
        state="ok",
        message="",
        gpus=(
            GpuReading(0, "RTX 4090", "GPU-0", "ok", "", _sample()),
            GpuReading(1, "RTX 3090", "GPU-1", "hung", "no answer", None),
        ),
    )
    snapshot = snapshot_of(
        earning, telemetry, earned_nanotons=30, vouchered_nanotons=20, paid_nanotons=10
    )
    assert snapshot == MetricsSnapshot(
        served=9,
        failed=1,
        tokens=TokensUsed(5, 0, 7, 0, 12),
        engine_restarts=2,
        proxy_connections=3,
        earned_nanotons=30,
        vouchered_nanotons=20,
        paid_nanotons=10,
        gpus=(GpuMetrics(0, "RTX 4090", 70, 123.5, 0.5), GpuMetrics(1, "RTX 3090")),
    )


def test_no_session_means_no_session_figures() -> None:
    snapshot = snapshot_of(EarningStatus(), TelemetrySnapshot(state="no_gpu", message=""))
    assert snapshot == MetricsSnapshot()


def test_counters_stay_monotonic_across_a_session_reset() -> None:
    totals = RunningTotals()
    seen = [
        totals.observe(s)
        for s in (
            _session(3, failed=1, prompt=30, restarts=1),
            _session(5, failed=1, prompt=50, restarts=1),
            MetricsSnapshot(),  # Stop earning: the session's status is gone
            _session(0),  # Start earning: a new session counts from zero
            _session(2, failed=2, prompt=20),
        )
    ]
    assert [t.served for t in seen] == [3, 5, 5, 5, 7]
    assert [t.failed for t in seen] == [1, 1, 1, 1, 3]
    assert [dict(t.tokens)["prompt"] for t in seen] == [30, 50, 50, 50, 70]
    assert [t.engine_restarts for t in seen] == [1, 1, 1, 1, 1]


def test_a_new_session_seen_only_once_it_counts_still_adds_up() -> None:
    totals = RunningTotals()
    totals.observe(_session(5))
    assert totals.observe(_session(2)).served == 7  # went down: a new session
    assert totals.observe(_session(4)).served == 9


def test_ledger_totals_never_go_down() -> None:
    totals = RunningTotals()
    totals.observe(MetricsSnapshot(earned_nanotons=100, paid_nanotons=40))
    later = totals.observe(MetricsSnapshot(earned_nanotons=90, paid_nanotons=0))
    assert (later.earned_nanotons, later.paid_nanotons) == (100, 40)


def test_the_event_loop_lag_gauge_is_present() -> None:
    _, _, samples = _parse(render_metrics(MetricsSnapshot(), Totals(), loop_lag_s=0.25))
    assert ("cocoon_provider_event_loop_lag_seconds", "", "0.25") in samples


async def test_the_lag_sampler_reports_the_largest_recent_sleep_drift() -> None:
    now = [0.0]
    drifts = iter([0.2, 0.05, 0.0, 0.1])
    slept = asyncio.Event()

    async def sleep(seconds: float) -> None:  # a fake clock: each sleep overshoots by a drift
        drift = next(drifts, None)
        if drift is None:
            slept.set()
            await asyncio.Event().wait()  # the loop stops here until aclose cancels it
            return
        now[0] += seconds + drift

    sampler = LoopLagSampler(interval=1.0, window=3, clock=lambda: now[0], sleep=sleep)
    assert sampler.lag_seconds == 0.0
    await sampler.start()
    try:
        await asyncio.wait_for(slept.wait(), 5)
    finally:
        await sampler.aclose()
    # The window holds the last three (0.05, 0.0, 0.1): the 0.2 has left it.
    assert sampler.lag_seconds == pytest.approx(0.1)
    sampler.record(1.0, 0.5)  # an early wake-up is no lag
    assert sampler.lag_seconds == pytest.approx(0.1)
    await sampler.aclose()  # idempotent


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        (EVERY_INTERFACE, False),
        ("::", False),
        ("192.168.1.5", False),
        ("metrics.example", False),
    ],
)
def test_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_other_computers_need_a_token() -> None:
    require_token("127.0.0.1", "")
    require_token(EVERY_INTERFACE, "secret")
    with pytest.raises(UserFacingError, match="no metrics token is set") as caught:
        require_token(EVERY_INTERFACE, "")
    assert METRICS_TOKEN_ENV in caught.value.hint


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        ("Bearer s3cret", True),
        ("bearer s3cret", True),
        ("Bearer wrong", False),
        ("Basic s3cret", False),
        ("s3cret", False),
        ("", False),
        (None, False),
    ],
)
def test_bearer_header(header: str | None, ok: bool) -> None:
    assert authorised(header, "s3cret") is ok
    assert authorised(header, "") is True  # no token: open (loopback only)


async def test_the_token_comes_from_the_environment_first_then_the_keyring() -> None:
    backend = MemoryKeyring()
    assert await read_metrics_token(environ={}, backend=backend) == ""
    backend.set_password("cocoon-provider", "metrics-token", " from-keyring\n")
    assert await read_metrics_token(environ={}, backend=backend) == "from-keyring"
    env = {METRICS_TOKEN_ENV: "from-env"}
    assert await read_metrics_token(environ=env, backend=backend) == "from-env"


class _BrokenKeyring(KeyringBackend):
    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]

    def get_password(self, service: str, username: str) -> str | None:
        raise RuntimeError("no D-Bus")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("no D-Bus")

    def delete_password(self, service: str, username: str) -> None:
        raise RuntimeError("no D-Bus")


async def test_a_broken_keyring_means_no_token() -> None:
    assert await read_metrics_token(environ={}, backend=_BrokenKeyring()) == ""
