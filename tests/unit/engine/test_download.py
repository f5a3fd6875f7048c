"""ModelDownloader against a real HTTP server on loopback, and the GGUF check of model files.

The server is a small raw HTTP/1.1 server (asyncio streams) so a test can cut the connection in the
middle of a body, ignore Range, redirect with Hugging Face's X-Linked-Etag, or stall.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import shutil
import struct
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from app.engine.catalog import ModelEntry, bundled_model_path, load_catalog
from app.engine.download import (
    ChecksumMismatchError,
    DiskFullError,
    DownloadCancelledError,
    DownloadError,
    DownloadProgress,
    ModelDownloader,
)
from app.engine.gguf import ModelFileError, read_gguf_info

CHUNK = 64 * 1024


def tiny_gguf(floats: int) -> bytes:
    """A valid GGUF v3 file: two metadata keys and one F32 tensor of ``floats`` values."""

    def text(value: str) -> bytes:
        raw = value.encode()
        return struct.pack("<Q", len(raw)) + raw

    header = b"GGUF" + struct.pack("<IQQ", 3, 1, 2)
    meta = text("general.architecture") + struct.pack("<I", 8) + text("llama")
    meta += text("llama.context_length") + struct.pack("<II", 4, 2048)
    tensor = text("w") + struct.pack("<IQIQ", 1, floats, 0, 0)
    head = header + meta + tensor
    head += b"\0" * (-len(head) % 32)
    return head + os.urandom(floats * 4)


PAYLOAD = tiny_gguf(180_000)  # ~720 KB: several chunks, fits a 1 MiB tmpfs once


def entry_for(
    payload: bytes, *, sha256: str | None = "auto", name: str = "test/Tiny"
) -> ModelEntry:
    digest = hashlib.sha256(payload).hexdigest() if sha256 == "auto" else sha256
    return ModelEntry(
        name=name,
        file="tiny.gguf",
        size_bytes=len(payload),
        sha256=digest,
        quant="F32",
        context_length=2048,
        kv_bytes_per_token=1024,
        min_vram_bytes=len(payload),
        min_ram_bytes=len(payload),
        cpu_friendly=True,
        rank=1,
        license="test",
        package=None,
        url="https://example.invalid/tiny.gguf",
    )


@dataclass
class ModelServer:
    """What the server does is set per test; ``requests`` records each request's headers."""

    payload: bytes
    ranges: bool = True
    status: int | None = None
    drop_after: int | None = None  # cut the first body after this many bytes
    stall: asyncio.Event | None = None  # after the first chunk, wait for this
    linked_etag: str | None = None  # sent on a 302 hop, like huggingface.co
    requests: list[dict[str, str]] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/tiny.gguf") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._respond(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _respond(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        path = head.split(" ", 2)[1]
        headers = {
            k.strip().lower(): v.strip()
            for k, v in (line.split(":", 1) for line in head.split("\r\n")[1:] if ":" in line)
        }
        self.requests.append(headers)
        if path == "/redirect":
            writer.write(
                f"HTTP/1.1 302 Found\r\nLocation: /tiny.gguf\r\nX-Linked-Etag: "
                f'"{self.linked_etag}"\r\nContent-Length: 0\r\n\r\n'.encode()
            )
            await writer.drain()
            return
        if self.status is not None:
            writer.write(f"HTTP/1.1 {self.status} Nope\r\nContent-Length: 0\r\n\r\n".encode())
            await writer.drain()
            return
        start, status = 0, "200 OK"
        match = re.match(r"bytes=(\d+)-$", headers.get("range", ""))
        extra = ""
        if self.ranges and match:
            start, status = int(match.group(1)), "206 Partial Content"
            extra = f"Content-Range: bytes {start}-{len(self.payload) - 1}/{len(self.payload)}\r\n"
        body = self.payload[start:]
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}"
            "Connection: close\r\n\r\n".encode()
        )
        if self.drop_after is not None:
            writer.write(body[: self.drop_after])
            self.drop_after = None
            await writer.drain()
            return  # the connection closes mid-body
        for offset in range(0, len(body), CHUNK):
            writer.write(body[offset : offset + CHUNK])
            await writer.drain()
            if self.stall is not None and offset == 0:
                await self.stall.wait()


