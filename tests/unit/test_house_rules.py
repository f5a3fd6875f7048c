"""The house-rules checker (``.ci/house_rules.py``) on small temporary trees, rule by rule."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "house_rules.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("house_rules", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["house_rules"] = module
    spec.loader.exec_module(module)
    return module


house_rules = _load()
GOOD = '"""A module."""\n\nVALUE = 1\n'
# Spelled in pieces so that this file does not break the rule it tests.
S = "shar" + "ed"
FMT = "# fm" + "t:"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def _rules(tmp_path: Path, files: dict[str, str]) -> list[str]:
    violations, _ = house_rules.check(_tree(tmp_path, files))
    return [f"{v.path}:{v.line}:{v.rule}" for v in violations]


def test_a_clean_tree_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _tree(tmp_path, {"app/a.py": GOOD, "tests/__init__.py": "", "README.md": "# Title\n"})
    assert house_rules.main(["house_rules", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "house rules: 3 files pass\n"


def test_module_size(tmp_path: Path) -> None:
    at_limit = GOOD + "X = 1\n" * (house_rules.MAX_LINES - 3)
    assert _rules(tmp_path, {"app/ok.py": at_limit}) == []
    assert _rules(tmp_path, {"benchmarks/big.py": at_limit + "Y = 2\n"}) == [
        f"benchmarks/big.py:{house_rules.MAX_LINES + 1}:module-size"
    ]


@pytest.mark.parametrize("marker", [f"{FMT} skip", "#fm" + "t:off", f"{FMT} off"])
def test_formatter_opt_outs(tmp_path: Path, marker: str) -> None:
    assert _rules(tmp_path, {"tests/t.py": GOOD + f"Y = [1,2]  {marker}\n"}) == [
        "tests/t.py:4:fmt-opt-out"
    ]


def test_formatter_words_in_prose_pass(tmp_path: Path) -> None:
    assert _rules(tmp_path, {".ci/c.py": GOOD + "# the fmt skip marker is banned\n"}) == []


def test_module_docstring(tmp_path: Path) -> None:
    assert _rules(tmp_path, {"app/pkg/__init__.py": "", "app/pkg/m.py": GOOD}) == []
    assert _rules(tmp_path, {"app/pkg/__init__.py": "from x import y\n"}) == [
        "app/pkg/__init__.py:1:module-docstring"
    ]
    assert _rules(tmp_path, {"app/pkg/bare.py": "# a comment is no docstring\nX = 1\n"}) == [
        "app/pkg/__init__.py:1:module-docstring",
        "app/pkg/bare.py:1:module-docstring",
    ]


def test_syntax_errors_are_reported(tmp_path: Path) -> None:
    assert _rules(tmp_path, {"app/broken.py": "def (:\n"}) == ["app/broken.py:1:syntax"]


@pytest.mark.parametrize(
    "line",
    [
        f'FIXTURES = ROOT.parent / "{S}" / "fixtures"',
        f'FIXTURES = Path(__file__).parents[3] / "{S}/fixtures"',
        f'path = "../{S}/fixtures/a.json"',
        f'path = "{S}/docs/spec.md"',
        f"See {S}/fixtures/traces for the captures.",
    ],
)
def test_outside_references_fail(tmp_path: Path, line: str) -> None:
    assert _rules(tmp_path, {"docs/a.md": f"# Doc\n\n{line}\n"}) == [
        "docs/a.md:3:outside-reference"
    ]


@pytest.mark.parametrize(
    "line",
    [
        "Machine: 2-core x86_64, shared with other work.",
        "# Hints shared with ``telemetry``.",
        'root = os.environ.get("COCOON_INTEROP_DIR")',
        'path = ROOT / "tests" / "fixtures" / "shared_key.json"',
    ],
)
def test_other_mentions_of_shared_pass(tmp_path: Path, line: str) -> None:
    assert _rules(tmp_path, {"docs/a.md": f"# Doc\n\n{line}\n"}) == []


def test_dev_and_readme_are_checked(tmp_path: Path) -> None:
    files = {"dev": f"cat ../{S}/x\n", "README.md": f"Read {S}/docs/a.md\n"}
    assert _rules(tmp_path, files) == ["README.md:1:outside-reference", "dev:1:outside-reference"]


def test_failures_print_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _tree(tmp_path, {"app/a.py": f"X = 1  {FMT} skip\n"})
    assert house_rules.main(["house_rules", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "app/a.py:1: fmt-opt-out: a formatter opt-out (fmt skip/off): let ruff format it",
        "app/a.py:1: module-docstring: no module docstring: say what the module owns",
    ]
    assert err == "house rules: 2 violation(s) in 1 files\n"


def test_this_repository_has_no_outside_references() -> None:
    violations, _ = house_rules.check(SCRIPT.parents[1])
    assert [str(v) for v in violations if v.rule == "outside-reference"] == []
