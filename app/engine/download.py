"""``ModelDownloader``: fetching a model file over HTTP with resume, progress, checks, cancelling.

Bytes go to ``<file>.part`` next to the final file and are hashed as they arrive; only a file whose
size, SHA-256 and GGUF header are right is renamed into place, so a crash, a dropped connection or a
full disk never leaves a half file that looks whole, and the ``.part`` lets the next try resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import aiohttp

from app.core.errors import UserFacingError
from app.core.observable import Observable
from app.engine.catalog import ModelEntry
from app.engine.gguf import ModelFileError, read_gguf_info

_log = logging.getLogger(__name__)

DownloadState = Literal[
    "idle", "checking", "downloading", "verifying", "done", "failed", "cancelled"
]

_CONTENT_RANGE_RE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_HASH_BLOCK = 4 << 20
_THREAD_TIMEOUT = 120.0


class DownloadError(UserFacingError):
    """A model download that failed; the message says why and what to do."""


class DiskFullError(DownloadError):
    """Not enough free disk space for the model (before or during the download)."""


class ChecksumMismatchError(DownloadError):
    """The downloaded bytes are not the expected file."""


class DownloadCancelledError(DownloadError):
    """The user cancelled the download (the ``.part`` file is kept for resuming)."""


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """The downloader's state; ``total_bytes`` is 0 while unknown."""

    state: DownloadState = "idle"
    model: str = ""
    downloaded_bytes: int = 0
    total_bytes: int = 0
    reason: str = ""

    @property
    def fraction(self) -> float:
        return self.downloaded_bytes / self.total_bytes if self.total_bytes else 0.0


class _RestartError(Exception):
    """The server ignored or mangled our Range request: start over from byte 0."""


class _TransientError(Exception):
    """A failure worth retrying (dropped connection, 5xx)."""


