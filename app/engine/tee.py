"""Is this computer ready to be a confidential (TEE) COCOON worker? Each check with a reason.

Official COCOON proxies admit only workers inside an Intel TDX confidential VM, with the GPU in
NVIDIA confidential-computing mode and an attested image (docs/protocol.md §2.4, §7). This module
looks at what the machine can tell: a TDX guest device, TDX support on the host kernel, and the
GPU driver's confidential-computing state (NVML). It never changes anything.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from app.engine.gpu_probe import load_nvml

_TDX_GUEST_DEVICES: Final = (Path("/dev/tdx_guest"), Path("/dev/tdx-guest"))
_TDX_HOST_FLAG: Final = Path("/sys/module/kvm_intel/parameters/tdx")
_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class TeeCheck:
    key: str
    title: str
    ok: bool
    reason: str


@dataclass(frozen=True, slots=True)
class TeeReadiness:
    checks: tuple[TeeCheck, ...]

    @property
    def ready(self) -> bool:
        """A TDX guest with a GPU in confidential-computing mode (what official proxies need)."""
        by_key = {c.key: c.ok for c in self.checks}
        return by_key.get("tdx_guest", False) and by_key.get("gpu_cc", False)

    def lacking(self) -> list[str]:
        return [c.reason for c in self.checks if not c.ok and c.key != "tdx_host"]

    def to_json(self) -> list[dict[str, object]]:
        return [
            {"key": c.key, "title": c.title, "ok": c.ok, "reason": c.reason} for c in self.checks
        ]


def probe_tee(
    nvml: ModuleType | Any = _MISSING,
    *,
    guest_devices: tuple[Path, ...] = _TDX_GUEST_DEVICES,
    host_flag: Path = _TDX_HOST_FLAG,
) -> TeeReadiness:
    """Look, without changing anything (blocking: call it off the event loop)."""
    return TeeReadiness(
        (
            _tdx_guest(guest_devices),
            _tdx_host(host_flag),
            _gpu_cc(load_nvml() if nvml is _MISSING else nvml),
        )
    )


def _tdx_guest(devices: tuple[Path, ...]) -> TeeCheck:
    title = "Inside a TDX confidential VM"
    found = next((d for d in devices if d.exists()), None)
    if found is not None:
        return TeeCheck("tdx_guest", title, True, f"The TDX guest device {found} is present.")
    return TeeCheck(
        "tdx_guest",
        title,
        False,
        "This system is not a TDX confidential VM (no /dev/tdx_guest): official proxies need "
        "the worker to run inside one, with an attested COCOON image.",
    )


def _tdx_host(flag: Path) -> TeeCheck:
    title = "This machine can host TDX VMs"
    try:
        enabled = flag.read_text().strip() in ("Y", "1")
    except OSError:
        enabled = False
    reason = (
        "The kernel has TDX enabled for KVM: a COCOON TDX VM could run here."
        if enabled
        else "The kernel does not report TDX for KVM (an Intel Xeon with TDX, BIOS and kernel "
        "support are needed to host a confidential VM)."
    )
    return TeeCheck("tdx_host", title, enabled, reason)


def _gpu_cc(nvml: ModuleType | Any | None) -> TeeCheck:
    title = "GPU in confidential-computing mode"
    if nvml is None:
        return TeeCheck("gpu_cc", title, False, "No NVIDIA driver library (NVML) was found.")
    try:
        nvml.nvmlInit()
    except Exception:  # every NVML failure means the same here: it cannot tell
        return TeeCheck("gpu_cc", title, False, "The NVIDIA driver did not answer (no GPU?).")
    try:
        state = nvml.nvmlSystemGetConfComputeState()
        enabled = int(state.ccFeature) == int(getattr(nvml, "NVML_CC_SYSTEM_FEATURE_ENABLED", 1))
    except Exception:
        return TeeCheck(
            "gpu_cc",
            title,
            False,
            "The driver cannot report confidential computing (a Hopper/Blackwell data-centre GPU "
            "and driver 535+ are needed).",
        )
    finally:
        with contextlib.suppress(Exception):
            nvml.nvmlShutdown()
    if enabled:
        return TeeCheck(
            "gpu_cc", title, True, "The GPU driver runs in confidential-computing mode."
        )
    return TeeCheck(
        "gpu_cc",
        title,
        False,
        "The GPU is not in confidential-computing mode (only data-centre GPUs such as the H100 "
        "have it; gaming GPUs do not).",
    )
