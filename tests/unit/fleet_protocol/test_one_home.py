"""One home per fact: the facts the whole system shares are defined once, in the module that owns them, and
composed everywhere else. Read from the source (the AST of every product module), so a restatement under any
name (``MIN_PART = 5 * MIB`` in the policy, a second window regex, the firmware's words in the dashboard) fails
here, and the agent's upload path is checked not to load pydantic."""

from __future__ import annotations

import ast
import operator
import subprocess
import sys
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest

from fleet_protocol.assignment import MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("fleet_base", "fleet_protocol", "fleet_plan", "edge_agent", "controller", "dashboard", "edgefleet")
_OPS: dict[type[ast.operator], Callable[[int, int], int]] = {
    ast.Mult: operator.mul,
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
}


def modules() -> Iterator[tuple[str, ast.Module]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), parse(path)


@cache
def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def module_path(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def evaluate(node: ast.expr, names: dict[str, int]) -> int | None:
    """The value of a whole-number constant expression (``5 * 1024 * MiB``), else None."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = evaluate(node.left, names), evaluate(node.right, names)
        if left is None or right is None or (isinstance(node.op, ast.Pow) and right > 64):
            return None
        return _OPS[type(node.op)](left, right)
    return None


_IN_PROGRESS: set[Path] = set()


@cache
def constants(path: Path) -> dict[str, int]:
    """The whole-number constants a module binds at its top level, its imported ones included."""
    names: dict[str, int] = {}
    _IN_PROGRESS.add(path)
    for statement in parse(path).body:
        if isinstance(statement, ast.ImportFrom) and statement.module and statement.level == 0:
            source = module_path(statement.module)
            if source is not None and source not in _IN_PROGRESS:  # (an import cycle adds nothing)
                imported = constants(source)
                names |= {a.asname or a.name: imported[a.name] for a in statement.names if a.name in imported}
        elif isinstance(statement, ast.Assign | ast.AnnAssign) and statement.value is not None:
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            value = evaluate(statement.value, names)
            for target in targets:
                if isinstance(target, ast.Name) and value is not None:
                    names[target.id] = value
    _IN_PROGRESS.discard(path)
    return names


def docstrings(tree: ast.Module) -> set[int]:
    return {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}


def homes_of_number(value: int) -> set[str]:
    found = set()
    for name, tree in modules():
        known = constants(ROOT / name)
        if any(evaluate(node, known) == value for node in ast.walk(tree) if isinstance(node, ast.BinOp | ast.Constant)):
            found.add(name)
    return found


def homes_of_text(fragment: str) -> set[str]:
    found = set()
    for name, tree in modules():
        skip = docstrings(tree)
        for node in ast.walk(tree):
            text = node.value if isinstance(node, ast.Constant) and id(node) not in skip else None
            if isinstance(text, str) and fragment in text:
                found.add(name)
    return found


def homes_of_name(name: str) -> set[str]:
    """Modules that bind ``name`` at their top level (an ``import ... as`` is a use, not a home)."""
    found = set()
    for module, tree in modules():
        for statement in tree.body:
            targets = statement.targets if isinstance(statement, ast.Assign) else []
            if isinstance(statement, ast.AnnAssign):
                targets = [statement.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                found.add(module)
    return found


@pytest.mark.parametrize(
    ("fact", "value", "home"),
    [
        ("S3's smallest part", MIN_PART_SIZE, "fleet_protocol/assignment.py"),
        ("S3's largest part", MAX_PART_SIZE, "fleet_protocol/assignment.py"),
    ],
)
def test_numbers_have_one_home(fact: str, value: int, home: str) -> None:
    assert homes_of_number(value) == {home}, f"{fact} ({value}) is restated: import it from {home}"


@pytest.mark.parametrize(
    ("fact", "fragment", "home"),
    [
        ("the window grammar (minutes)", "[0-5]", "fleet_protocol/windows.py"),
        ("the firmware's throttle words", "under-voltage", "fleet_protocol/vocabulary.py"),
        ("the firmware's throttle words", "frequency capped", "fleet_protocol/vocabulary.py"),
    ],
)
def test_texts_have_one_home(fact: str, fragment: str, home: str) -> None:
    assert homes_of_text(fragment) == {home}, f"{fact} is restated: use {home}"


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("MIN_PART_SIZE", "fleet_protocol/assignment.py"),
        ("MAX_PART_SIZE", "fleet_protocol/assignment.py"),
        ("MAX_PARTS", "fleet_protocol/assignment.py"),
        ("MAX_CONCURRENCY", "fleet_protocol/assignment.py"),
        ("MAX_WINDOWS", "fleet_protocol/assignment.py"),
        ("DEFAULT_PART_SIZE", "fleet_protocol/assignment.py"),
        ("WINDOW_PATTERN", "fleet_protocol/windows.py"),
        ("STICKY_SHIFT", "fleet_protocol/vocabulary.py"),
        ("MAX_BYTES", "fleet_protocol/numbers.py"),
    ],
)
def test_named_facts_have_one_home(name: str, home: str) -> None:
    assert homes_of_name(name) == {home}


def test_the_thermal_limits_are_the_policys() -> None:
    """Only the shared thermal step (``fleet_plan.thermal``) gives ``soft_limit_c``/``hard_limit_c`` a number; the
    controller's policy, the dashboard and the agent's guard take theirs (the simulated Pi's firmware has a soft
    limit of its own)."""
    numbered = set()
    for name, tree in modules():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and node.target.id in {"soft_limit_c", "hard_limit_c"}
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, float | int)
            ):
                numbered.add(name)
    assert numbered == {"fleet_plan/thermal.py", "edgefleet/sim/thermal.py"}


def test_the_upload_path_does_not_load_pydantic() -> None:
    """On a Pi every megabyte counts: the engine, the transfer layer and ``edgefleet upload`` run on the
    pydantic-free half of the protocol (``assignment``, ``windows``, ``vocabulary``, ``topics``)."""
    code = (
        "import sys\n"
        "import edge_agent.cli_upload, edge_agent.engine.attempt, edge_agent.transfer.engine\n"
        "import fleet_protocol.assignment, fleet_protocol.windows, fleet_protocol.numbers\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_max_parts_is_what_the_part_plan_uses() -> None:
    from edge_agent.engine.partsize import PartPlan

    assert PartPlan(first=MIN_PART_SIZE, size=MIN_PART_SIZE, held=False).capacity() == MAX_PARTS * MIN_PART_SIZE
