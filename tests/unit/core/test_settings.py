"""Settings: round trip, migration, corrupt files, unknown keys, wrong types, ranges, saves."""

from __future__ import annotations

import dataclasses
import shutil
import stat
from pathlib import Path

import pytest

from app.core.errors import SettingsError
from app.core.settings import (
    SCHEMA_VERSION,
    EngineSettings,
    Settings,
    WorkerSettings,
    field_help,
    settings_from_dict,
    settings_to_dict,
)
from app.core.settings_store import SettingsStore, migrate

FIXTURES = Path(__file__).parents[2] / "fixtures" / "settings"


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    store = SettingsStore.load(tmp_path / "settings.toml")
    assert store.current.value == Settings()
    assert store.current.value.general.network == "devnet"
    assert store.notices == ()
    assert not (tmp_path / "settings.toml").exists()


def test_round_trip_through_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    store = SettingsStore.load(path)
    seen: list[Settings] = []
    store.current.subscribe(seen.append)
    store.update(
        lambda s: dataclasses.replace(
            s,
            engine=dataclasses.replace(s.engine, gpu_indices=(0, 1), temperature_cap_c=70),
            worker=dataclasses.replace(s.worker, proxies=("127.0.0.1:1", "10.0.0.1:2")),
        )
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = SettingsStore.load(path)
    assert again.current.value == store.current.value
    assert again.current.value.engine.gpu_indices == (0, 1)
    assert seen == [store.current.value]
    assert list(tmp_path.iterdir()) == [path]  # no temp files left behind


def test_migration_from_v1(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    shutil.copy(FIXTURES / "v1.toml", path)
    store = SettingsStore.load(path)
    worker = store.current.value.worker
    assert worker.proxies == ("127.0.0.1:5222",)
    assert worker.coefficient == 1500
    assert worker.owner_address.startswith("UQ")
    assert store.current.value.engine.temperature_cap_c == 75
    assert f"schema_version = {SCHEMA_VERSION}" in path.read_text()
    assert SettingsStore.load(path).current.value == store.current.value


def test_migration_of_empty_v1_proxy() -> None:
    data = migrate({"schema_version": 1, "network": {"proxy": ""}})
    assert data == {"schema_version": 2, "worker": {"proxies": []}}
    assert migrate({"schema_version": 1}) == {"schema_version": 2}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"schema_version": 1, "network": "x"}, "'network' must be a table"),
        ({"schema_version": 1, "network": {"coefficient": "high"}}, "network.coefficient"),
        ({"schema_version": 1, "network": {"coefficient": True}}, "network.coefficient"),
        ({"schema_version": 0}, "positive whole number"),
        ({"schema_version": "2"}, "positive whole number"),
        ({"schema_version": 99}, "newer version"),
    ],
)
def test_bad_migration_inputs(data: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        migrate(data)


@pytest.mark.allow_log_warnings
def test_corrupt_file_is_moved_aside_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    garbage = b"[general\nnetwork = = 'devnet'\n\xff"
    path.write_bytes(garbage)
    store = SettingsStore.load(path)
    assert store.current.value == Settings()
    asides = list(tmp_path.glob("settings.toml.corrupt-*"))
    assert len(asides) == 1
    assert asides[0].read_bytes() == garbage
    assert not path.exists()
    assert "moved to" in store.notices[0].message
    path.write_bytes(b"not = [toml")
    SettingsStore.load(path)
    assert len(list(tmp_path.glob("settings.toml.corrupt-*"))) == 2


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("surprise = 1\n", "surprise"),
        ("[engine]\nturbo = true\n", "engine.turbo"),
        ("[engine]\ntemperature_cap_c = 'hot'\n", "engine.temperature_cap_c"),
        ("[engine]\ntemperature_cap_c = true\n", "engine.temperature_cap_c"),
        ("[engine]\ntemperature_cap_c = 200\n", "engine.temperature_cap_c"),
        ("[engine]\ntemperature_cap_c = 10\n", "engine.temperature_cap_c"),
        ("[engine]\ngpu_indices = 0\n", "engine.gpu_indices"),
        ("[engine]\ngpu_indices = ['a']\n", "engine.gpu_indices[0]"),
        ("[engine]\nmodel = 5\n", "engine.model"),
        ("[general]\nnetwork = 'moon'\n", "general.network"),
        ("[general]\nclose_to_tray = 'yes'\n", "general.close_to_tray"),
        ("general = 3\n", "'general' must be a table"),
    ],
)
def test_invalid_values_name_the_key_and_keep_the_file(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(f"schema_version = {SCHEMA_VERSION}\n{text}")
    before = path.read_bytes()
    with pytest.raises(SettingsError, match=key.replace("[", r"\[").replace("]", r"\]")):
        SettingsStore.load(path)
    assert path.read_bytes() == before


def test_update_rejects_invalid_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    store = SettingsStore.load(path)
    store.save()
    before = path.read_bytes()
    with pytest.raises(SettingsError, match=r"worker\.coefficient"):
        store.update(lambda s: dataclasses.replace(s, worker=WorkerSettings(coefficient=-1)))
    assert path.read_bytes() == before
    assert store.current.value == Settings()


def test_wrong_schema_version_in_dict() -> None:
    with pytest.raises(SettingsError, match="schema_version"):
        settings_from_dict({"schema_version": 1})


def test_to_dict_lists_and_help() -> None:
    data = settings_to_dict(Settings(engine=EngineSettings(gpu_indices=(2,))))
    assert data["engine"]["gpu_indices"] == [2]
    assert "temperature" in field_help("engine", "temperature_cap_c")
