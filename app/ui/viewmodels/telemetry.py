"""``TelemetryViewModel``: GPU snapshots, the thermal guard's state and energy totals as Qt signals.

The GPU panel observes only this object: it never holds the telemetry service, the guard or the
energy meter themselves, and it reads the guard's caps through the narrow properties below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from PySide6.QtCore import QObject, Signal

from app.core.observable import Unsubscribe
from app.engine.energy import EnergyMeter, EnergyTotals
from app.engine.guard import GuardState, ThermalGuard
from app.engine.telemetry import GpuTelemetry, HistoryPoint, TelemetrySnapshot


@dataclass(frozen=True, slots=True)
class EnergyView:
    """The meter's totals plus the GPU energy measured since local midnight (or app start)."""

    totals: EnergyTotals
    today_mj: int


@dataclass(frozen=True, slots=True)
class GuardCaps:
    """The guard's caps as the panel shows them (the cap line, colours and resume sentences)."""

    temperature_cap_c: int
    resume_below_c: int
    power_cap_w: int | None
    power_resume_below_w: int | None


class TelemetryViewModel(QObject):
    """Re-emits telemetry snapshots, guard states and energy totals; lives on the GUI thread.

    ``guard`` and ``energy`` are optional: without them the panel shows no pause banner and no
    energy line. ``today`` says which local day it is (tests pass a fixed one); when it changes
    the "today" energy restarts from the meter's running total.
    """

    snapshot_changed = Signal(object)  # TelemetrySnapshot
    guard_changed = Signal(object)  # GuardState
    energy_changed = Signal(object)  # EnergyView

    def __init__(
        self,
        telemetry: GpuTelemetry,
        guard: ThermalGuard | None = None,
        energy: EnergyMeter | None = None,
        *,
        today: Callable[[], date] = date.today,
    ) -> None:
        super().__init__()
        self._telemetry = telemetry
        self._guard = guard
        self._energy = energy
        self._today = today
        self._day = today()
        self._day_start_mj = 0
        self._last_measured_mj = 0
        self._energy_view: EnergyView | None = None
        self._unsubscribers: list[Unsubscribe] = [
            telemetry.snapshot.subscribe(self.snapshot_changed.emit)
        ]
        if guard is not None:
            self._unsubscribers.append(guard.state.subscribe(self.guard_changed.emit))
        if energy is not None:
            self._energy_view = self._view(energy.totals.value)
            self._unsubscribers.append(energy.totals.subscribe(self._energy_totals))

    @property
    def snapshot(self) -> TelemetrySnapshot:
        return self._telemetry.snapshot.value

    @property
    def guard_state(self) -> GuardState | None:
        return None if self._guard is None else self._guard.state.value

    @property
    def energy(self) -> EnergyView | None:
        return self._energy_view

    @property
    def caps(self) -> GuardCaps | None:
        """The guard's current caps (read afresh: the user may change them while running)."""
        if self._guard is None:
            return None
        config = self._guard.config
        power = config.power_cap_w
        return GuardCaps(
            temperature_cap_c=config.temperature_cap_c,
            resume_below_c=config.temperature_cap_c - config.hysteresis_c,
            power_cap_w=power,
            power_resume_below_w=(
                None if power is None else power * (100 - config.power_hysteresis_percent) // 100
            ),
        )

    def history(self, index: int) -> tuple[HistoryPoint, ...]:
        """Chart points of GPU ``index``, oldest first."""
        return self._telemetry.history(index)

    def close(self) -> None:
        """Stop observing the services (idempotent); signals are not emitted afterwards."""
        unsubscribers, self._unsubscribers = self._unsubscribers, []
        for unsubscribe in unsubscribers:
            unsubscribe()

    def _energy_totals(self, totals: EnergyTotals) -> None:
        self._energy_view = self._view(totals)
        self.energy_changed.emit(self._energy_view)

    def _view(self, totals: EnergyTotals) -> EnergyView:
        day = self._today()
        if day != self._day:
            # The day turned between two updates: what came before this one belongs to yesterday.
            self._day, self._day_start_mj = day, self._last_measured_mj
        if totals.measured_mj < self._day_start_mj:  # a restarted meter counts from zero again
            self._day_start_mj = 0
        self._last_measured_mj = totals.measured_mj
        return EnergyView(totals, totals.measured_mj - self._day_start_mj)
