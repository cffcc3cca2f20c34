"""Hypothesis strategies for hostile input, built from the message models' JSON Schema (docs/protocol.md).

Nothing here lists a message's fields: every strategy walks ``model.model_json_schema()``, the same schema the
committed snapshots hold, so a new field or a changed bound is exercised without touching this file.

- ``valid_data(model, agent_id=...)``: JSON-ready dicts the model accepts, biased to the edges: bounds and
  their neighbours, powers of two, the first and last instant ``sent_at`` allows in any UTC offset, strings at
  their maximum length in astral-plane characters, every optional field present or absent, keys in any order.
- ``valid_payload`` / ``invalid_payload``: bytes. An invalid payload breaks exactly one rule, so ``decode``
  must reject it: not JSON, truncated, not an object, wrong version, a wrong type, a number just out of bounds
  or far out (2**63, 1e308, ``Infinity``/``NaN`` tokens), a string one character too long or with NUL or a lone
  surrogate, ``sent_at`` out of range or without a zone, a required field missing, another agent's id, a
  duplicate key whose last value is bad, nesting deeper than the decoder recurses, an integer of 5,000 digits,
  invalid UTF-8, more than ``MAX_PAYLOAD_BYTES``.
  (An empty payload is among them: the agent takes it as a cleared retained message and ignores it.)
- ``hostile_payload``: either kind (about 60 % valid), labelled; ``burst``: a few of them for one agent with
  duplicates, in any order.
- ``extreme_data(model, high)``: every field at its upper (or lower) bound at once, no randomness.
- ``collect(strategy, at_least)``: that many generated items, for suites that send them to real services.
- ``ANY_FLOAT`` / ``ANY_INT``: any number at all (NaN, infinities, beyond 2**64), for what a sender measures or
  a store holds rather than what a message may carry.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from fleet_protocol.messages import MAX_PAYLOAD_BYTES, TEXT_PATTERN

Schema = Mapping[str, Any]
T = TypeVar("T")

#: integers worth trying wherever a range allows them: the edges of the usual machine types
_INTERESTING_INTS = (0, 1, 2, 255, 256, 2**15, 2**16, 2**31 - 1, 2**31, 2**32, 2**53 - 1, 2**53, 2**62, 2**63 - 1)
#: characters for free text: any Unicode scalar value but NUL, weighted towards the awkward ones
_TEXT_CHARS = st.one_of(
    st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),  # (Cs: lone surrogates are not text)
    st.sampled_from(["\U0001f600", "\u202e", "\ufeff", "\u0301", "\n", "\x7f", '"', "\\", "/", "<", "'", "%"]),
)
_ASTRAL = "\U0001f525"  # 4 bytes of UTF-8, 12 bytes as a JSON escape: the most a character can weigh


#: for what a sender measures or a store holds, not what a message may carry: any float or integer at all
ANY_FLOAT = st.one_of(st.floats(), st.sampled_from([math.inf, -math.inf, math.nan, -0.0, -1.0, 1e308]))
ANY_INT = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([-1, 2**63, 2**64]))


# -- valid values ------------------------------------------------------------------------------------------------
def _resolve(schema: Schema, defs: Schema) -> Schema:
    ref = schema.get("$ref")
    return defs[ref.rsplit("/", 1)[-1]] if ref else schema


def _integers(schema: Schema) -> st.SearchStrategy[int]:
    low, high = schema["minimum"], schema["maximum"]
    edges = {low, low + 1, high - 1, high, *_INTERESTING_INTS}
    return st.one_of(st.sampled_from(sorted(e for e in edges if low <= e <= high)), st.integers(low, high))


def _numbers(schema: Schema) -> st.SearchStrategy[float]:
    low, high = float(schema["minimum"]), float(schema["maximum"])
    edges = {low, high, math.nextafter(low, high), math.nextafter(high, low), 0.0, -0.0, 5e-324, 0.1, 1.0}
    edges |= {float(i) for i in _INTERESTING_INTS}
    inside = sorted((e for e in edges if low <= e <= high), key=lambda e: (e, math.copysign(1, e)))
    return st.one_of(st.sampled_from(inside), st.floats(low, high, allow_nan=False, allow_infinity=False))


def _instants(schema: Schema) -> st.SearchStrategy[str]:
    """An ISO 8601 time inside [formatMinimum, formatExclusiveMaximum), in any UTC offset, with or without µs."""
    first = datetime.fromisoformat(schema["formatMinimum"])
    last = datetime.fromisoformat(schema["formatExclusiveMaximum"]) - timedelta(microseconds=1)
    naive = st.datetimes(first.replace(tzinfo=None), last.replace(tzinfo=None))
    instant = st.one_of(st.sampled_from([first, last]), naive.map(lambda d: d.replace(tzinfo=UTC)))
    minutes = st.one_of(st.sampled_from([0, 0, -(23 * 60 + 59), 23 * 60 + 59, 330, -210]), st.integers(-1439, 1439))

    def render(when: datetime, offset: int, zulu: bool) -> str:
        local = when.astimezone(timezone(timedelta(minutes=offset)))
        text = local.isoformat()
        return text.replace("+00:00", "Z") if zulu and offset == 0 else text

    return st.builds(render, instant, minutes, st.booleans())


def _strings(schema: Schema) -> st.SearchStrategy[str]:
    pattern: str | None = schema.get("pattern")
    max_len: int | None = schema.get("maxLength")
    if pattern is not None and pattern != TEXT_PATTERN:
        return st.from_regex(pattern, fullmatch=True).filter(lambda s: max_len is None or len(s) <= max_len)
    if max_len is None:
        return st.text(_TEXT_CHARS, max_size=32)
    max_bytes: int = schema.get("maxBytes", 4 * max_len)

    def longest(char: str) -> str:  # as many of ``char`` as the field takes
        return char * min(max_len, max_bytes // len(char.encode()))

    full = st.builds(longest, st.sampled_from([_ASTRAL, "x", "é", "\u202e"]))
    short = st.text(_TEXT_CHARS, max_size=min(max_len, max_bytes // 4, 40))
    return st.one_of(short, full)


def json_value(schema: Schema, defs: Schema) -> st.SearchStrategy[Any]:
    """A JSON value that ``schema`` (one property of a message) accepts."""
    schema = _resolve(schema, defs)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of(*(json_value(option, defs) for option in schema["anyOf"]))
    kind = schema.get("type")
    if kind == "integer":
        return _integers(schema)
    if kind == "number":
        return _numbers(schema)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "string" and schema.get("format") == "date-time":
        return _instants(schema)
    if kind == "string":
        return _strings(schema)
    if kind == "array":
        items, most = json_value(schema["items"], defs), schema.get("maxItems", 8)
        full = st.lists(items, min_size=1, max_size=3).map(lambda few: (few * most)[:most])  # (with duplicates)
        return st.one_of(st.lists(items, max_size=min(3, most)), full)
    raise NotImplementedError(f"no strategy for schema {schema!r}")


@functools.cache
def _schema(model: type[BaseModel]) -> tuple[Schema, Schema]:
    schema = model.model_json_schema()
    return schema, schema.get("$defs", {})


def _shuffled(data: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.permutations(list(data.items())).map(dict)


def valid_data(model: type[BaseModel], **fixed: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Every required field, any subset of the optional ones, ``fixed`` values as given; keys in any order."""
    schema, defs = _schema(model)
    required = set(schema.get("required", []))
    props = {name: prop for name, prop in schema["properties"].items() if name not in fixed}
    data = st.fixed_dictionaries(
        {name: json_value(prop, defs) for name, prop in props.items() if name in required},
        optional={name: json_value(prop, defs) for name, prop in props.items() if name not in required},
    )
    return data.map(lambda d: {**d, **fixed}).flatmap(_shuffled)


