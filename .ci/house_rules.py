"""House rules the linters lack: module size, no formatter opt-outs, docstrings, no outside paths.

Run from the repository root (``./dev test`` and ``./dev check`` do); ``python .ci/house_rules.py
[ROOT]`` prints one ``path:line: rule: message`` line per violation and exits 1, or a one-line
summary and exits 0.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_LINES = 600
PYTHON_ROOTS = ("app", "tests", "benchmarks", ".ci")
# Where a reference to a folder outside the repository would make the checkout incomplete.
REFERENCE_ROOTS = ("app", "tests", "benchmarks", ".ci", "docs")
REFERENCE_FILES = ("dev", "README.md")
REFERENCE_SUFFIXES = {
    ".py",
    ".md",
    ".sh",
    ".toml",
    ".cfg",
    ".ini",
    ".txt",
    ".json",
    ".yaml",
    ".yml",
}
SKIPPED_DIRS = {"node_modules", "__pycache__", ".venv", ".git", ".mypy_cache", ".ruff_cache"}

# Formatter opt-outs: squeezing lines to stay under the size rule is worse than splitting.
FMT_OPT_OUT = re.compile(r"#\s*fmt:\s*(skip|off)\b")
# A path into the folder beside the checkout (the parent folder's "shared"): written with a
# leading dot-dot, as a quoted "shared/…" literal, joined onto ``parent``/``parents[n]``, or as its
# fixtures/docs subfolders anywhere.
OUTSIDE_REFERENCE = re.compile(
    r"""\.\./+shared\b"""
    r"""|(?<![\w./-])["']shared/"""
    r"""|\bparents?\b(?:\[\d+\])?\s*/\s*["']shared["'/]"""
    r"""|(?<![\w.-])shared/(?:fixtures|docs)\b"""
)


@dataclass(frozen=True, order=True)
class Violation:
    """One broken rule at a place in a file."""

    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.message}"


def _files(root: Path, tops: tuple[str, ...], suffixes: set[str]) -> Iterator[Path]:
    for top in tops:
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            rel_parts = path.relative_to(root).parts
            if any(part in SKIPPED_DIRS for part in rel_parts):
                continue
            if path.is_file() and path.suffix in suffixes:
                yield path


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def check_python(root: Path, path: Path) -> list[Violation]:
    """Size, formatter opt-outs and the module docstring of one Python module."""
    rel = _rel(root, path)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    found: list[Violation] = []
    if len(lines) > MAX_LINES:
        found.append(
            Violation(
                rel,
                MAX_LINES + 1,
                "module-size",
                f"{len(lines)} lines (at most {MAX_LINES}): split out a part named after its job",
            )
        )
    for number, line in enumerate(lines, start=1):
        if FMT_OPT_OUT.search(line):
            found.append(
                Violation(
                    rel,
                    number,
                    "fmt-opt-out",
                    "a formatter opt-out (fmt skip/off): let ruff format it",
                )
            )
    if path.name == "__init__.py" and not text.strip():
        return found  # an empty package marker needs no docstring
    try:
        tree = ast.parse(text, filename=rel)
    except SyntaxError as error:
        found.append(Violation(rel, error.lineno or 1, "syntax", str(error.msg)))
        return found
    if ast.get_docstring(tree) is None:
        found.append(
            Violation(rel, 1, "module-docstring", "no module docstring: say what the module owns")
        )
    return found


def check_references(root: Path, path: Path) -> list[Violation]:
    """Paths into folders outside the repository (the sibling "shared" folder) in one file."""
    rel = _rel(root, path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []
    found: list[Violation] = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = OUTSIDE_REFERENCE.search(line)
        if match:
            found.append(
                Violation(
                    rel,
                    number,
                    "outside-reference",
                    f"{match.group(0)!r} points outside the repository: keep the file in the repo",
                )
            )
    return found


def check(root: Path) -> tuple[list[Violation], int]:
    """Every violation under ``root``, sorted, and how many files were looked at."""
    violations: list[Violation] = []
    seen: set[Path] = set()
    for path in _files(root, PYTHON_ROOTS, {".py"}):
        seen.add(path)
        violations += check_python(root, path)
    references = list(_files(root, REFERENCE_ROOTS, REFERENCE_SUFFIXES))
    references += [root / name for name in REFERENCE_FILES if (root / name).is_file()]
    this_file = Path(__file__).resolve()
    for path in references:
        seen.add(path)
        if path.resolve() == this_file:
            continue  # its own patterns name what they forbid
        violations += check_references(root, path)
    return sorted(violations), len(seen)


def main(argv: list[str]) -> int:
    """Print the violations (exit 1) or a one-line summary (exit 0)."""
    root = Path(argv[1] if len(argv) > 1 else ".").resolve()
    violations, files = check(root)
    for violation in violations:
        print(violation)
    if violations:
        print(f"house rules: {len(violations)} violation(s) in {files} files", file=sys.stderr)
        return 1
    print(f"house rules: {files} files pass")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
