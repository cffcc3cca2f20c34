"""``AssignmentSettings``: the one validation and the one clamp of an assignment's settings, and the round trips
wire ↔ value ↔ store row ↔ dashboard view (every layer composes the value; none restates it)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from controller.store.assignments import settings_columns, settings_of
from controller.store.models import AssignmentHistory, CurrentAssignment
from dashboard.readmodel import AssignmentView
from edge_agent.engine import Limits
from edge_agent.service.config import DefaultsSection
from fleet_protocol.assignment import (
    BANDWIDTH,
    COMPRESSION_LEVEL,
    CONCURRENCY,
    MAX_PART_SIZE,
    MAX_WINDOWS,
    MIN_PART_SIZE,
    PART_SIZE,
    RAW,
    SETTINGS_FIELDS,
    AssignmentSettings,
    fit_windows,
)
from fleet_protocol.codec import decode, encode
from fleet_protocol.messages import Assignment
from fleet_protocol.numbers import MAX_BYTES, MAX_VERSION
from fleet_protocol.topics import AgentChannel, agent_topic
from fleet_protocol.windows import WINDOW_PATTERN, is_valid_window, parse_window
from tests.hostile import ANY_INT, valid_data

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TOPIC = agent_topic("pi-1", AgentChannel.ASSIGNMENT)
#: 48 distinct windows: as many as an assignment may carry
MANY = tuple(f"{h:02d}:{m:02d}-{h:02d}:{m + 1:02d}" for h in range(24) for m in (0, 30))

windows = st.builds(
    "{:02d}:{:02d}-{:02d}:{:02d}".format, st.integers(0, 23), st.integers(0, 59), st.integers(0, 23), st.integers(0, 59)
)


def within(bounds: Any) -> st.SearchStrategy[int]:
    return st.one_of(st.integers(bounds.low, bounds.high), st.sampled_from([bounds.low, bounds.high]))


valid_settings = st.builds(
    AssignmentSettings,
    concurrency=within(CONCURRENCY),
    part_size=within(PART_SIZE),
    windows=st.lists(windows, max_size=MAX_WINDOWS).map(tuple),
    bandwidth_bps=within(BANDWIDTH),
    compression_level=within(COMPRESSION_LEVEL),
    paused=st.booleans(),
    upload_now=st.booleans(),
)


def fields_of(value: AssignmentSettings) -> dict[str, Any]:
    return {name: getattr(value, name) for name in SETTINGS_FIELDS}


# -- the one validation -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("concurrency", 0),
        ("concurrency", 64),
        ("part_size", MIN_PART_SIZE),
        ("part_size", MAX_PART_SIZE),
        ("bandwidth_bps", 0),
        ("bandwidth_bps", MAX_BYTES),
        ("compression_level", RAW),
        ("compression_level", 8),
        ("windows", ("00:00-00:00", "23:59-00:00")),
        ("windows", MANY),
        ("windows", ("22:00-06:00", "22:00-06:00")),  # the wire allows a window twice: so does the value
        ("paused", True),
        ("upload_now", True),
    ],
)
def test_the_edges_are_valid(field: str, value: Any) -> None:
    assert getattr(AssignmentSettings(**{field: value}), field) == value


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("concurrency", -1, "concurrency must be a whole number in 0..64"),
        ("concurrency", 65, "concurrency must be"),
        ("concurrency", True, "concurrency must be"),
        ("concurrency", 2.0, "concurrency must be"),
        ("concurrency", "2", "concurrency must be"),
        ("part_size", MIN_PART_SIZE - 1, "part_size must be a whole number in 5242880..5368709120"),
        ("part_size", MAX_PART_SIZE + 1, "part_size must be"),
        ("part_size", 0, "part_size must be"),
        ("bandwidth_bps", -1, "bandwidth_bps must be"),
        ("bandwidth_bps", MAX_BYTES + 1, "bandwidth_bps must be"),
        ("compression_level", -2, "compression_level must be a whole number in -1..8"),
        ("compression_level", 9, "compression_level must be"),
        ("paused", 1, "paused must be true or false"),
        ("upload_now", "yes", "upload_now must be true or false"),
        ("windows", ("24:00-01:00",), "upload window must look like 'HH:MM-HH:MM'"),
        ("windows", ("22:00-06:00\n",), "upload window"),  # ``$`` alone would take it
        ("windows", ("\u0662\u0662:00-06:00",), "upload window"),  # Arabic-Indic digits: ``\d`` would take them
        ("windows", ("22:00-6:00",), "upload window"),
        ("windows", ("22:60-06:00",), "upload window"),
        ("windows", (None,), "upload window"),
        ("windows", (*MANY, "23:58-23:59"), "at most 48 windows, got 49"),
    ],
)
def test_invalid_settings_are_refused_naming_the_field(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AssignmentSettings(**{field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("concurrency", -1),
        ("concurrency", 65),
        ("part_size", MIN_PART_SIZE - 1),
        ("part_size", MAX_PART_SIZE + 1),
        ("bandwidth_bps", MAX_BYTES + 1),
        ("compression_level", 9),
        ("windows", ["24:00-01:00"]),
        ("windows", ["22:00-06:00\n"]),
        ("windows", [*MANY, "23:58-23:59"]),
    ],
)
def test_the_message_refuses_what_the_value_refuses(field: str, value: Any) -> None:
    base = {"agent_id": "pi-1", "seq": 0, "version": 1, "concurrency": 2, "part_size": MIN_PART_SIZE}
    with pytest.raises(ValidationError):
        Assignment.model_validate({**base, field: value})
    with pytest.raises(ValueError):
        AssignmentSettings(**{**fields_of(AssignmentSettings()), field: value})


def test_a_list_of_windows_becomes_a_tuple() -> None:
    value = AssignmentSettings(windows=["22:00-06:00"])  # type: ignore[arg-type]
    assert value.windows == ("22:00-06:00",)
    assert hash(value) == hash(AssignmentSettings(windows=("22:00-06:00",)))


def test_the_defaults_are_an_agents_before_its_first_assignment() -> None:
    assert AssignmentSettings() == Limits() == DefaultsSection().settings
    assert (Limits().concurrency, Limits().part_size, Limits().compression_level) == (2, 8 << 20, 5)


@pytest.mark.parametrize(("changes", "stopped"), [({}, False), ({"paused": True}, True), ({"concurrency": 0}, True)])
def test_stopped(changes: dict[str, Any], stopped: bool) -> None:
    assert AssignmentSettings(**changes).stopped is stopped


# -- the one clamp ----------------------------------------------------------------------------------------------
@given(
    concurrency=ANY_INT,
    part_size=ANY_INT,
    windows=st.lists(st.one_of(windows, st.text(max_size=12), st.none(), st.integers()), max_size=120),
    bandwidth_bps=ANY_INT,
    compression_level=ANY_INT,
    paused=st.booleans(),
    upload_now=st.booleans(),
)
def test_fit_makes_valid_settings_of_anything(**values: Any) -> None:
    fitted = AssignmentSettings.fit(**values)
    assert AssignmentSettings(**fields_of(fitted)) == fitted
    assert AssignmentSettings.fit(**fields_of(fitted)) == fitted  # idempotent
    for bounds in (CONCURRENCY, PART_SIZE, BANDWIDTH, COMPRESSION_LEVEL):
        value = values[bounds.name]
        assert getattr(fitted, bounds.name) == (value if bounds.low <= value <= bounds.high else bounds.fit(value))
    kept = [w for w in values["windows"] if isinstance(w, str) and is_valid_window(w)]
    assert fitted.windows == tuple(dict.fromkeys(kept))[:MAX_WINDOWS]


@given(valid_settings)
def test_fit_leaves_valid_settings_as_they_are(value: AssignmentSettings) -> None:
    distinct = dataclasses.replace(value, windows=tuple(dict.fromkeys(value.windows)))
    assert AssignmentSettings.fit(**fields_of(distinct)) == distinct


@pytest.mark.parametrize(
    ("given_", "kept"),
    [
        ((), ()),
        (("22:00-06:00", "bad", "22:00-06:00", "01:00-02:00"), ("22:00-06:00", "01:00-02:00")),
        ((*MANY, "23:58-23:59", MANY[0]), MANY),
    ],
)
def test_fit_windows(given_: tuple[str, ...], kept: tuple[str, ...]) -> None:
    assert fit_windows(given_) == kept


# -- the window grammar and its one parser ----------------------------------------------------------------------
@given(st.integers(0, 23), st.integers(0, 59), st.integers(0, 23), st.integers(0, 59))
def test_every_window_of_the_grammar_parses_to_its_minutes(h1: int, m1: int, h2: int, m2: int) -> None:
    text = f"{h1:02d}:{m1:02d}-{h2:02d}:{m2:02d}"
    window = parse_window(text)
    assert (window.start_s, window.end_s) == ((h1 * 60 + m1) * 60, (h2 * 60 + m2) * 60)


@given(st.text(max_size=14))
def test_the_checker_and_the_parser_agree(text: str) -> None:
    try:
        parse_window(text)
    except ValueError:
        assert not is_valid_window(text)
    else:
        assert is_valid_window(text)


# -- round trips --------------------------------------------------------------------------------------------------
@settings(max_examples=200)
@given(valid_settings, st.integers(0, MAX_VERSION), st.text(max_size=50).filter(lambda t: "\x00" not in t))
def test_wire_round_trip(value: AssignmentSettings, version: int, reason: str) -> None:
    message = Assignment.of(value, agent_id="pi-1", seq=7, version=version, reason=reason)
    decoded = decode(TOPIC, encode(message))
    assert isinstance(decoded, Assignment)
    assert decoded == message
    assert decoded.settings == value
    assert (decoded.version, decoded.reason) == (version, reason)


@settings(max_examples=200)
@given(valid_data(Assignment, agent_id="pi-1"))
def test_every_valid_message_carries_a_valid_value(data: dict[str, Any]) -> None:
    message = Assignment.model_validate(data)
    again = Assignment.of(message.settings, agent_id="pi-1", seq=message.seq, version=message.version)
    assert again.model_dump(include=set(SETTINGS_FIELDS)) == message.model_dump(include=set(SETTINGS_FIELDS))


@given(valid_settings)
def test_store_row_round_trip(value: AssignmentSettings) -> None:
    value = dataclasses.replace(value, windows=tuple(dict.fromkeys(value.windows)))  # as the policy hands them out
    for table in (CurrentAssignment, AssignmentHistory):
        row = table(agent_id="pi-1", version=1, at=NOW, **settings_columns(value))
        assert settings_of(row) == value
    assert settings_of(SimpleNamespace(**settings_columns(value))) == value  # a Core row reads the same


def test_a_row_stored_before_the_bounds_comes_back_fitted() -> None:
    old = SimpleNamespace(
        concurrency=100,
        part_size=1024,
        windows=["bad", "22:00-06:00", "22:00-06:00"],
        bandwidth_bps=-5,
        compression_level=12,
        paused=False,
        upload_now=False,
    )
    assert settings_of(old) == AssignmentSettings(64, MIN_PART_SIZE, ("22:00-06:00",), 0, 8)
    assert settings_of(SimpleNamespace(**{**vars(old), "windows": None})).windows == ()


@given(valid_settings)
def test_the_dashboard_shows_the_value_with_its_fields(value: AssignmentSettings) -> None:
    view = AssignmentView(**value.as_dict(), version=3, reason="why", at=NOW)
    assert isinstance(view, AssignmentSettings)
    assert fields_of(view) == fields_of(value)
    shown = TypeAdapter(AssignmentView).dump_python(view, mode="json")
    assert shown == {**value.as_dict(), "version": 3, "reason": "why", "at": NOW.isoformat().replace("+00:00", "Z")}


# -- every layer composes the same value --------------------------------------------------------------------------
def test_the_messages_schema_states_the_values_ranges() -> None:
    properties = Assignment.model_json_schema()["properties"]
    for bounds in (CONCURRENCY, PART_SIZE, BANDWIDTH, COMPRESSION_LEVEL):
        assert (properties[bounds.name]["minimum"], properties[bounds.name]["maximum"]) == (bounds.low, bounds.high)
    assert properties["windows"]["maxItems"] == MAX_WINDOWS
    assert properties["windows"]["items"]["pattern"] == WINDOW_PATTERN
    defaults = AssignmentSettings().as_dict()
    for name in ("windows", "bandwidth_bps", "compression_level", "paused", "upload_now"):
        assert Assignment.model_fields[name].get_default(call_default_factory=True) == defaults[name]


@pytest.mark.parametrize(
    ("layer", "names"),
    [
        ("the Assignment message", set(Assignment.model_fields)),
        ("current_assignment", set(CurrentAssignment.model_fields)),
        ("assignment_history", set(AssignmentHistory.model_fields)),
        ("the dashboard's AssignmentView", {f.name for f in dataclasses.fields(AssignmentView)}),
        ("the agent's [defaults]", set(DefaultsSection.model_fields) | {"upload_now"}),
    ],
)
def test_every_layer_names_the_values_fields(layer: str, names: set[str]) -> None:
    assert set(SETTINGS_FIELDS) <= names, f"{layer} lacks {set(SETTINGS_FIELDS) - names}"
