"""The house rules a reviewer would otherwise check by hand: no product function longer than 50 lines (but for
the generated migration revisions).

(Cyclomatic complexity ≤ 12 is ruff's C901, configured in pyproject.toml; the import rules are import-linter's.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRODUCT = ("fleet_base", "fleet_protocol", "edge_agent", "controller", "dashboard", "edgefleet")
MAX_LINES = 50
#: Alembic revisions: generated lists of DDL operations (reviewed, not designed), as long as the change they make
GENERATED = ("controller/store/migrations/versions",)


def long_functions(source: str, name: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > MAX_LINES:
                found.append(f"{name}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_the_checker_sees_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    assert long_functions(f"def f():\n{body}\n", "x.py") == ["x.py:1 f (51 lines)"]
    assert long_functions("def g():\n    return 1\n", "x.py") == []


@pytest.mark.parametrize("package", PRODUCT)
def test_no_product_function_is_longer_than_50_lines(package: str) -> None:
    found = [
        line
        for path in sorted((REPO / package).rglob("*.py"))
        if not str(path.relative_to(REPO)).startswith(GENERATED)
        for line in long_functions(path.read_text(), str(path.relative_to(REPO)))
    ]
    assert found == []
