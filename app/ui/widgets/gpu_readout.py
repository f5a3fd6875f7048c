"""How the GPU panel puts readings, guard pauses and energy into words and colours.

Pure functions over the engine's frozen state types, so every sentence the panel shows is
decided here and not scattered through widget code. A metric the GPU does not report is "—".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from app.core.money import format_ton
from app.engine.energy import MJ_PER_WH, Economics
from app.engine.gpu_probe import CPU_ONLY
from app.engine.gpu_sample import THROTTLE_REASON_LABELS
from app.engine.guard import GuardState
from app.engine.telemetry import GpuReading, TelemetrySnapshot
from app.ui.viewmodels.telemetry import EnergyView, GuardCaps

NOT_REPORTED = "—"
NOT_REPORTED_TIP = "This GPU or its driver does not report this metric."
GPU_LOST = "GPU lost — reconnect or restart"
DRIVER_NOT_LOADED = "NVIDIA driver not loaded"

Tone = Literal["ok", "warm", "hot", "neutral", "error", "muted"]
TONE_COLOURS: dict[Tone, str] = {
    "ok": "#1f9d55",
    "warm": "#b45309",
    "hot": "#b91c1c",
    "neutral": "#111827",
    "error": "#b91c1c",
    "muted": "#6b7280",
}
# Within this many degrees below the cap a GPU shows as "warm" (amber) rather than fine (green).
WARM_MARGIN_C = 10
_GIB = 1024**3


@dataclass(frozen=True, slots=True)
class Headline:
    """A state without GPU readings, as a big line, an explanation and a tone."""

    title: str
    detail: str
    tone: Tone


def temperature_text(celsius: int | None) -> str:
    return NOT_REPORTED if celsius is None else f"{celsius} °C"


def temperature_tone(celsius: int | None, cap_c: int | None) -> Tone:
    """Green well below the cap, amber within ``WARM_MARGIN_C`` of it, red at or above it."""
    if celsius is None:
        return "muted"
    if cap_c is None:
        return "neutral"
    if celsius >= cap_c:
        return "hot"
    return "warm" if celsius >= cap_c - WARM_MARGIN_C else "ok"


def vram_text(used_bytes: int | None, total_bytes: int | None) -> str:
    if used_bytes is None or total_bytes is None:
        return NOT_REPORTED
    return f"{used_bytes / _GIB:.1f} / {total_bytes / _GIB:.1f} GiB"


def percent_text(value: int | None) -> str:
    return NOT_REPORTED if value is None else f"{value} %"


def power_text(power_mw: int | None, limit_mw: int | None) -> str:
    if power_mw is None:
        return NOT_REPORTED
    watts = f"{power_mw / 1000:.0f}"
    return f"{watts} W" if limit_mw is None else f"{watts} / {limit_mw / 1000:.0f} W"


def utilisation_text(gpu_percent: int | None, memory_percent: int | None) -> str:
    if gpu_percent is None:
        return NOT_REPORTED
    if memory_percent is None:
        return f"{gpu_percent} %"
    return f"{gpu_percent} % · memory {memory_percent} %"


def clocks_text(graphics_mhz: int | None, memory_mhz: int | None) -> str:
    """Core and memory clocks as "2520 / 10501 MHz" (a missing one as "—")."""
    if graphics_mhz is None and memory_mhz is None:
        return NOT_REPORTED
    core = NOT_REPORTED if graphics_mhz is None else str(graphics_mhz)
    memory = NOT_REPORTED if memory_mhz is None else str(memory_mhz)
    return f"{core} / {memory} MHz"


def throttle_text(reasons: tuple[str, ...] | None) -> str:
    """Why clocks are held back, in plain words ("none" when running freely or just idle)."""
    if reasons is None:
        return NOT_REPORTED
    words = [THROTTLE_REASON_LABELS.get(r, f"unknown reason {r}") for r in reasons]
    slowing = [w for r, w in zip(reasons, words, strict=True) if r != "gpu_idle"]
    if not slowing:
        return "none (idle)" if reasons else "none"
    return ", ".join(slowing)


def headline(snapshot: TelemetrySnapshot) -> Headline | None:
    """What to show instead of GPU cards, or ``None`` when the snapshot has GPUs to show."""
    if snapshot.gpus:
        return None
    detail = _sentence(snapshot.message, snapshot.hint)
    state = snapshot.state
    if state == "starting":
        return Headline("Looking for NVIDIA GPUs…", "", "muted")
    if state == "stopped":
        return Headline("GPU monitoring is off", "It starts with the worker.", "muted")
    if state == "driver_not_loaded":
        return Headline(DRIVER_NOT_LOADED, f"{detail} Until then: {CPU_ONLY}.", "error")
    if state in {"nvml_missing", "no_gpu"}:
        return Headline(CPU_ONLY, detail, "warm")
    return Headline("GPU monitoring unavailable", detail, "error")


def status_text(snapshot: TelemetrySnapshot) -> str:
    """The panel's short status: "Watching 2 GPUs." or how many of them answer."""
    if not snapshot.gpus:
        return ""
    if snapshot.state == "ok":
        return snapshot.message
    answering = sum(1 for r in snapshot.gpus if r.status == "ok")
    count = len(snapshot.gpus)
    return f"{answering} of {count} GPU{'s' if count > 1 else ''} answering."


