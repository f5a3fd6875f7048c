"""GGUF model files: reading header, metadata and tensor table to reject corrupt or truncated files.

The engine would otherwise crash (or worse, read garbage) deep inside llama.cpp; checking here turns
a bad file into a clear error before any child process starts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.core.errors import UserFacingError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = frozenset({2, 3})
_DEFAULT_ALIGNMENT = 32

# Sanity bounds: far above any real model, far below what a corrupt length field usually holds, so a
# flipped byte is reported as corruption instead of making us allocate gigabytes.
_MAX_COUNT = 1 << 24
_MAX_STRING = 64 << 20
_MAX_DIMS = 8

# value type id -> struct format of fixed-size scalars (GGUF spec, little-endian)
_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9

# ggml tensor type id -> (elements per block, bytes per block); checked against libggml's
# ggml_blck_size/ggml_type_size. Unknown types only get the weaker "offset inside the file" check.
_TENSOR_BLOCKS: dict[int, tuple[int, int]] = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 36),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
}


class ModelFileError(UserFacingError):
    """A model file that is missing, unreadable, corrupt or truncated."""


@dataclass(frozen=True, slots=True)
class GgufInfo:
    """What engine sizing needs from a GGUF file's metadata (``None`` where the file omits it)."""

    version: int
    tensor_count: int
    file_size: int
    architecture: str
    name: str
    context_length: int | None
    block_count: int | None
    embedding_length: int | None
    head_count: int | None
    head_count_kv: int | None

    @property
    def kv_bytes_per_token(self) -> int | None:
        """f16 K and V cache bytes for one token across all layers, if the metadata allows it."""
        if not (self.block_count and self.embedding_length and self.head_count):
            return None
        head_dim = self.embedding_length // self.head_count
        kv_heads = self.head_count_kv or self.head_count
        return 2 * self.block_count * kv_heads * head_dim * 2


