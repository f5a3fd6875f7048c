"""``ThermalGuard``: pauses new requests while a GPU is above the user's temperature or power cap.

It only reads telemetry, unless the user opted in to power control: then it lowers each GPU's
power limit to the cap and restores the original limit when it closes (or power control is
turned off). It never touches clocks or fans.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from app.core.errors import UserFacingError
from app.core.observable import Observable, Unsubscribe
from app.core.settings import EngineSettings
from app.engine.telemetry import GpuCallError, GpuReading, GpuTelemetry, TelemetrySnapshot

_log = logging.getLogger(__name__)

MIN_TEMPERATURE_CAP_C = 50
MAX_TEMPERATURE_CAP_C = 100
MAX_POWER_CAP_W = 2000
# Telemetry states in which "no GPU readings" means nothing yet rather than "no GPU".
_NOT_YET = frozenset({"starting", "stopped"})


class GuardConfigError(UserFacingError):
    """A temperature or power cap that cannot be used."""


@dataclass(frozen=True, slots=True)
class GuardConfig:
    """The user's caps. ``power_cap_w`` None means no power cap (the settings store 0 for that)."""

    temperature_cap_c: int = 80
    power_cap_w: int | None = None
    allow_power_control: bool = False
    # Resume below cap - hysteresis, so a GPU hovering at the cap does not flap on and off.
    hysteresis_c: int = 5
    power_hysteresis_percent: int = 10

    def __post_init__(self) -> None:
        cap = self.temperature_cap_c
        if type(cap) is not int:  # also rejects bools and floats from hand-edited input
            raise GuardConfigError("The temperature limit must be a whole number of °C.")
        if not MIN_TEMPERATURE_CAP_C <= cap <= MAX_TEMPERATURE_CAP_C:
            raise GuardConfigError(
                f"A temperature limit of {cap} °C is outside the safe range.",
                hint=f"Choose {MIN_TEMPERATURE_CAP_C}–{MAX_TEMPERATURE_CAP_C} °C; "
                "80 °C suits most GPUs.",
            )
        if not 1 <= self.hysteresis_c <= 20:
            raise GuardConfigError("The temperature hysteresis must be 1–20 °C.")
        if not 1 <= self.power_hysteresis_percent <= 50:
            raise GuardConfigError("The power hysteresis must be 1–50 %.")
        power = self.power_cap_w
        if power is not None and (type(power) is not int or not 1 <= power <= MAX_POWER_CAP_W):
            raise GuardConfigError(
                f"A power limit of {power!r} W cannot be used.",
                hint=f"Enter 1–{MAX_POWER_CAP_W} W, or 0 to turn the power limit off.",
            )

    @classmethod
    def from_settings(cls, engine: EngineSettings) -> GuardConfig:
        return cls(
            temperature_cap_c=engine.temperature_cap_c,
            power_cap_w=engine.power_cap_w or None,
            allow_power_control=engine.allow_power_control,
        )

    @property
    def controls_power(self) -> bool:
        return self.allow_power_control and self.power_cap_w is not None


@dataclass(frozen=True, slots=True)
class GuardState:
    """Whether the worker may take new requests, and why (a sentence for the dashboard)."""

    accepting: bool
    reason: str
    paused_gpus: tuple[int, ...] = ()
    # (GPU index, limit in mW) for every power limit the guard has changed and not yet restored.
    power_limits_set: tuple[tuple[int, int], ...] = ()
    # Problems with power control (e.g. missing rights); empty when there are none.
    notice: str = ""


@dataclass(slots=True)
class _GpuFlags:
    hot: bool = False
    over_power: bool = False
    lost: bool = False
    last_temperature_c: int | None = None
    last_power_mw: int | None = None


@dataclass(slots=True)
class _PowerControl:
    original_mw: dict[int, int] = field(default_factory=dict)
    applied_mw: dict[int, int] = field(default_factory=dict)
    attempted: set[int] = field(default_factory=set)
    notices: dict[int, str] = field(default_factory=dict)


