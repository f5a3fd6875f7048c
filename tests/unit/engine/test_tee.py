"""TEE readiness: the TDX guest device, TDX on the host kernel, the GPU's confidential-computing
mode as NVML reports it; and honest admission from a root config."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from app.engine.tee import probe_tee
from app.network.admission import NotAdmittedError, admission
from app.network.root_config import parse_fake_ton_config
from tests.unit.network.traces import traces_dir


class _Nvml:
    """The three NVML calls the probe makes (their real names), scripted."""

    NVML_CC_SYSTEM_FEATURE_ENABLED = 1

    def __init__(self, cc: int | Exception, init: Exception | None = None) -> None:
        self.cc, self.init = cc, init
        self.shut = False

    def nvmlInit(self) -> None:  # noqa: N802 - NVML's name
        if self.init is not None:
            raise self.init

    def nvmlShutdown(self) -> None:  # noqa: N802 - NVML's name
        self.shut = True

    def nvmlSystemGetConfComputeState(self) -> Any:  # noqa: N802 - NVML's name
        if isinstance(self.cc, Exception):
            raise self.cc
        return SimpleNamespace(environment=0, ccFeature=self.cc, devToolsMode=0)


def test_an_ordinary_pc_lacks_all_three(tmp_path: Path) -> None:
    tee = probe_tee(_Nvml(0), guest_devices=(tmp_path / "tdx_guest",), host_flag=tmp_path / "x")
    assert not tee.ready
    assert [c.ok for c in tee.checks] == [False, False, False]
    assert any("gaming GPUs do not" in reason for reason in tee.lacking())


def test_a_tdx_guest_with_a_cc_gpu_is_ready(tmp_path: Path) -> None:
    (tmp_path / "tdx_guest").touch()
    flag = tmp_path / "tdx"
    flag.write_text("Y\n")
    nvml = _Nvml(1)
    tee = probe_tee(nvml, guest_devices=(tmp_path / "tdx_guest",), host_flag=flag)
    assert tee.ready
    assert all(c.ok for c in tee.checks)
    assert nvml.shut


@pytest.mark.parametrize(
    ("nvml", "reason"),
    [
        (None, "No NVIDIA driver library"),
        (_Nvml(0, init=RuntimeError("no driver")), "did not answer"),
        (_Nvml(RuntimeError("not supported")), "cannot report confidential computing"),
    ],
)
def test_a_driver_that_cannot_tell_is_a_reason_not_a_crash(
    tmp_path: Path, nvml: Any, reason: str
) -> None:
    tee = probe_tee(nvml, guest_devices=(), host_flag=tmp_path / "absent")
    assert reason in tee.checks[2].reason


def test_admission_is_honest_about_production_roots(tmp_path: Path) -> None:
    fake = parse_fake_ton_config((traces_dir() / "configs" / "fake-ton-config.json").read_text())
    pc = probe_tee(_Nvml(0), guest_devices=(), host_flag=tmp_path / "absent")
    assert admission(fake, pc).admitted  # a test-mode network takes anyone
    production = dataclasses.replace(fake, is_test=False)
    refused = admission(production, pc, "Qwen/Qwen3-8B")
    assert not refused.admitted
    assert "not a TDX confidential VM" in " ".join(refused.details)
    with pytest.raises(NotAdmittedError, match="attested confidential"):
        refused.raise_if_refused()
