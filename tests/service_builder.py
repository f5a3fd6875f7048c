"""Build the app's real services for a test: fake NVML, fast wallet KDF, in-memory keyring, and
settings overrides that are not saved."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import nacl.pwhash

from app.bootstrap import BuildOptions, Services, build_services
from app.core.paths import AppPaths
from app.core.settings import NetworkName, Settings
from app.core.settings_store import SettingsStore
from app.wallet.chain import ChainBackend
from app.wallet.keyring_cache import KeyringCache
from app.wallet.vault import KdfParams
from tests.conftest import MemoryKeyring
from tests.fakes.fake_pynvml import FakeNvml

# A testnet address with no keys here: where test earnings go when a test needs no wallet.
TEST_OWNER = "0QDLYGhRHNqXquKXJazsjMBUUhXtmZ_Nom43-_sztpg80Q6E"
FAST_KDF = KdfParams(
    opslimit=nacl.pwhash.argon2id.OPSLIMIT_MIN, memlimit=nacl.pwhash.argon2id.MEMLIMIT_MIN
)


def build_test_services(
    tmp_path: Path,
    network: NetworkName = "devnet",
    *,
    backend_url: str = "",
    model: str = "",
    demand_per_minute: int = 0,
    root_config_file: str = "",
    owner_address: str = "",
    root_contract_address: str = "",
    chain: ChainBackend | None = None,
    plain_tcp: bool = True,
) -> Services:
    """Services over ``tmp_path`` (one fake GPU); ``backend_url`` replaces the built-in engine.

    ``plain_tcp`` (the default here) dials custom proxies without the router leg: the tests'
    proxies are the devnet's own test proxy on loopback."""
    paths = AppPaths(tmp_path).ensure()

    def override(settings: Settings) -> Settings:
        return dataclasses.replace(
            settings,
            engine=dataclasses.replace(settings.engine, backend_url=backend_url, model=model),
            worker=dataclasses.replace(
                settings.worker,
                root_config_file=root_config_file,
                owner_address=owner_address,
                root_contract_address=root_contract_address,
                plain_tcp=plain_tcp,
            ),
            devnet=dataclasses.replace(
                settings.devnet, demand_requests_per_minute=demand_per_minute
            ),
        )

    options = BuildOptions(
        nvml=FakeNvml(1).module,
        override=override,
        wallet_kdf=FAST_KDF,
        wallet_refresh_s=None,
        keyring=KeyringCache(backend=MemoryKeyring()),
        chain=chain,
    )
    return build_services(paths, SettingsStore.load(paths.settings_file), network, options)
