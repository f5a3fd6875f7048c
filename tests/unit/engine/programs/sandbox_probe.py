"""Run inside the sandbox by test_sandbox.py: tries what a hijacked engine would; prints JSON."""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import sys
from pathlib import Path


def try_connect(address: str) -> str:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return "connected"
    except OSError as exc:
        return f"failed: {type(exc).__name__}"


def try_read(path: str) -> str:
    try:
        return "read: " + Path(path).read_text()
    except OSError as exc:
        return f"failed: {type(exc).__name__}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connect", required=True)
    parser.add_argument("--read", required=True)
    parser.add_argument("--write", required=True)
    args = parser.parse_args()
    status = Path("/proc/self/status").read_text()
    no_new_privs = next(
        (line.split()[1] for line in status.splitlines() if line.startswith("NoNewPrivs")), "?"
    )
    try:
        Path(args.write).write_text("x")
        wrote = "wrote"
    except OSError as exc:
        wrote = f"failed: {type(exc).__name__}"
    report = {
        "connect": try_connect(args.connect),
        "read": try_read(args.read),
        "write": wrote,
        "no_new_privs": no_new_privs,
        "rlimit_as": resource.getrlimit(resource.RLIMIT_AS)[0],
        "rlimit_nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "home": os.environ.get("HOME"),
        "env_secret": os.environ.get("COCOON_TEST_SECRET"),
        "sid_is_own": os.getsid(0) == os.getpid(),
    }
    sys.stdout.write(json.dumps(report) + "\n")


if __name__ == "__main__":
    main()
