"""A tiny TOML writer for the demo's generated configs (strings, numbers, booleans, lists, tables).

The standard library reads TOML but does not write it; the configs are small and flat, so this is enough.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence


def _scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _is_table_list(value: object) -> bool:
    return isinstance(value, list | tuple) and bool(value) and all(isinstance(v, Mapping) for v in value)


def dumps(data: Mapping[str, object], _prefix: str = "") -> str:
    """Plain keys first, then sub-tables (``[a.b]``), then arrays of tables (``[[a]]``)."""
    lines: list[str] = []
    tables: list[tuple[str, Mapping[str, object]]] = []
    table_lists: list[tuple[str, Sequence[Mapping[str, object]]]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            tables.append((key, value))
        elif _is_table_list(value):
            table_lists.append((key, value))  # type: ignore[arg-type]
        else:
            lines.append(f"{key} = {_scalar(value)}")
    for key, table in tables:
        name = f"{_prefix}{key}"
        lines += ["", f"[{name}]", dumps(table, f"{name}.").rstrip("\n")]
    for key, items in table_lists:
        name = f"{_prefix}{key}"
        for item in items:
            lines += ["", f"[[{name}]]", dumps(item, f"{name}.").rstrip("\n")]
    return "\n".join(line for line in lines if line is not None).lstrip("\n") + "\n"
