"""``doctor``: a readable and a JSON report of GPUs, driver, sandbox, model, benchmark and jobs."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from app.cli import doctor_cmd
from app.cli.main import main
from app.engine import gpu_probe
from tests.fakes.fake_pynvml import FakeNvml


def _doctor_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    assert main(["--data-dir", str(tmp_path), "doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert isinstance(report, dict)
    return report


def test_cpu_only_machine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _doctor_json(tmp_path, capsys)
    assert set(report) >= {"app", "gpus", "sandbox", "model", "benchmark", "jobs", "wallets"}
    gpus = report["gpus"]
    assert isinstance(gpus, dict)
    assert gpus["gpus"] == []
    assert "CPU only" in str(gpus["message"])
    model = report["model"]
    assert isinstance(model, dict)
    assert model["name"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert model["device"] == "CPU only — slow"
    sandbox = report["sandbox"]
    assert isinstance(sandbox, dict)
    assert sandbox["level"] in {"strong", "basic"}
    assert report["benchmark"] == {
        "cached": False,
        "hint": "Run 'cocoon-provider bench' to measure this computer.",
    }


def test_with_a_gpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeNvml(1)
    monkeypatch.setattr(doctor_cmd, "probe", functools.partial(gpu_probe.probe, fake.module))
    report = _doctor_json(tmp_path, capsys)
    gpus = report["gpus"]
    assert isinstance(gpus, dict)
    assert gpus["driver_version"] == "550.54.14"
    assert [g["name"] for g in gpus["gpus"]] == ["NVIDIA GeForce RTX 4090"]
    model = report["model"]
    assert isinstance(model, dict)
    assert str(model["device"]).startswith("GPU 0: NVIDIA GeForce RTX 4090")
    assert model["gpu_layers"] == -1


def test_readable_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", str(tmp_path), "doctor"]) == 0
    out = capsys.readouterr().out
    for heading in ("GPUs:", "Sandbox:", "Model:", "Benchmark:", "Wallets:"):
        assert heading in out


def test_unknown_model_is_reported_not_raised(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "settings.toml").write_text('schema_version = 2\n[engine]\nmodel = "nope/nope"\n')
    report = _doctor_json(tmp_path, capsys)
    model = report["model"]
    assert isinstance(model, dict)
    assert model["ok"] is False
    assert "nope/nope" in str(model["error"])