class ThermalGuard:
    """Watches :class:`GpuTelemetry` snapshots and publishes :attr:`state` (``GuardState``).

    Close it before the telemetry it watches: restoring power limits goes through telemetry.
    """

    def __init__(
        self,
        telemetry: GpuTelemetry,
        config: GuardConfig | None = None,
        *,
        restore_attempts: int = 3,
        retry_delay: float = 0.5,
    ) -> None:
        self._telemetry = telemetry
        self._config = config or GuardConfig()
        self._restore_attempts = max(1, restore_attempts)
        self._retry_delay = retry_delay
        self._flags: dict[int, _GpuFlags] = {}
        self._power = _PowerControl()
        self._power_task: asyncio.Task[None] | None = None
        self._unsubscribe: Unsubscribe | None = None
        self._last: TelemetrySnapshot | None = None
        self.state: Observable[GuardState] = Observable(
            GuardState(True, "Waiting for GPU temperatures.")
        )

    @property
    def config(self) -> GuardConfig:
        return self._config

    async def start(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = self._telemetry.snapshot.subscribe(self.observe)
            self.observe(self._telemetry.snapshot.value)

    async def aclose(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self._cancel_power_task()
        await self._restore_all()
        self._power.attempted.clear()  # a later start() applies the cap afresh
        self._publish()

    async def reconfigure(self, config: GuardConfig) -> None:
        """Apply new caps now; power limits are restored first if power control changed."""
        old, self._config = self._config, config
        if (old.controls_power, old.power_cap_w) != (config.controls_power, config.power_cap_w):
            await self._cancel_power_task()
            await self._restore_all()
            self._power.attempted.clear()
            self._power.notices.clear()
        # New caps apply fresh: hysteresis belongs to the old cap, not to the user's new choice.
        for flags in self._flags.values():
            flags.hot = flags.over_power = False
        if self._last is not None:
            self.observe(self._last)
        else:
            self._publish()

    def observe(self, snapshot: TelemetrySnapshot) -> None:
        """Re-evaluate the caps for one telemetry snapshot (telemetry calls this on every round)."""
        self._last = snapshot
        cfg = self._config
        for reading in snapshot.gpus:
            self._update_flags(self._flags.setdefault(reading.index, _GpuFlags()), reading, cfg)
        self._publish(snapshot)
        if cfg.controls_power and self._unsubscribe is not None:
            self._maybe_apply_power(snapshot)

    # -- thermal and power caps ---------------------------------------------------------------
    @staticmethod
    def _update_flags(flags: _GpuFlags, reading: GpuReading, cfg: GuardConfig) -> None:
        flags.lost = reading.status == "lost"
        sample = reading.sample
        if reading.status != "ok" or sample is None:
            return  # temperature unknown this round: keep the last decision rather than flap
        temp, power = sample.temperature_c, sample.power_mw
        flags.last_temperature_c, flags.last_power_mw = temp, power
        if temp is None:
            flags.hot = False
        elif flags.hot:
            flags.hot = temp >= cfg.temperature_cap_c - cfg.hysteresis_c
        else:
            flags.hot = temp > cfg.temperature_cap_c
        if cfg.power_cap_w is None or power is None:
            flags.over_power = False
            return
        cap_mw = cfg.power_cap_w * 1000
        resume_mw = cap_mw * (100 - cfg.power_hysteresis_percent) // 100
        flags.over_power = power >= resume_mw if flags.over_power else power > cap_mw

    def _publish(self, snapshot: TelemetrySnapshot | None = None) -> None:
        cfg = self._config
        reasons: list[str] = []
        paused: list[int] = []
        for index, flags in sorted(self._flags.items()):
            if flags.lost:
                reasons.append(f"GPU {index} is lost.")
            elif flags.hot:
                reasons.append(
                    f"GPU {index} is at {flags.last_temperature_c} °C, above your "
                    f"{cfg.temperature_cap_c} °C limit; new requests wait until it is below "
                    f"{cfg.temperature_cap_c - cfg.hysteresis_c} °C."
                )
            elif flags.over_power:
                reasons.append(
                    f"GPU {index} draws {(flags.last_power_mw or 0) // 1000} W, above your "
                    f"{cfg.power_cap_w} W limit; new requests wait until it draws less."
                )
            else:
                continue
            paused.append(index)
        if paused:
            reason = " ".join(reasons)
        elif not self._flags and snapshot is not None and snapshot.state not in _NOT_YET:
            reason = "No GPU temperature to watch (CPU only)."
        elif self._flags:
            reason = f"GPUs are within your limits ({cfg.temperature_cap_c} °C" + (
                f", {cfg.power_cap_w} W)." if cfg.power_cap_w is not None else ")."
            )
        else:
            reason = "Waiting for GPU temperatures."
        self.state.set(
            GuardState(
                accepting=not paused,
                reason=reason,
                paused_gpus=tuple(paused),
                power_limits_set=tuple(sorted(self._power.applied_mw.items())),
                notice=" ".join(self._power.notices[i] for i in sorted(self._power.notices)),
            )
        )

    # -- power control (opt-in only) ----------------------------------------------------------
    def _maybe_apply_power(self, snapshot: TelemetrySnapshot) -> None:
        if self._power_task is not None and not self._power_task.done():
            return
        pending = [
            r.index
            for r in snapshot.gpus
            if r.status == "ok" and r.index not in self._power.attempted
        ]
        if pending:
            self._power_task = asyncio.create_task(self._apply_power(pending), name="guard-power")

    async def _apply_power(self, indices: list[int]) -> None:
        cap_w = self._config.power_cap_w
        if cap_w is None:
            return
        for index in indices:
            try:
                await self._lower_limit(index, cap_w * 1000)
            except GpuCallError as exc:
                if exc.kind == "hung":
                    continue  # the GPU was busy; try again on a later snapshot
                self._power.notices[index] = f"Could not lower GPU {index}'s power limit: {exc}"
                _log.warning("power control on GPU %d failed: %s", index, exc)
            self._power.attempted.add(index)
        self._publish(self._last)

    async def _lower_limit(self, index: int, cap_mw: int) -> None:
        def read(nvml: ModuleType, handle: Any) -> tuple[int, int, int]:
            current = int(nvml.nvmlDeviceGetPowerManagementLimit(handle))
            low, high = nvml.nvmlDeviceGetPowerManagementLimitConstraints(handle)
            return current, int(low), int(high)

        current, low, high = await self._telemetry.call(index, read)
        target = min(max(cap_mw, low), high)
        if target >= current:
            return  # the user's own limit is already at or below the cap: leave it alone
        # Remember the original before changing it, so a failure half-way still gets restored.
        self._power.original_mw.setdefault(index, current)
        await self._telemetry.call(
            index, lambda nvml, handle: nvml.nvmlDeviceSetPowerManagementLimit(handle, target)
        )
        self._power.applied_mw[index] = target
        _log.info(
            "GPU %d power limit lowered from %d W to %d W", index, current // 1000, target // 1000
        )

    async def _cancel_power_task(self) -> None:
        task, self._power_task = self._power_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _restore_all(self) -> None:
        for index, original in sorted(self._power.original_mw.items()):
            if await self._restore(index, original):
                del self._power.original_mw[index]
                self._power.applied_mw.pop(index, None)
                self._power.notices.pop(index, None)

    async def _restore(self, index: int, original_mw: int) -> bool:
        def write(nvml: ModuleType, handle: Any) -> None:
            nvml.nvmlDeviceSetPowerManagementLimit(handle, original_mw)

        for attempt in range(1, self._restore_attempts + 1):
            try:
                await self._telemetry.call(index, write)
            except GpuCallError as exc:
                if exc.kind in {"lost", "unavailable"} or attempt == self._restore_attempts:
                    self._power.notices[index] = (
                        f"Could not restore GPU {index}'s power limit to {original_mw // 1000} W "
                        f"({exc}). Restarting the computer restores it."
                    )
                    _log.warning("restoring GPU %d power limit failed: %s", index, exc)
                    return False
                await asyncio.sleep(self._retry_delay)
            else:
                _log.info("GPU %d power limit restored to %d W", index, original_mw // 1000)
                return True
        return False