def summary(snapshot: TelemetrySnapshot) -> tuple[str, str]:
    """The dashboard's small GPU card: the hottest temperature (or the state) and a detail."""
    head = headline(snapshot)
    if head is not None:
        return head.title, ""
    samples = [(r, r.sample) for r in snapshot.gpus if r.status != "lost" and r.sample is not None]
    temps = [(s.temperature_c, r.index) for r, s in samples if s.temperature_c is not None]
    value = temperature_text(max(temps)[0]) if temps else NOT_REPORTED
    if len(snapshot.gpus) == 1:
        reading = snapshot.gpus[0]
        problem = reading_problem(reading)
        if reading.status == "lost":
            return "Lost", problem
        if problem or reading.sample is None:
            return value, problem
        sample = reading.sample
        parts = [reading.name]
        if sample.power_mw is not None:
            parts.append(power_text(sample.power_mw, None))
        if sample.gpu_util_percent is not None:
            parts.append(f"{sample.gpu_util_percent} % busy")
        return value, " · ".join(parts)
    detail = f"{len(snapshot.gpus)} GPUs"
    if temps:
        detail += f", hottest is GPU {max(temps)[1]}"
    if snapshot.state != "ok":
        detail += f" · {status_text(snapshot)}"
    return value, detail


def reading_problem(reading: GpuReading) -> str:
    """A line for a GPU whose latest round failed; empty when it is fine."""
    if reading.status == "lost":
        return GPU_LOST
    if reading.status == "hung":
        return "Not answering — showing its last reading."
    if reading.status == "error":
        return reading.message or "Could not be read."
    return ""


def pause_lines(
    guard: GuardState, caps: GuardCaps | None, snapshot: TelemetrySnapshot
) -> tuple[str, ...]:
    """One sentence per paused GPU: what it is at, the cap, and when requests resume."""
    if guard.accepting:
        return ()
    readings = {r.index: r for r in snapshot.gpus}
    lines = []
    for index in guard.paused_gpus:
        reading = readings.get(index)
        sample = None if reading is None else reading.sample
        if reading is not None and reading.status == "lost":
            lines.append(f"Paused: GPU {index} is lost — reconnect it or restart the computer")
            continue
        if caps is None or sample is None:
            return (f"Paused: {guard.reason}",)
        temp, power_mw = sample.temperature_c, sample.power_mw
        if power_mw is not None and _over_power(power_mw, temp, caps):
            lines.append(
                f"Paused: GPU {index} draws {power_mw // 1000} W (cap {caps.power_cap_w} W) — "
                f"resumes below {caps.power_resume_below_w} W"
            )
        else:
            lines.append(
                f"Paused: GPU {index} is at {temperature_text(temp)} "
                f"(cap {caps.temperature_cap_c} °C) — resumes below {caps.resume_below_c} °C"
            )
    return tuple(lines) or (f"Paused: {guard.reason}",)


def _over_power(power_mw: int, temp: int | None, caps: GuardCaps) -> bool:
    """Whether a paused GPU is paused for power: only when it is not above the temperature cap."""
    if caps.power_cap_w is None or caps.power_resume_below_w is None:
        return False
    if temp is not None and temp > caps.temperature_cap_c:
        return False  # the guard names the temperature first
    return power_mw >= caps.power_resume_below_w * 1000


ENERGY_UNMEASURABLE = (
    "This GPU reports neither an energy counter nor its power draw, so its energy use cannot "
    "be measured."
)


def energy_measurable(snapshot: TelemetrySnapshot) -> bool:
    """False when every GPU sampled so far lacks both the energy counter and power readings."""
    samples = [r.sample for r in snapshot.gpus if r.sample is not None]
    return not samples or any(s.energy_mj is not None or s.power_mw is not None for s in samples)


def energy_lines(view: EnergyView) -> tuple[str, str]:
    """The big value (Wh today) and a detail line (TON per kWh, net profit if a price is set)."""
    totals = view.totals
    money = totals.money
    per_kwh = (
        "TON per kWh: — (no energy measured yet)"
        if money.nanoton_per_kwh is None
        else f"earned {format_ton(money.nanoton_per_kwh, trim=True)} TON per kWh"
    )
    parts = [per_kwh]
    if totals.price_nanoton_per_kwh > 0:
        parts.append(net_profit_text(money))
    else:
        parts.append("set your electricity price in Settings to see net profit")
    return f"{view.today_mj / MJ_PER_WH:.1f} Wh today", " · ".join(parts) + " (since start)."


def net_profit_text(money: Economics) -> str:
    """Net profit after the electricity's cost, as the energy card and "Earned today" say it."""
    return (
        f"net profit {format_ton(money.net_nanoton, trim=True, unit=True)} after "
        f"{format_ton(money.cost_nanoton, trim=True, unit=True)} of electricity"
    )


def _sentence(message: str, hint: str) -> str:
    prefix = f"{CPU_ONLY}: "
    if message.startswith(prefix):  # the headline already says it
        message = message[len(prefix) :]
        message = message[:1].upper() + message[1:]
    return f"{message} {hint}".strip()
