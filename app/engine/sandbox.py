"""The engine sandbox: detecting bubblewrap, building the confined command line, applying limits.

``strong`` (Linux with a working bubblewrap): no network namespace at all, a Unix socket in one
read-write folder, read-only Python/app/model files, a private ``/tmp``, no home directory, no new
privileges, no capabilities. ``basic`` (no usable bubblewrap, or not Linux): 127.0.0.1 with a
per-run API key, resource limits and a process session of its own. Both set resource limits in
the child itself: ``python -m app.engine.sandbox --limits ... -- PROGRAM`` calls ``setrlimit`` and
then ``exec``s the program (no ``preexec_fn``, which is unsafe with threads).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import psutil

import app

# Where the sandboxed child sees its socket folder: short, so the socket path stays far below the
# 108-byte limit of sun_path whatever the host path is.
SANDBOX_RUN_DIR = Path("/run/cocoon")
_DETECT_TIMEOUT = 10.0
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
# Only what the dynamic loader and Python's start-up read from /etc (not passwd, not ssl, ...).
_SYSTEM_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
)
_NVIDIA_DEVICES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")


class SandboxLevel(StrEnum):
    STRONG = "strong"
    BASIC = "basic"


@dataclass(frozen=True, slots=True)
class SandboxReport:
    """The level the engine will run at and, in plain words, why."""

    level: SandboxLevel
    reason: str
    bwrap: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    """Per-process limits for the engine child (``None``: leave that limit alone).

    ``processes`` counts threads too and all of the user's processes (RLIMIT_NPROC is per user):
    use :func:`process_limit`, which leaves room for the user's other programs.
    """

    address_space: int | None = None
    open_files: int | None = 1024
    processes: int | None = None

    def as_args(self) -> list[str]:
        args: list[str] = []
        for flag, value in (
            ("--as", self.address_space),
            ("--nofile", self.open_files),
            ("--nproc", self.processes),
        ):
            if value is not None:
                args += [flag, str(value)]
        return args


def process_limit(headroom: int = 1024) -> int | None:
    """An RLIMIT_NPROC for the engine: the user's tasks now plus ``headroom`` for the engine's
    threads, so a fork bomb stops at once while the user's own programs are untouched.

    Blocking (walks /proc, tens of milliseconds); ``None`` where the limit does not exist.
    """
    if os.name != "posix":
        return None
    uid = os.getuid()
    tasks = 0
    for proc in psutil.process_iter(["uids", "num_threads"]):
        uids, threads = proc.info["uids"], proc.info["num_threads"]
        if uids is not None and uids.real == uid and threads:
            tasks += threads
    return tasks + headroom


def detect_sandbox(bwrap: str | None = None) -> SandboxReport:
    """Find out whether bubblewrap works here by running ``bwrap --unshare-all ... true`` once.

    Blocking (spawns a process, well under a second); call it through ``asyncio.to_thread``.
    """
    if not sys.platform.startswith("linux"):
        return SandboxReport(SandboxLevel.BASIC, "The strong sandbox (bubblewrap) is Linux-only.")
    path = bwrap or shutil.which("bwrap")
    if path is None:
        return SandboxReport(
            SandboxLevel.BASIC,
            "bubblewrap is not installed (the 'bubblewrap' package gives the strong sandbox).",
        )
    argv = [path, *_namespace_args(), *_system_binds(), "--", "true"]
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            argv, capture_output=True, timeout=_DETECT_TIMEOUT, check=False, env=_base_env()
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return SandboxReport(SandboxLevel.BASIC, f"bubblewrap could not be run ({exc}).")
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        why = detail[-1] if detail else f"exit code {done.returncode}"
        return SandboxReport(
            SandboxLevel.BASIC,
            f"bubblewrap does not work here ({why}); user namespaces may be disabled.",
        )
    return SandboxReport(
        SandboxLevel.STRONG, "bubblewrap: no network, no home folder access.", path
    )


def python_paths() -> tuple[Path, ...]:
    """What a Python child needs read-only: the environment, the base interpreter, the app."""
    app_dir = Path(app.__file__).resolve().parent
    paths = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), app_dir}
    return tuple(sorted(paths))


def app_import_root() -> Path:
    """The folder that has to be on ``PYTHONPATH`` for ``import app`` (a source checkout)."""
    return Path(app.__file__).resolve().parent.parent


def limited(program: Sequence[str], limits: ResourceLimits) -> list[str]:
    """``program`` prefixed with this module's limit-setting launcher (POSIX).

    Not on Windows: there ``os.execv`` starts a new process and ends the old one, so the
    supervisor would see its child exit at once; Windows has no rlimits to set anyway.
    """
    if os.name != "posix":
        return list(program)
    return [sys.executable, "-m", "app.engine.sandbox", *limits.as_args(), "--", *program]


def sandbox_command(
    report: SandboxReport,
    program: Sequence[str],
    *,
    read_only: Sequence[Path] = (),
    read_write: Sequence[Path] = (),
    limits: ResourceLimits | None = None,
    gpu: bool = False,
) -> list[str]:
    """The full argv that runs ``program`` at ``report.level`` with ``limits``.

    ``read_only``/``read_write`` paths are bound at the same place inside (strong level only; the
    basic level cannot hide anything). Callers also pass :func:`engine_env` as the environment.
    """
    inner = limited(program, limits or ResourceLimits())
    if report.level is SandboxLevel.BASIC:
        return inner
    if report.bwrap is None:
        raise ValueError("a strong sandbox report must name bwrap")
    args = [report.bwrap, *_namespace_args(), *_system_binds()]
    for path in (*python_paths(), *read_only):
        args += ["--ro-bind", str(path), str(path)]
    for path in read_write:
        args += ["--bind", str(path), str(path)]
    if gpu:
        args += _gpu_binds()
    # The root is a tmpfs holding the mount points; read-only, so only /tmp and the bound run
    # folder take writes.
    return [*args, "--remount-ro", "/", "--chdir", "/", "--", *inner]


def engine_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for the child: nothing of the user's (no tokens, no proxies)."""
    env = _base_env()
    env.update(
        HOME="/tmp",  # noqa: S108 - inside the sandbox /tmp is a private tmpfs
        PYTHONPATH=str(app_import_root()),
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUNBUFFERED="1",
        PYTHONNOUSERSITE="1",
    )
    env.update(extra or {})
    return env


