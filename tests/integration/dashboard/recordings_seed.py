"""Catalog rows (``recording``) for the recordings page's tests, written as the catalog would write them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from controller.store.models import Recording
from controller.store.tables import column

T0 = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)


def recording(n: int, **changes: Any) -> dict[str, Any]:
    """The ``n``-th row of a small catalog: cataloged FLAC, one an hour from ``T0``, five minutes long."""
    agent = changes.get("agent_id", f"pi-{n % 3:02d}")
    values: dict[str, Any] = {
        "key": f"field/{agent}/rec-{n:05d}.flac",
        "agent_id": agent,
        "site": "garden",
        "file": f"rec-{n:05d}.wav",
        "uploaded_at": T0 + timedelta(hours=n, minutes=30),
        "recorded_at": T0 + timedelta(hours=n),
        "recorded_at_source": "bext",
        "clock_suspect": False,
        "duration_s": 300.0,
        "sample_rate": 48_000,
        "channels": 1,
        "bits_per_sample": 16,
        "original_bytes": 28_800_044,
        "stored_bytes": 17_000_000,
        "sha256": f"{n:064x}",
        "codec": "flac",
        "recorder_metadata": {"bext": {"description": f"take {n}"}},
        "upload_event_id": n,
        "status": "cataloged",
        "error": "",
        "cataloged_at": T0 + timedelta(hours=n, minutes=31),
    }
    values.update(changes)
    return values


def put_recordings(engine: Engine, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert the rows (one statement each: the ids come back in order); returns their ids."""
    ids: list[int] = []
    with engine.begin() as connection:
        for row in rows:
            row_id = connection.execute(insert(Recording).values(**row).returning(column(Recording.id))).scalar_one()
            assert row_id is not None
            ids.append(row_id)
    return ids
