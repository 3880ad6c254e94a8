"""The coverage page generated from the model and the implemented operations."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from cacheyard.api.handlers import IMPLEMENTED
from cacheyard.api.protocol import QueryProtocol

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gen_coverage.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_coverage", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_render_lists_every_operation_with_counts() -> None:
    page = load_script().render(["B", "A", "C"], frozenset({"C", "A"}))
    assert "Implemented: **2 of 3** operations." in page
    rows = [line for line in page.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[1:] == ["| A | yes |", "| B | no |", "| C | yes |"]


def test_render_refuses_names_outside_the_model() -> None:
    with pytest.raises(ValueError, match="Launch"):
        load_script().render(["A"], frozenset({"Launch"}))


def test_main_prints_the_whole_model(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("cacheyard.api.handlers")
    load_script().main()
    page = capsys.readouterr().out
    rows = [line for line in page.splitlines() if line.endswith(("| yes |", "| no |"))]
    assert len(rows) == len(QueryProtocol().operation_names())
    assert "| CreateReplicationGroup |" in page


def test_committed_coverage_page_names_the_implemented_operations() -> None:
    """docs/coverage.md must be regenerated (`make coverage-doc`) when handlers change."""
    page = (Path(__file__).parents[2] / "docs" / "coverage.md").read_text()
    marked = {line.split("|")[1].strip() for line in page.splitlines() if line.endswith("| yes |")}
    assert marked == set(IMPLEMENTED)