def valid_message(model: type[BaseModel], **fixed: Any) -> st.SearchStrategy[Any]:
    return valid_data(model, **fixed).map(model.model_validate)


def dumps(data: Any, ascii_only: bool = True) -> bytes:
    return json.dumps(data, ensure_ascii=ascii_only, allow_nan=False).encode()


def valid_payload(model: type[BaseModel], **fixed: Any) -> st.SearchStrategy[bytes]:
    return st.builds(dumps, valid_data(model, **fixed), st.booleans())


@functools.cache
def _a_match(pattern: str) -> str:
    quick = settings(database=None, derandomize=True, phases=[Phase.generate])
    return find(st.from_regex(pattern, fullmatch=True), lambda _s: True, settings=quick)


def _extreme(schema: Schema, defs: Schema, high: bool) -> Any:
    schema = _resolve(schema, defs)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][-1 if high else 0]
    if "anyOf" in schema:
        return _extreme(next(o for o in schema["anyOf"] if o.get("type") != "null"), defs, high)
    kind = schema.get("type")
    if kind in ("integer", "number"):
        return schema["maximum" if high else "minimum"]
    if kind == "boolean":
        return high
    if kind == "array":
        return [_extreme(schema["items"], defs, high)] * (schema.get("maxItems", 1) if high else 0)
    if schema.get("format") == "date-time":
        last = datetime.fromisoformat(schema["formatExclusiveMaximum"]) - timedelta(microseconds=1)
        return (last if high else datetime.fromisoformat(schema["formatMinimum"])).isoformat()
    if schema.get("pattern", TEXT_PATTERN) != TEXT_PATTERN:
        return schema.get("default", _a_match(schema["pattern"]))
    if not high:
        return ""
    max_len = schema.get("maxLength", 64)
    return _ASTRAL * min(max_len, schema.get("maxBytes", 4 * max_len) // 4)


def extreme_data(model: type[BaseModel], high: bool = True, **fixed: Any) -> dict[str, Any]:
    """Every field of ``model`` at its upper (``high``) or lower bound at once, ``fixed`` values as given."""
    schema, defs = _schema(model)
    return {**{name: _extreme(prop, defs, high) for name, prop in schema["properties"].items()}, **fixed}


# -- invalid payloads ---------------------------------------------------------------------------------------------
_WRONG_TYPES: dict[str, list[Any]] = {
    "integer": ["12", "abc", [], {"n": 1}, 1.5],
    "number": ["abc", [], {"n": 1}, "1e999x"],
    "string": [12345, 1.5, [], {"s": "x"}, True],
    "boolean": ["maybe", [], {"b": True}, 2],
    "array": [5, "22:00-06:00", {"a": 1}],
    "null": ["abc", []],
}


def _kind(schema: Schema, defs: Schema) -> str:
    schema = _resolve(schema, defs)
    if "anyOf" in schema:
        return "anyOf"
    if "const" in schema or "enum" in schema:
        return "enum"
    if schema.get("format") == "date-time":
        return "date-time"
    return str(schema.get("type"))


def _wrong_values(schema: Schema, defs: Schema) -> list[Any]:
    """Values of ``schema``'s field that can never validate (no lax coercion turns them into a valid value)."""
    schema = _resolve(schema, defs)
    kind = _kind(schema, defs)
    if kind == "anyOf":
        candidates: list[Any] = ["abc", [], {"x": 1}]
        return [v for v in candidates if all(v in _wrong_values(o, defs) for o in schema["anyOf"])]
    if kind == "enum":
        return ["bogus", [], {"e": 1}, 99]
    if kind == "date-time":
        return ["yesterday", "2026-13-01T00:00:00Z", [], {"t": 1}]
    wrong = list(_WRONG_TYPES[kind])
    if kind == "integer" and schema["maximum"] >= 12:  # "12" is lax-valid where 12 is
        wrong.remove("12")
    return wrong


#: Raw JSON number tokens that are out of every bound we have (Python's json reads the first three as floats)
_RAW_OUT_OF_RANGE = ("Infinity", "-Infinity", "NaN", "1e999", "-1e999", str(2**64), str(-(2**63) - 1), "1e308")


def _out_of_bounds(schema: Schema) -> list[Any]:
    kind, low, high = schema.get("type"), schema["minimum"], schema["maximum"]
    if kind == "integer":
        return [high + 1, low - 1, 2**63, 2**64, -(2**63) - 1]
    above = math.nextafter(float(high), math.inf)
    return [above, float(high) * 2 + 1, math.nextafter(float(low), -math.inf), float(low) - 1, 1e308, -1e308]


def _too_long(schema: Schema) -> list[str]:
    """Strings a free-text field must refuse: one character over, NUL (the pattern), a lone surrogate comes raw."""
    max_len, max_bytes = schema.get("maxLength"), schema.get("maxBytes")
    bad = ["a\x00b"] if schema.get("pattern") == TEXT_PATTERN else []
    if max_bytes is not None:
        bad.append("é" * (max_bytes // 2 + 1))  # few enough characters, too many bytes
    return [*bad, "x" * (max_len + 1)] if max_len is not None else bad


_BAD_TIMES = (
    "9999-12-31T23:59:59-05:00",
    "0001-01-01T00:00:00+05:00",
    "1969-12-31T23:59:59.999999Z",
    "2100-01-01T00:00:00Z",
    "2099-12-31T23:00:00-01:00",
    "2026-06-01T12:00:00",
)


def _field_breakers(model: type[BaseModel]) -> list[tuple[str, Any]]:
    """(field, value) pairs, each of which makes a message invalid, for every field of ``model``."""
    schema, defs = _schema(model)
    pairs: list[tuple[str, Any]] = []
    for name, raw in schema["properties"].items():
        prop = _resolve(raw, defs)
        pairs += [(name, value) for value in _wrong_values(prop, defs)]
        for option in prop.get("anyOf", [prop]):
            if option.get("type") in ("integer", "number") and "const" not in option:
                pairs += [(name, value) for value in _out_of_bounds(option)]
        if prop.get("type") == "string" and prop.get("format") is None:
            pairs += [(name, value) for value in _too_long(prop)]
        if prop.get("format") == "date-time":
            pairs += [(name, value) for value in _BAD_TIMES]
        if prop.get("type") == "array" and "maxItems" in prop:
            pairs.append((name, ["00:00-01:00"] * (prop["maxItems"] + 1)))
    return pairs


def _replace(data: dict[str, Any], name: str, value: Any) -> bytes:
    return dumps({**data, name: value})


def _raw_number(data: dict[str, Any], name: str, token: str) -> bytes:
    """The payload with ``name`` set to a number token json.dumps would never write."""
    marker = "__RAW__"
    return dumps({**data, name: marker}).replace(f'"{marker}"'.encode(), token.encode())


def _numeric_fields(model: type[BaseModel]) -> list[str]:
    schema, defs = _schema(model)
    numeric = []
    for name, raw in schema["properties"].items():
        prop = _resolve(raw, defs)
        if any(o.get("type") in ("integer", "number") and "const" not in o for o in prop.get("anyOf", [prop])):
            numeric.append(name)
    return numeric


def _text_fields(model: type[BaseModel]) -> list[str]:
    schema, defs = _schema(model)
    return [n for n, p in schema["properties"].items() if _resolve(p, defs).get("pattern") == TEXT_PATTERN]


def invalid_payload(model: type[BaseModel], **fixed: Any) -> st.SearchStrategy[bytes]:
    """Bytes that ``decode`` must reject (on the topic of ``fixed["agent_id"]`` and ``model``'s channel)."""
    schema, _defs = _schema(model)
    base = valid_data(model, **fixed)
    breakers = _field_breakers(model)
    numeric, text = _numeric_fields(model), _text_fields(model)
    required = [n for n in schema.get("required", []) if n != "v"]
    options: list[st.SearchStrategy[bytes]] = [
        st.binary(max_size=200).filter(lambda b: not b.lstrip().startswith(b"{")),
        base.map(dumps).flatmap(lambda p: st.integers(0, len(p) - 1).map(lambda n: p[:n])),
        st.sampled_from([b"[]", b"[1, 2]", b"null", b"42", b'"telemetry"', b"true", b""]),
        st.builds(lambda d, v: _replace(d, "v", v), base, st.sampled_from([0, 2, "1", None, -1, 2**64])),
        base.map(lambda d: dumps({k: v for k, v in d.items() if k != "v"})),
        st.builds(lambda d, pair: _replace(d, *pair), base, st.sampled_from(breakers)),
        st.builds(lambda d, n: dumps({k: v for k, v in d.items() if k != n}), base, st.sampled_from(required)),
        base.map(lambda d: dumps(d)[:-1] + b', "seq": -1}'),  # a duplicate key: the last one counts
        base.map(lambda d: dumps(d)[:-1] + b', "deep": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"),
        base.map(lambda d: dumps(d)[:-1] + b', "big": ' + b"9" * 5000 + b"}"),
        base.map(lambda d: dumps(d)[:-1] + b', "bad": "\xff\xfe"}'),
        base.map(lambda d: dumps(d)[:-1] + b', "pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}'),
    ]
    if "agent_id" in fixed:  # another agent's id, or no valid id at all
        others = [fixed["agent_id"] + "x", "someone-else", "a/+/#", "", "x" * 65, "ü"]
        options.append(st.builds(lambda d, other: _replace(d, "agent_id", other), base, st.sampled_from(others)))
    if numeric:
        options.append(st.builds(_raw_number, base, st.sampled_from(numeric), st.sampled_from(_RAW_OUT_OF_RANGE)))
    if text:  # a lone surrogate, written as the JSON escape a hostile sender would use
        options.append(st.builds(lambda d, n: _raw_number(d, n, '"x\\ud800y"'), base, st.sampled_from(text)))
    return st.one_of(*options)


# -- mixed --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hostile:
    payload: bytes
    valid: bool


def hostile_payload(model: type[BaseModel], valid_share: float = 0.6, **fixed: Any) -> st.SearchStrategy[Hostile]:
    good = valid_payload(model, **fixed).map(lambda p: Hostile(p, True))
    bad = invalid_payload(model, **fixed).map(lambda p: Hostile(p, False))
    tenths = round(valid_share * 10)
    return st.sampled_from([True] * tenths + [False] * (10 - tenths)).flatmap(lambda ok: good if ok else bad)


def burst(model: type[BaseModel], agent_id: str, max_size: int = 4) -> st.SearchStrategy[list[Hostile]]:
    """A few payloads for one agent, some sent twice, in any order (as reordered, redelivered QoS 1 traffic)."""
    items = st.lists(hostile_payload(model, agent_id=agent_id), min_size=1, max_size=max_size)
    doubled = items.flatmap(lambda xs: st.lists(st.sampled_from(xs), max_size=2).map(lambda extra: xs + extra))
    return doubled.flatmap(st.permutations)


def collect(strategy: st.SearchStrategy[list[T]], at_least: int) -> list[T]:
    """At least ``at_least`` items from a strategy of lists, generated by Hypothesis without shrinking or example
    database: for suites that send what they generate to real services and check the outcome afterwards."""
    items: list[T] = []
    while len(items) < at_least:
        examples = (at_least - len(items)) // 3 + 1  # (a list holds a few items)

        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def draw(batch: list[T]) -> None:
            items.extend(batch)

        draw()
    return items
