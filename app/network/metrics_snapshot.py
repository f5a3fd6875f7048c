"""What the metrics endpoint reports: :class:`MetricsSnapshot`, built purely from the snapshots
the services publish, and :class:`RunningTotals`, which keep per-session counters monotonic for the
whole process (an earning session's serving status starts again from zero at every Start)."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.billing import TokensUsed
from app.engine.telemetry import TelemetrySnapshot
from app.network.earning import EarningStatus

# The ``kind`` label of ``cocoon_provider_tokens_total``, in the order the format lists them.
TOKEN_KINDS = ("prompt", "cached", "completion", "reasoning")


@dataclass(frozen=True, slots=True)
class GpuMetrics:
    """One GPU's latest reading (``None``: the GPU does not report it, or has no sample yet)."""

    index: int
    name: str
    temperature_c: int | None = None
    power_w: float | None = None
    utilization_ratio: float | None = None


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """The app's figures at one moment. ``served``, ``failed``, ``tokens`` and ``engine_restarts``
    count within the current earning session (``None``: no session, or no engine of its own);
    the nanoton figures are the ledger's totals."""

    served: int | None = None
    failed: int | None = None
    tokens: TokensUsed | None = None
    engine_restarts: int | None = None
    proxy_connections: int = 0
    earned_nanotons: int = 0
    vouchered_nanotons: int = 0
    paid_nanotons: int = 0
    gpus: tuple[GpuMetrics, ...] = ()


def snapshot_of(
    earning: EarningStatus,
    telemetry: TelemetrySnapshot,
    *,
    earned_nanotons: int = 0,
    vouchered_nanotons: int = 0,
    paid_nanotons: int = 0,
) -> MetricsSnapshot:
    """The metrics of one earning status, telemetry snapshot and the ledger's totals."""
    serving = earning.serving
    gpus = tuple(
        GpuMetrics(
            index=reading.index,
            name=reading.name,
            temperature_c=reading.sample.temperature_c,
            power_w=reading.sample.power_w,
            utilization_ratio=(
                None
                if reading.sample.gpu_util_percent is None
                else reading.sample.gpu_util_percent / 100
            ),
        )
        if reading.sample is not None
        else GpuMetrics(index=reading.index, name=reading.name)
        for reading in telemetry.gpus
    )
    return MetricsSnapshot(
        served=None if serving is None else serving.served,
        failed=None if serving is None else serving.failed,
        tokens=None if serving is None else serving.tokens,
        engine_restarts=None if earning.engine is None else earning.engine.restarts,
        proxy_connections=0 if earning.worker is None else earning.worker.connected_proxies,
        earned_nanotons=earned_nanotons,
        vouchered_nanotons=vouchered_nanotons,
        paid_nanotons=paid_nanotons,
        gpus=gpus,
    )


class SessionCounter:
    """A count that each earning session starts from zero, summed over every session.

    A session ends when its value disappears (``None``) or goes down (a new session already
    counting); what it had counted stays in the total.
    """

    __slots__ = ("_current", "_done")

    def __init__(self) -> None:
        self._done = 0  # what the sessions that ended counted
        self._current = 0

    def observe(self, value: int | None) -> int:
        if value is None or value < self._current:
            self._done += self._current
            self._current = 0
        if value is not None:
            self._current = value
        return self.total

    @property
    def total(self) -> int:
        return self._done + self._current


class HighWater:
    """A total that is only ever reported rising (the ledger's sums can be recomputed lower)."""

    __slots__ = ("_value",)

    def __init__(self) -> None:
        self._value = 0

    def observe(self, value: int) -> int:
        self._value = max(self._value, value)
        return self._value


@dataclass(frozen=True, slots=True)
class Totals:
    """The counters' values for the process lifetime; ``tokens`` maps a kind to its count."""

    served: int = 0
    failed: int = 0
    tokens: tuple[tuple[str, int], ...] = tuple((kind, 0) for kind in TOKEN_KINDS)
    engine_restarts: int = 0
    earned_nanotons: int = 0
    paid_nanotons: int = 0


class RunningTotals:
    """Feeds each :class:`MetricsSnapshot` into the counters; :meth:`observe` returns the totals.

    Observe often (every change of the earning status) so that no session is missed: a session
    whose value is never seen before the next one starts is lost to the totals.
    """

    def __init__(self) -> None:
        self._served = SessionCounter()
        self._failed = SessionCounter()
        self._tokens = {kind: SessionCounter() for kind in TOKEN_KINDS}
        self._restarts = SessionCounter()
        self._earned = HighWater()
        self._paid = HighWater()

    def observe(self, snapshot: MetricsSnapshot) -> Totals:
        tokens = snapshot.tokens
        by_kind: dict[str, int | None] = {
            "prompt": None if tokens is None else tokens.prompt_tokens_used,
            "cached": None if tokens is None else tokens.cached_tokens_used,
            "completion": None if tokens is None else tokens.completion_tokens_used,
            "reasoning": None if tokens is None else tokens.reasoning_tokens_used,
        }
        return Totals(
            served=self._served.observe(snapshot.served),
            failed=self._failed.observe(snapshot.failed),
            tokens=tuple((kind, self._tokens[kind].observe(by_kind[kind])) for kind in TOKEN_KINDS),
            engine_restarts=self._restarts.observe(snapshot.engine_restarts),
            earned_nanotons=self._earned.observe(snapshot.earned_nanotons),
            paid_nanotons=self._paid.observe(snapshot.paid_nanotons),
        )
