"""Support-bundle redaction and layout: each kind removed from realistic log lines, placeholders
consistent across forms and files, a report of kinds and counts only, no wallets or databases."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from app.core.logs import REDACTED
from app.core.paths import AppPaths
from app.core.redaction import (
    KIND_ADDRESS,
    KIND_IP,
    KIND_PRIVATE,
    KIND_PROMPT,
    PROMPT_REMOVED,
    BundleRedactor,
)
from app.core.support_bundle import (
    REPORT_NAME,
    ROOT,
    SupportBundleError,
    build_bundle,
    collect,
    write_support_bundle,
)
from tests.unit.wallet.conftest import TEST_VECTOR_PHRASE

# One account in three forms (as pytoniq-core prints them) and a second, testnet-only account.
OWNER_RAW = "0:ed1691307050047117b998b561d8de82d31fbf84910ced6eb5fc92e7485ef8a7"
OWNER_BOUNCEABLE = "EQDtFpEwcFAEcRe5mLVh2N6C0x-_hJEM7W61_JLnSF74p4q2"
OWNER_PLAIN = "UQDtFpEwcFAEcRe5mLVh2N6C0x+/hJEM7W61/JLnSF74p9dz"  # non-bounceable, "+/" alphabet
OTHER_FRIENDLY = "0QDLYGhRHNqXquKXJazsjMBUUhXtmZ_Nom43-_sztpg80Q6E"
PROMPT = "my bank password is hunter2, please write a poem"
LOG = f"""\
2024-05-01 10:00:00,123 INFO    app.network.dialer: connected to proxy 203.0.113.7:5555 via 10.0.0.2
2024-05-01 10:00:00,200 INFO    app.network.worker: listening on 0.0.0.0:8080 and 127.0.0.1:9000
2024-05-01 10:00:01,000 INFO    app.wallet.service: owner {OWNER_BOUNCEABLE} (raw {OWNER_RAW})
2024-05-01 10:00:01,001 INFO    app.network.cashout: paid to {OTHER_FRIENDLY}, then {OWNER_PLAIN}
2024-05-01 10:00:02,000 DEBUG   app.engine.endpoint: body {{"model": "m", "messages": \
[{{"role": "user", "content": "{PROMPT}"}}], "max_tokens": 64}}
2024-05-01 10:00:02,500 DEBUG   app.engine.endpoint: completion {{'prompt': '{PROMPT}', 'n': 1}}
2024-05-01 10:00:03,000 INFO    app.net.peer: peer [2001:db8::17]:443 and ::1 at 12:34:56
2024-05-01 10:00:04,000 ERROR   app.cli.wallet_cmd: import failed for {TEST_VECTOR_PHRASE}
2024-05-01 10:00:05,000 INFO    app.wallet.vault: unlocked with password="two words"
"""


def redacted(text: str) -> tuple[str, dict[str, int]]:
    out, counts = BundleRedactor().redact(text)
    return out, dict(counts)


def test_each_kind_is_removed_from_realistic_log_lines() -> None:
    out, counts = redacted(LOG)
    for secret in (
        "203.0.113.7",
        "10.0.0.2",
        "2001:db8::17",
        OWNER_BOUNCEABLE,
        OWNER_RAW,
        OWNER_PLAIN,
        OTHER_FRIENDLY,
        PROMPT,
        "hunter2",
        "two words",
        "decorate loyal transfer",
    ):
        assert secret not in out
    assert counts == {KIND_IP: 3, KIND_ADDRESS: 4, KIND_PROMPT: 2, KIND_PRIVATE: 2}
    # What support needs stays: loopback, "all interfaces", ports, times, the other JSON keys.
    assert "0.0.0.0:8080 and 127.0.0.1:9000" in out
    assert "<ip #1>:5555 via <ip #2>" in out
    assert "[<ip #3>]:443 and ::1 at 12:34:56" in out
    assert f'"messages": "{PROMPT_REMOVED}", "max_tokens": 64' in out
    assert f"{{'prompt': \"{PROMPT_REMOVED}\", 'n': 1}}" in out
    assert f"import failed for {REDACTED}" in out


def test_every_form_of_one_address_gets_one_placeholder() -> None:
    out, _ = redacted(LOG)
    assert "owner <address #1> (raw <address #1>)" in out
    assert "paid to <address #2>, then <address #1>" in out


def test_placeholders_are_shared_by_all_texts_of_one_bundle() -> None:
    redactor = BundleRedactor()
    first, _ = redactor.redact(f"to {OTHER_FRIENDLY} from 198.51.100.4")
    second, _ = redactor.redact(f"from 198.51.100.4 to {OWNER_RAW} and {OTHER_FRIENDLY}")
    assert first == "to <address #1> from <ip #1>"
    assert second == "from <ip #1> to <address #2> and <address #1>"
    assert (redactor.distinct_addresses, redactor.distinct_ips) == (2, 1)


@pytest.mark.parametrize(
    "text",
    [
        "sha256 " + "ab" * 32,  # a hash is not an address
        "model 3.11.7 on 1.2.3 version",
        "token EQDtFpEwcFAEcRe5mLVh2N6C0x-_hJEM7W61_JLnSF74p4q3",  # checksum wrong
        '{"content": null, "prompt": "", "messages": []}',
        "mac aa:bb:cc:dd:ee:ff at 10:20:30",
    ],
)
def test_lookalikes_are_left_alone(text: str) -> None:
    assert redacted(text) == (text, {})


def test_a_truncated_prompt_is_cut_to_its_line_only() -> None:
    out, counts = redacted(f'body {{"messages": [{{"content": "{PROMPT}\nnext line stays\n')
    assert out == f'body {{"messages": "{PROMPT_REMOVED}"\nnext line stays\n'
    assert counts == {KIND_PROMPT: 1}


def data_dir(tmp_path: Path) -> AppPaths:
    paths = AppPaths(tmp_path / "data").ensure()
    (paths.log_dir / "cocoon-provider.log").write_text(LOG)
    (paths.log_dir / "cocoon-provider.log.1").write_text(f"older {OWNER_RAW}\n")
    (paths.log_dir / "engine-devnet.log").write_text("llama: listening on 127.0.0.1:8081\n")
    paths.settings_file.write_text(f'[worker]\nowner_address = "{OWNER_BOUNCEABLE}"\n')
    paths.crash_log.write_text(f"Fatal Python error\n{TEST_VECTOR_PHRASE}\n")
    # Things that must never leave the computer, some planted where logs live.
    (paths.wallets_dir / "main.vault.json").write_text(TEST_VECTOR_PHRASE)
    paths.jobs_db.write_bytes(b"SQLite format 3\x00")
    paths.payments_db("devnet").write_bytes(b"SQLite format 3\x00")
    (paths.log_dir / "jobs.sqlite3").write_bytes(b"SQLite format 3\x00")
    (paths.log_dir / "wallet.vault.json").write_text(TEST_VECTOR_PHRASE)
    (paths.data_dir / "models").mkdir()
    (paths.data_dir / "models" / "m.gguf").write_bytes(b"GGUF")
    return paths


DOCTOR = {"wallets": [{"address": OWNER_BOUNCEABLE}], "proxies": [{"address": "192.0.2.9:1"}]}


def bundle_files(path: Path) -> dict[str, str]:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name).decode() for name in archive.namelist()}


def test_the_bundle_has_a_fixed_layout_and_never_wallets_or_databases(tmp_path: Path) -> None:
    paths = data_dir(tmp_path)
    target = tmp_path / "out" / "support.zip"
    result = write_support_bundle(target, paths, DOCTOR)
    files = bundle_files(target)
    assert list(files) == [
        f"{ROOT}/versions.json",
        f"{ROOT}/doctor.json",
        f"{ROOT}/settings.toml",
        f"{ROOT}/crash.log",
        f"{ROOT}/logs/cocoon-provider.log",
        f"{ROOT}/logs/cocoon-provider.log.1",
        f"{ROOT}/logs/engine-devnet.log",
        REPORT_NAME,
    ]
    assert result.entries == tuple(files)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not [p for p in target.parent.iterdir() if p != target]  # no temp file left
    everything = "\n".join(files.values())
    assert "SQLite" not in everything
    assert "GGUF" not in everything
    assert "decorate" not in everything  # the planted mnemonic: crash log, log, wallet files
    assert "<address #1>" in files[f"{ROOT}/doctor.json"]
    assert "<address #1>" in files[f"{ROOT}/settings.toml"]
    assert "older <address #1>" in files[f"{ROOT}/logs/cocoon-provider.log.1"]
    assert '"PySide6":' in files[f"{ROOT}/versions.json"]


def test_the_report_lists_kinds_and_counts_never_values(tmp_path: Path) -> None:
    paths = data_dir(tmp_path)
    result = write_support_bundle(tmp_path / "support.zip", paths, DOCTOR)
    report = bundle_files(tmp_path / "support.zip")[REPORT_NAME]
    assert (
        f"{ROOT}/logs/cocoon-provider.log: prompt-like text: 2, secret: 2, TON address: 4, "
        "IP address: 3" in report
    )
    assert f"{ROOT}/doctor.json: TON address: 1, IP address: 1" in report
    assert f"{ROOT}/crash.log: secret: 1" in report
    assert f"{ROOT}/logs/engine-devnet.log: nothing removed" in report
    assert result.redacted == 16
    assert f"Total: {result.redacted} items removed" in report
    assert "Distinct TON addresses: 2; distinct IP addresses: 4" in report
    for value in (OWNER_BOUNCEABLE, OWNER_RAW, "203.0.113.7", "hunter2", "decorate", "poem"):
        assert value not in report


def test_two_bundles_of_the_same_files_are_identical(tmp_path: Path) -> None:
    paths = data_dir(tmp_path)
    first, count = build_bundle(collect(paths, DOCTOR))
    assert (first, count) == build_bundle(collect(paths, DOCTOR))
    names = zipfile.ZipFile(io.BytesIO(first)).namelist()
    assert all(name.startswith(f"{ROOT}/") for name in names)


def test_an_existing_file_is_kept_unless_overwrite(tmp_path: Path) -> None:
    paths = data_dir(tmp_path)
    target = tmp_path / "support.zip"
    target.write_text("keep me")
    with pytest.raises(SupportBundleError, match="already exists") as caught:
        write_support_bundle(target, paths, DOCTOR)
    assert "--force" in caught.value.hint
    assert target.read_text() == "keep me"
    write_support_bundle(target, paths, DOCTOR, overwrite=True)
    assert zipfile.is_zipfile(target)


def test_a_huge_log_contributes_its_newest_whole_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.core.support_bundle.MAX_FILE_BYTES", 64)
    paths = AppPaths(tmp_path / "data").ensure()
    (paths.log_dir / "cocoon-provider.log").write_text("x" * 40 + "\n" + "zzz\n" * 20 + "newest\n")
    files = bundle_files(write_support_bundle(tmp_path / "s.zip", paths, {}).path)
    log = files[f"{ROOT}/logs/cocoon-provider.log"]
    assert log.endswith("zzz\nnewest\n")
    assert "x" not in log
    assert "note: only the newest" in files[REPORT_NAME]