@pytest.fixture
async def server() -> AsyncIterator[ModelServer]:
    model_server = ModelServer(PAYLOAD)
    listener = await asyncio.start_server(model_server.handle, "127.0.0.1", 0)
    model_server.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield model_server
        if model_server.stall is not None:
            model_server.stall.set()


def downloader(folder: Path, *, retries: int = 5, disk_margin: int = 0) -> ModelDownloader:
    return ModelDownloader(
        folder, chunk_size=CHUNK, retries=retries, retry_delay=0.0, disk_margin=disk_margin
    )


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def record(loader: ModelDownloader) -> list[DownloadProgress]:
    seen: list[DownloadProgress] = []
    loader.progress.subscribe(seen.append)
    return seen


# -- downloads -------------------------------------------------------------------------------------


async def test_download_verifies_and_moves_the_file_into_place(
    tmp_path: Path, server: ModelServer
) -> None:
    loader = downloader(tmp_path)
    seen = record(loader)
    path = await loader.download(entry_for(PAYLOAD), url=server.url())
    assert path == tmp_path / "tiny.gguf"
    assert path.read_bytes() == PAYLOAD
    assert not loader.part_path(entry_for(PAYLOAD)).exists()
    states = [p.state for p in seen]
    assert states[0] == "checking"
    assert "downloading" in states
    assert states[-2:] == ["verifying", "done"]
    assert seen[-1].fraction == 1.0
    assert [p.downloaded_bytes for p in seen] == sorted(p.downloaded_bytes for p in seen)


