"""The Prometheus text exposition format (version 0.0.4) and the app's metric families in it:
names, types and help texts, label escaping, and :func:`render_metrics` (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from app.network.metrics_snapshot import MetricsSnapshot, Totals

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PREFIX = "cocoon_provider_"
MetricType = Literal["counter", "gauge"]
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Sample:
    """One line of a family: its labels and value."""

    value: float
    labels: Labels = ()


@dataclass(frozen=True, slots=True)
class Family:
    """A metric: ``name`` (without the app prefix), its type, help text and samples."""

    name: str
    type: MetricType
    help: str
    samples: tuple[Sample, ...] = ()


def escape_label_value(value: str) -> str:
    """A label value inside double quotes: backslash, double quote and line feed escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """A HELP text: backslash and line feed escaped (quotes stay as they are)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    """Integers without a decimal point, floats in Go's spelling for the special values."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def render(families: Iterable[Family]) -> str:
    """The exposition text: for each family its HELP and TYPE lines, then its samples."""
    lines: list[str] = []
    for family in families:
        name = PREFIX + family.name
        lines.append(f"# HELP {name} {escape_help(family.help)}")
        lines.append(f"# TYPE {name} {family.type}")
        for sample in family.samples:
            labels = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in sample.labels)
            selector = f"{name}{{{labels}}}" if labels else name
            lines.append(f"{selector} {format_value(sample.value)}")
    return "\n".join(lines) + "\n"


def families(snapshot: MetricsSnapshot, totals: Totals, *, loop_lag_s: float) -> list[Family]:
    """Every metric the endpoint serves, from one snapshot, the running totals and the lag."""
    return [
        Family("up", "gauge", "1 while the app is running and answering.", (Sample(1),)),
        Family(
            "requests_served_total",
            "counter",
            "Inference requests answered since the app started (all earning sessions).",
            (Sample(totals.served),),
        ),
        Family(
            "requests_failed_total",
            "counter",
            "Inference requests that failed since the app started (all earning sessions).",
            (Sample(totals.failed),),
        ),
        Family(
            "tokens_total",
            "counter",
            "Adjusted (billed) tokens served since the app started, by kind.",
            tuple(Sample(count, (("kind", kind),)) for kind, count in totals.tokens),
        ),
        Family(
            "earned_nanotons_total",
            "counter",
            "Nanotons the proxies counted for this worker (the payment ledger's total).",
            (Sample(totals.earned_nanotons),),
        ),
        Family(
            "vouchered_nanotons",
            "gauge",
            "Nanotons covered by signed proxy vouchers (the payment ledger's total).",
            (Sample(snapshot.vouchered_nanotons),),
        ),
        Family(
            "paid_nanotons_total",
            "counter",
            "Nanotons cashed out into the owner's wallet (the payment ledger's total).",
            (Sample(totals.paid_nanotons),),
        ),
        Family(
            "proxy_connections",
            "gauge",
            "COCOON proxies this worker is connected to now.",
            (Sample(snapshot.proxy_connections),),
        ),
        Family(
            "engine_restarts_total",
            "counter",
            "Times the built-in engine was restarted after a crash since the app started.",
            (Sample(totals.engine_restarts),),
        ),
        *_gpu_families(snapshot),
        Family(
            "event_loop_lag_seconds",
            "gauge",
            "The longest delay of the app's event loop over the last seconds (a busy or stuck "
            "loop answers the network late).",
            (Sample(loop_lag_s),),
        ),
    ]


def _gpu_families(snapshot: MetricsSnapshot) -> list[Family]:
    def gpu(index: int) -> Labels:
        return (("gpu", str(index)),)

    return [
        Family(
            "gpu_info",
            "gauge",
            "1 for each GPU the app watches; its name as a label.",
            tuple(Sample(1, (*gpu(g.index), ("name", g.name))) for g in snapshot.gpus),
        ),
        Family(
            "gpu_temperature_celsius",
            "gauge",
            "GPU core temperature.",
            tuple(
                Sample(g.temperature_c, gpu(g.index))
                for g in snapshot.gpus
                if g.temperature_c is not None
            ),
        ),
        Family(
            "gpu_power_watts",
            "gauge",
            "GPU power draw.",
            tuple(Sample(g.power_w, gpu(g.index)) for g in snapshot.gpus if g.power_w is not None),
        ),
        Family(
            "gpu_utilization_ratio",
            "gauge",
            "Share of time the GPU was busy (0 to 1).",
            tuple(
                Sample(g.utilization_ratio, gpu(g.index))
                for g in snapshot.gpus
                if g.utilization_ratio is not None
            ),
        ),
    ]


def render_metrics(snapshot: MetricsSnapshot, totals: Totals, *, loop_lag_s: float) -> str:
    """The ``/metrics`` body."""
    return render(families(snapshot, totals, loop_lag_s=loop_lag_s))
