"""Names in the store come from the models: field groups match the protocol messages they are copied from, the
policy's columns and the operator's override fields are the model's, and ``column`` is the plain table column."""

from __future__ import annotations

import inspect

import pytest
from sqlmodel import Field, SQLModel

from controller.store import repo
from controller.store.agent_writes import BIRTH_FIELDS, LATEST_FIELDS, SAMPLE_FIELDS
from controller.store.assignments import POLICY_COLUMNS, PolicyAgentRow
from controller.store.models import Agent, OverrideBase, TelemetrySample
from controller.store.tables import AGENT, column, copied_fields, names, table_of
from fleet_protocol.messages import Birth, Telemetry


@pytest.mark.parametrize(
    ("fields", "table", "message"),
    [(BIRTH_FIELDS, Agent, Birth), (LATEST_FIELDS, Agent, Telemetry), (SAMPLE_FIELDS, TelemetrySample, Telemetry)],
)
def test_field_groups_are_columns_and_message_fields(
    fields: tuple[str, ...], table: type[SQLModel], message: type[Birth | Telemetry]
) -> None:
    assert fields
    assert set(fields) <= set(table_of(table).c.keys())
    assert set(fields) <= set(message.model_fields)


def test_every_latest_value_of_the_telemetry_message_is_kept() -> None:
    header = {"v", "agent_id", "seq", "sent_at"}
    assert set(LATEST_FIELDS) == set(Telemetry.model_fields) - header


def test_a_field_group_that_drifts_from_its_message_fails_at_once() -> None:
    class Drifted(SQLModel):
        temperature_celsius: float = Field(default=0.0)

    with pytest.raises(TypeError, match=r"\['temperature_celsius'\] are not fields of Telemetry"):
        copied_fields(Drifted, Telemetry)


def test_the_policy_columns_are_the_row_protocol_in_order() -> None:
    assert [c.key for c in POLICY_COLUMNS] == list(PolicyAgentRow.__annotations__)
    assert all(c.table is AGENT for c in POLICY_COLUMNS)


def test_column_is_the_plain_table_column() -> None:
    assert column(Agent.online) is AGENT.c.online
    assert not column(Agent.online)._annotations  # no ORM annotations: statements stay Core
    assert names(Agent.site, Agent.birth_at) == ("site", "birth_at")


def test_set_override_takes_every_override_field() -> None:
    parameters = set(inspect.signature(repo.set_override).parameters)
    assert parameters - {"session", "who", "agent_id", "site", "now"} == set(OverrideBase.model_fields)