async def test_resumes_after_a_dropped_connection(tmp_path: Path, server: ModelServer) -> None:
    server.drop_after = 300_000
    path = await downloader(tmp_path).download(entry_for(PAYLOAD), url=server.url())
    assert path.read_bytes() == PAYLOAD
    assert len(server.requests) == 2
    assert "range" not in server.requests[0]
    resumed_at = int(server.requests[1]["range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 300_000


async def test_resumes_a_part_file_left_by_an_earlier_run(
    tmp_path: Path, server: ModelServer
) -> None:
    (tmp_path / "tiny.gguf.part").write_bytes(PAYLOAD[:400_000])
    path = await downloader(tmp_path).download(entry_for(PAYLOAD), url=server.url())
    assert path.read_bytes() == PAYLOAD
    assert server.requests[0]["range"] == "bytes=400000-"


async def test_server_without_range_support_restarts_from_zero(
    tmp_path: Path, server: ModelServer
) -> None:
    server.ranges = False
    (tmp_path / "tiny.gguf.part").write_bytes(b"garbage that must not survive" * 100)
    path = await downloader(tmp_path).download(entry_for(PAYLOAD), url=server.url())
    assert path.read_bytes() == PAYLOAD
    assert len(server.requests) == 2
    assert "range" in server.requests[0]
    assert "range" not in server.requests[1]


async def test_wrong_hash_deletes_the_file_with_a_clear_error(
    tmp_path: Path, server: ModelServer
) -> None:
    loader = downloader(tmp_path)
    entry = entry_for(PAYLOAD, sha256="0" * 64)
    with pytest.raises(ChecksumMismatchError, match="SHA-256 does not match"):
        await loader.download(entry, url=server.url())
    assert files_in(tmp_path) == []
    assert loader.progress.value.state == "failed"
    assert "SHA-256" in loader.progress.value.reason


async def test_not_found_is_a_clear_error(tmp_path: Path, server: ModelServer) -> None:
    server.status = 404
    with pytest.raises(DownloadError, match=r"not found at its download address \(404\)"):
        await downloader(tmp_path).download(entry_for(PAYLOAD), url=server.url())
    assert files_in(tmp_path) == []


async def test_a_server_that_keeps_failing_gives_up_with_a_reason(
    tmp_path: Path, server: ModelServer
) -> None:
    server.status = 503
    with pytest.raises(DownloadError, match="keeps failing: the server answered 503"):
        await downloader(tmp_path, retries=2).download(entry_for(PAYLOAD), url=server.url())
    assert len(server.requests) == 3


async def test_the_server_offering_another_size_is_refused(
    tmp_path: Path, server: ModelServer
) -> None:
    entry = replace(entry_for(PAYLOAD), size_bytes=len(PAYLOAD) + 1)
    with pytest.raises(DownloadError, match=r"has \d+ bytes; the app expects"):
        await downloader(tmp_path).download(entry, url=server.url())


async def test_linked_etag_that_contradicts_the_catalog_is_refused_before_downloading(
    tmp_path: Path, server: ModelServer
) -> None:
    server.linked_etag = "f" * 64
    with pytest.raises(ChecksumMismatchError, match="different file"):
        await downloader(tmp_path).download(entry_for(PAYLOAD), url=server.url("/redirect"))
    assert not (tmp_path / "tiny.gguf").exists()


async def test_without_a_catalog_hash_the_servers_linked_etag_is_checked(
    tmp_path: Path, server: ModelServer
) -> None:
    server.linked_etag = hashlib.sha256(PAYLOAD).hexdigest()
    entry = entry_for(PAYLOAD, sha256=None)
    path = await downloader(tmp_path).download(entry, url=server.url("/redirect"))
    assert path.read_bytes() == PAYLOAD
    server.linked_etag = "e" * 64
    path.unlink()
    with pytest.raises(ChecksumMismatchError):
        await downloader(tmp_path).download(entry, url=server.url("/redirect"))


async def test_a_download_that_is_not_a_gguf_file_is_deleted(
    tmp_path: Path, server: ModelServer
) -> None:
    server.payload = b"<html>login required</html>" * 1000
    entry = entry_for(server.payload, sha256=None)
    with pytest.raises(DownloadError, match="is not a GGUF model file"):
        await downloader(tmp_path).download(entry, url=server.url())
    assert files_in(tmp_path) == []


async def test_an_existing_verified_file_needs_no_network(
    tmp_path: Path, server: ModelServer
) -> None:
    (tmp_path / "tiny.gguf").write_bytes(PAYLOAD)
    path = await downloader(tmp_path).download(entry_for(PAYLOAD), url=server.url())
    assert path.read_bytes() == PAYLOAD
    assert server.requests == []


async def test_cancel_stops_and_keeps_the_part_for_later(
    tmp_path: Path, server: ModelServer
) -> None:
    server.stall = asyncio.Event()
    loader = downloader(tmp_path)
    entry = entry_for(PAYLOAD)

    def cancel_once_bytes_arrive(progress: DownloadProgress) -> None:
        if progress.downloaded_bytes > 0:
            loader.cancel()

    loader.progress.subscribe(cancel_once_bytes_arrive)
    with pytest.raises(DownloadCancelledError, match="was cancelled"):
        await loader.download(entry, url=server.url())
    assert loader.progress.value.state == "cancelled"
    assert PAYLOAD.startswith(loader.part_path(entry).read_bytes())
    server.stall.set()
    server.stall = None
    await loader.aclose()


async def test_a_second_download_at_once_is_refused(tmp_path: Path, server: ModelServer) -> None:
    server.stall = asyncio.Event()
    loader = downloader(tmp_path)
    first = asyncio.create_task(loader.download(entry_for(PAYLOAD), url=server.url()))
    downloading = asyncio.Event()
    loader.progress.subscribe(lambda p: downloading.set() if p.state == "downloading" else None)
    await downloading.wait()
    with pytest.raises(DownloadError, match="downloading already"):
        await loader.download(entry_for(PAYLOAD), url=server.url())
    server.stall.set()
    assert (await first).read_bytes() == PAYLOAD


async def test_not_enough_free_disk_is_refused_before_starting(
    tmp_path: Path, server: ModelServer
) -> None:
    loader = downloader(tmp_path, disk_margin=1 << 60)
    with pytest.raises(DiskFullError, match="Not enough disk space") as err:
        await loader.download(entry_for(PAYLOAD), url=server.url())
    assert "Free some disk space" in err.value.hint
    assert server.requests == []


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs (needs root and mount(8)); skipped where that is not possible."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a 1 MiB tmpfs needs root")
    folder = tmp_path / "small-disk"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


async def test_disk_filling_up_during_the_download_keeps_a_resumable_part(
    small_disk: Path, server: ModelServer
) -> None:
    loader = downloader(small_disk)
    entry = entry_for(PAYLOAD)
    filler = small_disk / "filler"

    def fill_disk_once_bytes_arrive(progress: DownloadProgress) -> None:
        if progress.downloaded_bytes > 0 and not filler.exists():
            with contextlib.suppress(OSError):  # fill what is left, up to ENOSPC
                filler.write_bytes(b"\0" * (1 << 20))

    unsubscribe = loader.progress.subscribe(fill_disk_once_bytes_arrive)
    with pytest.raises(DiskFullError, match="disk filled up") as err:
        await loader.download(entry, url=server.url())
    assert "resumes" in err.value.hint
    part = loader.part_path(entry).read_bytes()
    assert 0 < len(part) < len(PAYLOAD)
    assert PAYLOAD.startswith(part)  # a clean prefix: nothing half-written
    unsubscribe()
    filler.unlink()
    path = await loader.download(entry, url=server.url())
    assert path.read_bytes() == PAYLOAD
    assert server.requests[-1]["range"] == f"bytes={len(part)}-"


# -- GGUF checks -----------------------------------------------------------------------------------


def test_tiny_gguf_and_the_bundled_model_pass_the_check(tmp_path: Path) -> None:
    (tmp_path / "t.gguf").write_bytes(PAYLOAD)
    info = read_gguf_info(tmp_path / "t.gguf")
    assert (info.version, info.tensor_count, info.context_length) == (3, 1, 2048)
    bundled = read_gguf_info(bundled_model_path(load_catalog().default))
    assert bundled.architecture == "llama"
    assert bundled.kv_bytes_per_token == load_catalog().default.kv_bytes_per_token


def _copy_prefix(source: Path, target: Path, keep: int, size: int) -> Path:
    with source.open("rb") as src, target.open("wb") as dst:
        dst.write(src.read(keep))
    os.truncate(target, size)  # sparse: the length is what the check looks at
    return target


@pytest.mark.parametrize(
    ("keep", "cut", "message"),
    [
        (2_000_000, 2_000_000, "incomplete"),  # cut inside the metadata
        (4_000_000, 4_000, "incomplete"),  # header whole, tensor data short by 4 kB
    ],
)
def test_truncated_real_model_is_rejected(
    tmp_path: Path, keep: int, cut: int, message: str
) -> None:
    source = bundled_model_path(load_catalog().default)
    size = source.stat().st_size
    target = _copy_prefix(source, tmp_path / "cut.gguf", keep, min(keep, size - cut))
    with pytest.raises(ModelFileError, match=message) as err:
        read_gguf_info(target)
    assert "download it again" in err.value.hint


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a GGUF model file"),
        (b"GGU", "not a GGUF model file"),
        (b"PK\x03\x04" + b"\0" * 100, "not a GGUF model file"),
        (b"GGUF" + struct.pack("<I", 1) + b"\0" * 40, "GGUF version 1"),
        (b"GGUF" + struct.pack("<IQQ", 3, 1 << 40, 0), "header counts are impossible"),
        (b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 40), "impossible length"),
        (
            PAYLOAD[:24] + struct.pack("<Q", 20) + b"general.architecture" + struct.pack("<I", 99),
            "unknown type 99",
        ),
        (PAYLOAD[:100], "incomplete"),
    ],
)
def test_corrupt_model_files_get_clear_errors(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match=message):
        read_gguf_info(path)


def test_missing_and_unreadable_model_files(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        read_gguf_info(tmp_path / "absent.gguf")
    with pytest.raises(ModelFileError, match="cannot be read"):
        read_gguf_info(tmp_path)  # a folder
