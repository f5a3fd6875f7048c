"""Coverage gates: files held at 100 % line and branch coverage, and a floor for the rest."""

from __future__ import annotations

import json
import sys
from pathlib import Path

# Money and settings code: every line and branch is exercised (qutebrowser's PERFECT_FILES).
PERFECT_FILES = (
    "app/core/money.py",
    "app/core/settings.py",
    "app/core/settings_store.py",
    "app/wallet/addresses.py",
    "app/wallet/vault.py",
    "app/wallet/withdrawals.py",
)
TOTAL_FLOOR = 80.0


def main(report_path: str) -> int:
    report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    files = report["files"]
    failures: list[str] = []
    for name in PERFECT_FILES:
        if not Path(name).exists():
            continue
        summary = files.get(name, {}).get("summary")
        if summary is None:
            failures.append(f"{name}: not measured (no test imports it)")
            continue
        missing = summary["missing_lines"] + summary.get("missing_branches", 0)
        if missing:
            failures.append(
                f"{name}: {summary['missing_lines']} lines and "
                f"{summary.get('missing_branches', 0)} branches not covered"
            )
    total = report["totals"]["percent_covered"]
    if total < TOTAL_FLOOR:
        failures.append(f"total coverage {total:.1f}% is below the floor of {TOTAL_FLOOR:.0f}%")
    for failure in failures:
        print(f"coverage gate: {failure}", file=sys.stderr)
    if not failures:
        print(f"coverage gates passed (total {total:.1f}%, {len(PERFECT_FILES)} files at 100%)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