def _base_env() -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    for key in ("SYSTEMROOT", "TZ"):  # SYSTEMROOT: Windows needs it for sockets
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def _namespace_args() -> list[str]:
    return [
        "--unshare-all",  # user, ipc, pid, net, uts, cgroup: no network namespace is shared
        "--die-with-parent",
        "--new-session",  # no TIOCSTI into the user's terminal
        "--cap-drop",
        "ALL",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--tmpfs",
        "/tmp",  # noqa: S108 - a fresh private tmpfs, not the host's /tmp
        "--tmpfs",
        "/run",
    ]


def _system_binds() -> list[str]:
    args: list[str] = []
    for name in (*_SYSTEM_DIRS, *_SYSTEM_FILES):
        path = Path(name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), name]
        elif path.exists():
            args += ["--ro-bind", name, name]
    return args


def _gpu_binds() -> list[str]:
    """NVIDIA device nodes (CUDA_VISIBLE_DEVICES picks the GPU) and the driver's /sys entries."""
    dev = Path("/dev")
    nodes = [p.name for p in dev.glob("nvidia[0-9]*")] + list(_NVIDIA_DEVICES)
    args: list[str] = []
    for name in sorted(set(nodes)):
        args += ["--dev-bind-try", f"/dev/{name}", f"/dev/{name}"]
    return [*args, "--ro-bind-try", "/sys", "/sys"]


def process_tree(pid: int) -> list[psutil.Process]:
    """``pid`` and every process below it, parents first (empty if ``pid`` is gone).

    Taken before signalling: once a parent dies its children are re-parented and the tree can no
    longer be walked. Inside bubblewrap the engine runs in a session of its own (``--new-session``),
    so a process-group signal would miss it; the explicit tree does not.
    """
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def terminate_leaves(tree: Sequence[psutil.Process]) -> None:
    """SIGTERM the processes without children (the engine itself, not bwrap, whose default
    SIGTERM action would kill the engine abruptly through ``--die-with-parent``)."""
    parents = set()
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            parents.add(proc.ppid())
    for proc in tree:
        if proc.pid not in parents:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGTERM)


def kill_tree(tree: Sequence[psutil.Process]) -> None:
    """SIGKILL every process of ``tree`` still alive (and, on POSIX, the root's process group)."""
    if tree and os.name == "posix" and tree[0].is_running():
        # Only a group this tree's root leads (start_new_session): never someone else's group.
        with contextlib.suppress(OSError):
            if os.getpgid(tree[0].pid) == tree[0].pid:
                os.killpg(tree[0].pid, signal.SIGKILL)
    for proc in tree:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def _apply_limits(options: argparse.Namespace) -> None:
    import resource

    for name, value in (
        ("RLIMIT_AS", options.address_space),
        ("RLIMIT_NOFILE", options.nofile),
        ("RLIMIT_NPROC", options.nproc),
    ):
        if value is None:
            continue
        kind = getattr(resource, name)
        _, hard = resource.getrlimit(kind)
        # An unprivileged process may only lower its hard limit, never raise it.
        target = value if hard == resource.RLIM_INFINITY else min(value, hard)
        try:
            resource.setrlimit(kind, (target, target))
        except (ValueError, OSError) as exc:  # e.g. macOS refuses some RLIMIT_AS values
            sys.stderr.write(f"sandbox: {name} not applied ({exc})\n")


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m app.engine.sandbox [--as N] [--nofile N] [--nproc N] -- PROGRAM ARGS...``"""
    parser = argparse.ArgumentParser(prog="python -m app.engine.sandbox")
    parser.add_argument("--as", dest="address_space", type=int)
    parser.add_argument("--nofile", type=int)
    parser.add_argument("--nproc", type=int)
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args or args.index("--") == len(args) - 1:
        parser.error("give the program to run after '--'")
    split = args.index("--")
    options = parser.parse_args(args[:split])
    program = args[split + 1 :]
    if os.name == "posix":
        _apply_limits(options)
    os.execv(program[0], program)  # noqa: S606 - argv built by sandbox_command, no shell


if __name__ == "__main__":
    main()