class _Reader:
    """Bounds-checked little-endian reads that turn a short read into a truncation error."""

    def __init__(self, handle: BinaryIO, path: Path, size: int) -> None:
        self._handle = handle
        self._path = path
        self.size = size

    def tell(self) -> int:
        return self._handle.tell()

    def read(self, count: int) -> bytes:
        data = self._handle.read(count)
        if len(data) != count:
            raise _truncated(self._path)
        return data

    def skip(self, count: int) -> None:
        target = self._handle.tell() + count
        if target > self.size:
            raise _truncated(self._path)
        self._handle.seek(target)

    def scalar(self, fmt: str) -> int | float | bool:
        value: int | float | bool = struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]
        return value

    def u32(self) -> int:
        return int(struct.unpack("<I", self.read(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.read(8))[0])

    def string(self) -> str:
        length = self.u64()
        if length > _MAX_STRING:
            raise _corrupt(self._path, "a text field has an impossible length")
        return self.read(length).decode("utf-8", errors="replace")


def read_gguf_info(path: Path) -> GgufInfo:
    """Check ``path`` is a whole GGUF model file and return its key metadata.

    Blocking (reads the metadata, typically a few MB); call it through ``asyncio.to_thread``.
    Raises :class:`ModelFileError` for a missing, unreadable, non-GGUF, corrupt or truncated file.
    """
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise ModelFileError(
            f"The model file {path} does not exist.",
            hint="Delete it and download the model again (cocoon-provider models download NAME), "
            "or pick another model.",
        ) from None
    except OSError as exc:
        raise ModelFileError(
            f"The model file {path} cannot be read ({exc.strerror}).",
            hint="Check the file's permissions.",
        ) from None
    with handle:
        size = path.stat().st_size
        return _parse(_Reader(handle, path, size), path)


def _parse(reader: _Reader, path: Path) -> GgufInfo:
    if reader.size < len(GGUF_MAGIC) or reader.read(len(GGUF_MAGIC)) != GGUF_MAGIC:
        raise _not_gguf(path)
    version = reader.u32()
    if version not in SUPPORTED_VERSIONS:
        raise ModelFileError(
            f"The model file {path} uses GGUF version {version}, which this app cannot load.",
            hint="Use a GGUF file of version 2 or 3 (any current download).",
        )
    tensor_count, kv_count = reader.u64(), reader.u64()
    if tensor_count > _MAX_COUNT or kv_count > _MAX_COUNT:
        raise _corrupt(path, "its header counts are impossible")
    meta = _read_metadata(reader, path, kv_count)
    data_end = _read_tensor_table(reader, path, tensor_count, meta)
    if data_end > reader.size:
        raise _truncated(path)
    arch = str(meta.get("general.architecture", ""))
    return GgufInfo(
        version=version,
        tensor_count=tensor_count,
        file_size=reader.size,
        architecture=arch,
        name=str(meta.get("general.name", "")),
        context_length=_int_or_none(meta.get(f"{arch}.context_length")),
        block_count=_int_or_none(meta.get(f"{arch}.block_count")),
        embedding_length=_int_or_none(meta.get(f"{arch}.embedding_length")),
        head_count=_int_or_none(meta.get(f"{arch}.attention.head_count")),
        head_count_kv=_int_or_none(meta.get(f"{arch}.attention.head_count_kv")),
    )


def _read_metadata(reader: _Reader, path: Path, kv_count: int) -> dict[str, object]:
    meta: dict[str, object] = {}
    for _ in range(kv_count):
        key = reader.string()
        value_type = reader.u32()
        meta[key] = _read_value(reader, path, value_type)
    return meta


def _read_value(reader: _Reader, path: Path, value_type: int) -> object:
    if value_type in _SCALARS:
        return reader.scalar(_SCALARS[value_type])
    if value_type == _STRING:
        return reader.string()
    if value_type == _ARRAY:
        item_type, count = reader.u32(), reader.u64()
        if count > _MAX_COUNT:
            raise _corrupt(path, "a metadata list has an impossible length")
        if item_type in _SCALARS:
            # Arrays of numbers (token scores, types) are skipped: sizing never needs them.
            reader.skip(count * struct.calcsize(_SCALARS[item_type]))
            return None
        for _ in range(count):
            _read_value(reader, path, item_type)
        return None
    raise _corrupt(path, f"a metadata value has the unknown type {value_type}")


def _read_tensor_table(
    reader: _Reader, path: Path, tensor_count: int, meta: dict[str, object]
) -> int:
    """Read the tensor table; return the smallest file size that holds all tensor data."""
    furthest = 0
    for _ in range(tensor_count):
        reader.string()
        n_dims = reader.u32()
        if n_dims == 0 or n_dims > _MAX_DIMS:
            raise _corrupt(path, "a tensor has an impossible shape")
        elements = 1
        for _ in range(n_dims):
            elements *= reader.u64()
        tensor_type, offset = reader.u32(), reader.u64()
        block = _TENSOR_BLOCKS.get(tensor_type)
        nbytes = (elements // block[0]) * block[1] if block else 1
        furthest = max(furthest, offset + nbytes)
    alignment = _int_or_none(meta.get("general.alignment")) or _DEFAULT_ALIGNMENT
    data_start = -(-reader.tell() // alignment) * alignment
    return data_start + furthest


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _not_gguf(path: Path) -> ModelFileError:
    return ModelFileError(
        f"The file {path} is not a GGUF model file.",
        hint="Models must be in the GGUF format used by llama.cpp.",
    )


def _truncated(path: Path) -> ModelFileError:
    return ModelFileError(
        f"The model file {path} is incomplete (truncated).",
        hint="The download was probably interrupted. Delete the file and download it again.",
    )


def _corrupt(path: Path, what: str) -> ModelFileError:
    return ModelFileError(
        f"The model file {path} is damaged: {what}.",
        hint="Delete the file and download it again.",
    )