class ModelDownloader:
    """Downloads catalog models into ``models_dir``, one at a time.

    ``download()`` returns the final path or raises a :class:`DownloadError`; ``cancel()`` stops a
    running download (the caller then gets :class:`DownloadCancelledError`). Transient failures are
    retried ``retries`` times in a row (resuming where the bytes stopped), waiting ``retry_delay``
    seconds, doubled each time.
    """

    def __init__(
        self,
        models_dir: Path,
        *,
        chunk_size: int = 1 << 20,
        retries: int = 5,
        retry_delay: float = 1.0,
        disk_margin: int = 256 << 20,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> None:
        self._dir = models_dir
        self._chunk = chunk_size
        self._retries = retries
        self._retry_delay = retry_delay
        self._margin = disk_margin
        self._timeout = timeout or aiohttp.ClientTimeout(sock_connect=30, sock_read=60)
        self.progress: Observable[DownloadProgress] = Observable(DownloadProgress())
        self._task: asyncio.Task[Path] | None = None
        self._cancel_requested = False

    def part_path(self, model: ModelEntry) -> Path:
        return self._dir / f"{model.file}.part"

    async def download(self, model: ModelEntry, *, url: str | None = None) -> Path:
        """Download ``model`` (from ``url`` or its catalog URL) and return the verified file."""
        if self._task is not None and not self._task.done():
            raise DownloadError(
                "Another model is downloading already.", hint="Wait for it to finish or cancel it."
            )
        source = url or model.url
        if source is None:
            raise DownloadError(f"{model.name} ships with the app; it is not downloaded.")
        self._cancel_requested = False
        self._task = asyncio.create_task(self._run(model, source), name=f"download {model.file}")
        try:
            return await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._cancel_requested and (current is None or not current.cancelling()):
                self._publish(state="cancelled", reason="Download cancelled.")
                raise DownloadCancelledError(
                    f"The download of {model.name} was cancelled.",
                    hint="Start it again to continue where it stopped.",
                ) from None
            raise

    def cancel(self) -> None:
        """Stop the running download, if any; the partial file stays for a later resume."""
        if self._task is not None and not self._task.done():
            self._cancel_requested = True
            self._task.cancel()

    async def aclose(self) -> None:
        self.cancel()
        if self._task is not None:
            with contextlib.suppress(BaseException):
                await self._task

    # -- the download itself ------------------------------------------------------------------

    async def _run(self, model: ModelEntry, url: str) -> Path:
        self.progress.set(DownloadProgress("checking", model.name, 0, model.size_bytes))
        try:
            return await self._fetch_and_verify(model, url)
        except DownloadError as exc:
            self._publish(state="failed", reason=exc.message)
            raise
        except ModelFileError as exc:
            self._publish(state="failed", reason=exc.message)
            raise DownloadError(exc.message, hint=exc.hint) from None

    async def _fetch_and_verify(self, model: ModelEntry, url: str) -> Path:
        dest = self._dir / model.file
        part = self.part_path(model)
        if dest.is_file() and dest.stat().st_size == model.size_bytes:
            await self._verify(model, dest, None, expected_sha=model.sha256)
            self._publish(state="done", downloaded_bytes=model.size_bytes)
            return dest
        self._dir.mkdir(parents=True, exist_ok=True)
        have = part.stat().st_size if part.exists() else 0
        if have > model.size_bytes:
            part.unlink()
            have = 0
        self._check_free_space(model, have)
        hasher = await self._thread(hash_file, part) if have else hashlib.sha256()
        server_sha, hasher = await self._transfer(model, url, part, hasher)
        self._publish(state="verifying")
        await self._verify(model, part, hasher, expected_sha=model.sha256 or server_sha)
        await self._thread(_fsync_path, part)
        os.replace(part, dest)
        self._publish(state="done", downloaded_bytes=model.size_bytes, total_bytes=model.size_bytes)
        _log.info("model %s downloaded to %s", model.name, dest)
        return dest

    def _check_free_space(self, model: ModelEntry, have: int) -> None:
        free = shutil.disk_usage(self._dir).free
        needed = model.size_bytes - have + self._margin
        if free < needed:
            raise DiskFullError(
                f"Not enough disk space for {model.name}: it needs {_gib(needed)} more, "
                f"{_gib(free)} is free in {self._dir}.",
                hint="Free some disk space (or move the data folder), then try again.",
            )

    async def _transfer(
        self, model: ModelEntry, url: str, part: Path, hasher: Any
    ) -> tuple[str | None, Any]:
        """Fetch the missing bytes into ``part``; return the server's sha256 (if it sent one)
        and the hasher of the whole part (a new one if the download had to start over)."""
        failures, delay, server_sha = 0, self._retry_delay, None
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            while True:
                have = _size(part)
                if have == model.size_bytes:
                    return server_sha, hasher
                try:
                    server_sha = await self._one_request(session, model, url, part, hasher, have)
                    problem = "the server sent no data"
                except _RestartError:
                    _remove(part)
                    hasher = hashlib.sha256()
                    continue
                except _TransientError as exc:
                    problem = str(exc)
                if _size(part) > have:
                    failures, delay = 0, self._retry_delay
                    continue
                failures += 1
                if failures > self._retries:
                    raise DownloadError(
                        f"The download of {model.name} keeps failing: {problem}.",
                        hint="Check the internet connection; the next try resumes.",
                    )
                _log.info("download of %s interrupted (%s); retrying", model.name, problem)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def _one_request(
        self,
        session: aiohttp.ClientSession,
        model: ModelEntry,
        url: str,
        part: Path,
        hasher: Any,
        have: int,
    ) -> str | None:
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            async with session.get(url, headers=headers) as resp:
                server_sha = _server_sha256(resp)
                if model.sha256 and server_sha and server_sha != model.sha256:
                    raise ChecksumMismatchError(
                        f"The server offers a different file for {model.name} than the app "
                        "expects (its SHA-256 differs).",
                        hint="The model may have been changed upstream; update the app.",
                    )
                start = self._check_response(resp, model, have)
                await self._receive(resp, model, part, hasher, start)
                return server_sha
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise _TransientError(_describe(exc)) from None

    def _check_response(self, resp: aiohttp.ClientResponse, model: ModelEntry, have: int) -> int:
        """Validate status and length; return the byte offset the body starts at."""
        status = resp.status
        if status == 416 and have:
            raise _RestartError
        if status == 404:
            raise DownloadError(
                f"{model.name} was not found at its download address (404).",
                hint="The file may have moved; update the app.",
            )
        if status in (401, 403):
            raise DownloadError(
                f"The download server refused {model.name} ({status}).",
                hint="The model may need an account or licence acceptance.",
            )
        if status >= 500 or status == 429:
            raise _TransientError(f"the server answered {status}")
        if status not in (200, 206):
            raise DownloadError(f"The download server answered {status} for {model.name}.")
        if status == 200:
            if have:
                raise _RestartError  # no Range support: the body is the whole file
            length = resp.content_length
            start, total = 0, length
        else:
            match = _CONTENT_RANGE_RE.match(resp.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != have:
                raise _RestartError
            start = have
            total = None if match.group(3) == "*" else int(match.group(3))
        if total is not None and total != model.size_bytes:
            raise DownloadError(
                f"The server's file for {model.name} has {total} bytes; the app expects "
                f"{model.size_bytes}.",
                hint="The model may have been changed upstream; update the app.",
            )
        return start

    async def _receive(
        self, resp: aiohttp.ClientResponse, model: ModelEntry, part: Path, hasher: Any, start: int
    ) -> None:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        written = start
        try:
            self._publish(state="downloading", downloaded_bytes=written)
            async for chunk in resp.content.iter_chunked(self._chunk):
                if written + len(chunk) > model.size_bytes:
                    raise DownloadError(f"The server sent more bytes than {model.name} has.")
                await self._thread(_append, fd, chunk, hasher, written)
                written += len(chunk)
                self._publish(downloaded_bytes=written)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(
                    f"The disk filled up while downloading {model.name} "
                    f"({_gib(written)} of {_gib(model.size_bytes)} saved).",
                    hint="Free some disk space and start the download again; it resumes.",
                ) from None
            raise DownloadError(f"Writing {part} failed: {exc.strerror}.") from None
        finally:
            os.close(fd)
        if written < model.size_bytes and resp.content_length is not None:
            raise _TransientError("the connection ended early")

    async def _verify(
        self, model: ModelEntry, path: Path, hasher: Any, *, expected_sha: str | None
    ) -> None:
        size = _size(path)
        if size != model.size_bytes:
            _remove(path)
            raise DownloadError(
                f"The download of {model.name} is incomplete ({size} bytes).",
                hint="Start the download again.",
            )
        if hasher is None:
            hasher = await self._thread(hash_file, path)
        if expected_sha is None:
            _log.info("no SHA-256 known for %s; checking the GGUF structure only", model.name)
        elif hasher.hexdigest() != expected_sha:
            _remove(path)
            raise ChecksumMismatchError(
                f"The downloaded file for {model.name} is damaged (its SHA-256 does not match); "
                "it was deleted.",
                hint="Start the download again.",
            )
        try:
            await self._thread(read_gguf_info, path)
        except ModelFileError:
            _remove(path)
            raise

    async def _thread(self, func: Any, *args: Any) -> Any:
        return await asyncio.wait_for(asyncio.to_thread(func, *args), _THREAD_TIMEOUT)

    def _publish(self, **changes: Any) -> None:
        self.progress.set(replace(self.progress.value, **changes))


# Metadata calls on a local file: microseconds, not worth a thread hop.
def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def _append(fd: int, chunk: bytes, hasher: Any, offset: int) -> None:
    """Write all of ``chunk``; on failure cut the file back to ``offset`` so it stays a prefix."""
    view = memoryview(chunk)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, offset)
        raise
    hasher.update(chunk)


def hash_file(path: Path) -> Any:
    """The SHA-256 hasher fed with the whole file (blocking; call it off the event loop)."""
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            hasher.update(block)
    return hasher


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _server_sha256(resp: aiohttp.ClientResponse) -> str | None:
    """Hugging Face sends an LFS file's sha256 as ``X-Linked-Etag`` on the redirect response."""
    for response in (*resp.history, resp):
        etag = response.headers.get("X-Linked-Etag", "").strip().strip('"').lower()
        if _HEX64_RE.match(etag):
            return etag
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "the server stopped sending"
    return f"connection problem ({type(exc).__name__})"


def _gib(value: int) -> str:
    return f"{value / (1 << 30):.2f} GiB"
