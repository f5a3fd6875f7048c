"""``doctor``: a readable and a JSON report of GPUs, driver, sandbox, model, benchmark and jobs."""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from pathlib import Path

import pytest

from app.cli import doctor_cmd
from app.cli.main import main
from app.devnet.local_network import LocalNetwork
from app.engine import gpu_probe
from tests.fakes.fake_pynvml import FakeNvml
from tests.router_rig import RouterConfig, TestRouter
from tests.unit.wallet.test_lite_backend import free_port


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


async def test_custom_proxies_are_dialled_and_each_failure_names_its_step(tmp_path: Path) -> None:
    # A proxy behind a COCOON router (proof of work + TLS), one whose router asks too much work,
    # and a port where nothing listens: doctor says which step each one reached.
    network = LocalNetwork(demand_per_minute=0)
    await network.start()
    good = TestRouter(("127.0.0.1", network.proxy.port))
    greedy = TestRouter(("127.0.0.1", network.proxy.port), RouterConfig(difficulty=29))
    await good.start()
    await greedy.start()
    closed = free_port()
    proxies = [f"127.0.0.1:{good.port}", f"127.0.0.1:{greedy.port}", f"127.0.0.1:{closed}"]
    (tmp_path / "settings.toml").write_text(
        f"schema_version = 2\n[worker]\nproxies = {json.dumps(proxies)}\n"
    )
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app",
            "--data-dir",
            str(tmp_path),
            "--network",
            "custom",
            "doctor",
            "--json",
            stdout=asyncio.subprocess.PIPE,
            cwd=Path(__file__).parents[2],
        )
        out, _ = await process.communicate()
    finally:
        await good.aclose()
        await greedy.aclose()
        await network.aclose()
    assert process.returncode == 0
    checks = {c["address"]: c for c in json.loads(out)["proxies"]}
    assert checks[proxies[0]]["ok"]
    assert "proof of work and TLS passed" in checks[proxies[0]]["detail"]
    assert checks[proxies[1]]["detail"].startswith("proof of work:")
    assert "28" in checks[proxies[1]]["detail"]
    assert checks[proxies[2]]["detail"].startswith("TCP:")
