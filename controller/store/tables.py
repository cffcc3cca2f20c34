"""Core handles on the SQLModel tables, for set-based statements; every name taken from the models.

The store writes thousands of rows a second (executemany upserts, bulk inserts) and reads the policy's columns for
the whole fleet every tick, with SQLAlchemy Core rather than ORM objects. Names come from the models so that a
renamed field shows:

- ``column(Agent.online)`` is the table's Core column behind a model attribute: mypy checks the attribute and
  types the column (``Column[bool]``); ``names(...)`` gives the names of several.
- a field group is a model class (e.g. ``AgentCapabilities``): ``copied_fields`` lists its fields and fails at
  import when one is not a field of the protocol message its values are copied from by name.

A row dictionary with a key that is not a column of its table is refused by SQLAlchemy when it runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy import Column, Table
from sqlalchemy.orm import QueryableAttribute
from sqlmodel import SQLModel

from controller.store.database import Upsert
from controller.store.models import (
    Agent,
    AlertNotification,
    AlertRecord,
    CentralSample,
    ControllerInstance,
    CurrentAssignment,
    DeadLetter,
    IngestReject,
    TelemetrySample,
    UploadEvent,
)

T = TypeVar("T")


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a ``table=True`` model."""
    table = getattr(model, "__table__", None)
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


def column(attribute: T) -> Column[T]:
    """The Core column behind a model attribute, e.g. ``column(Agent.online)``: a plain table column (no ORM
    annotations, so a statement stays Core), typed as the field."""
    mapped = cast(QueryableAttribute[Any], attribute)
    return cast("Column[T]", table_of(cast(type[SQLModel], mapped.class_)).c[mapped.key])


def names(*attributes: object) -> tuple[str, ...]:
    """The column names of model attributes: ``names(Agent.site, Agent.birth_at)``."""
    return tuple(cast(QueryableAttribute[Any], attribute).key for attribute in attributes)


def incoming(stmt: Upsert, fields: Iterable[str]) -> dict[str, Any]:
    """``SET field = excluded.field`` for each of ``fields``: the values of the row that was to be inserted."""
    return {name: stmt.excluded[name] for name in fields}


def copied_fields(model: type[SQLModel], message: type[BaseModel]) -> tuple[str, ...]:
    """The fields of the field group ``model``, each copied by name from ``message``; raises if one is not a field
    of ``message`` (a rename on one side only)."""
    fields = tuple(model.model_fields)
    missing = [name for name in fields if name not in message.model_fields]
    if missing:
        raise TypeError(f"{model.__name__} fields {missing} are not fields of {message.__name__}")
    return fields


AGENT = table_of(Agent)
SAMPLE = table_of(TelemetrySample)
EVENT = table_of(UploadEvent)
REJECT = table_of(IngestReject)
DEAD = table_of(DeadLetter)
CURRENT = table_of(CurrentAssignment)
INSTANCE = table_of(ControllerInstance)
ALERT = table_of(AlertRecord)
NOTIFICATION = table_of(AlertNotification)
CENTRAL = table_of(CentralSample)
