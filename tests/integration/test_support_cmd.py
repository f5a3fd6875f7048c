"""``cocoon-provider support-bundle FILE`` as a user types it: a valid zip with the doctor report,
no overwrite without --force, and a path it cannot write is one ``Error:`` line, exit 1."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import pytest

from app.cli.main import main
from app.core.support_bundle import REPORT_NAME, ROOT

OWNER = "0QDLYGhRHNqXquKXJazsjMBUUhXtmZ_Nom43-_sztpg80Q6E"


def run(tmp_path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--data-dir", str(tmp_path / "data"), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_writes_a_valid_redacted_zip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = tmp_path / "data" / "logs"
    logs.mkdir(parents=True)
    (logs / "cocoon-provider.log.1").write_text(f"owner {OWNER} proxy 203.0.113.7:5555\n")
    target = tmp_path / "support.zip"
    code, out, err = run(tmp_path, capsys, "support-bundle", str(target))
    assert (code, err) == (0, "")
    assert out.startswith(f"Wrote {target}:")
    assert "2 items redacted" in out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    with zipfile.ZipFile(target) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        doctor = json.loads(archive.read(f"{ROOT}/doctor.json"))
        rotated = archive.read(f"{ROOT}/logs/cocoon-provider.log.1").decode()
    assert {f"{ROOT}/versions.json", f"{ROOT}/logs/cocoon-provider.log", REPORT_NAME} <= set(names)
    assert not [n for n in names if "wallet" in n or "sqlite" in n]
    assert {"app", "gpus", "sandbox", "model", "jobs", "wallets"} <= set(doctor)
    assert rotated == "owner <address #1> proxy <ip #1>:5555\n"


def test_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "support.zip"
    target.write_text("an older bundle")
    code, out, err = run(tmp_path, capsys, "support-bundle", str(target))
    assert (code, out) == (1, "")
    assert err.splitlines()[0] == f"Error: {target} already exists."
    assert "--force" in err
    assert target.read_text() == "an older bundle"
    code, _, err = run(tmp_path, capsys, "support-bundle", str(target), "--force")
    assert (code, err) == (0, "")
    assert zipfile.is_zipfile(target)


AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.mark.parametrize(
    "where",
    [
        "folder",
        "under-a-file",
        pytest.param("read-only", marks=pytest.mark.skipif(AS_ROOT, reason="root writes anywhere")),
    ],
)
def test_a_path_it_cannot_write_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    (tmp_path / "file").write_text("")
    target = {
        "folder": tmp_path,
        "read-only": locked / "support.zip",
        "under-a-file": tmp_path / "file" / "support.zip",
    }[where]
    try:
        code, out, err = run(tmp_path, capsys, "support-bundle", str(target))
    finally:
        locked.chmod(0o700)
    assert (code, out) == (1, "")
    assert len([line for line in err.splitlines() if line.startswith("Error:")]) == 1
    assert err.startswith("Error:")
    assert "Traceback" not in err
    assert len(err.splitlines()) == 2  # the message and its hint


def test_a_write_the_disk_refuses_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: Path, data: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("app.core.support_bundle.write_private_atomic", refuse)
    target = tmp_path / "support.zip"
    code, out, err = run(tmp_path, capsys, "support-bundle", str(target))
    assert (code, out) == (1, "")
    assert err.splitlines() == [
        f"Error: Could not write the support bundle to {target}: Permission denied.",
        "Choose a folder you can write to (your home folder works).",
    ]
    assert not target.exists()
