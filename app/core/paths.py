"""Where the app keeps its files: the data directory layout and the bundled resources."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from app import APP_NAME

DATA_DIR_ENV = "COCOON_PROVIDER_DATA_DIR"


def default_data_dir() -> Path:
    """The per-user data folder (``--data-dir`` or ``$COCOON_PROVIDER_DATA_DIR`` override it)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def resources_dir() -> Path:
    """The bundled ``resources/`` folder: inside the installed wheel, else the source tree's."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_resources"
    if packaged.is_dir():
        return packaged
    return here.parent / "resources"


@dataclass(frozen=True, slots=True)
class AppPaths:
    """Every file and folder below one data directory. Creating them is :meth:`ensure`'s job."""

    data_dir: Path

    @property
    def settings_file(self) -> Path:
        return self.data_dir / "settings.toml"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "cocoon-provider.log"

    @property
    def crash_log(self) -> Path:
        return self.data_dir / "crash.log"

    @property
    def wallets_dir(self) -> Path:
        return self.data_dir / "wallets"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def run_dir(self) -> Path:
        """Sockets and other per-run files of child processes."""
        return self.data_dir / "run"

    @property
    def jobs_db(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    def payments_db(self, network: str) -> Path:
        """Vouchers, payouts and the earnings ledger of one network (money: never shared)."""
        return self.data_dir / f"payments-{network}.sqlite3"

    @property
    def devnet_dir(self) -> Path:
        return self.data_dir / "devnet"

    def ensure(self) -> AppPaths:
        """Create the data directory tree, private to the user (0700)."""
        for folder in (self.data_dir, self.log_dir, self.wallets_dir, self.cache_dir, self.run_dir):
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self
