"""The committed JSON Schema snapshots match the models: a wire change is never accidental."""

from __future__ import annotations

import pytest

from fleet_protocol.schemas import SCHEMA_DIR, all_models, render


@pytest.mark.parametrize("name", sorted(all_models()))
def test_snapshot_matches_model(name: str) -> None:
    path = SCHEMA_DIR / f"{name}.json"
    assert path.exists(), f"missing snapshot {path}: run python -m fleet_protocol.schemas"
    assert path.read_text() == render(all_models()[name]), (
        f"{name} changed without its snapshot: review the wire change, then run python -m fleet_protocol.schemas"
    )


def test_contract_field_names_are_in_the_snapshots() -> None:
    """docs/design.md §2 names fields other tools rely on: they must never disappear."""
    contract = {
        "telemetry": [
            "temperature_c",
            "throttled",
            "cpu_percent",
            "mem_available_bytes",
            "disk_free_bytes",
            "backlog_files",
            "backlog_bytes",
            "active_uploads",
            "throughput_bps",
            "assignment_version",
        ],
        "birth": ["model", "cores", "ram_bytes", "software_version", "flac_encode_bps"],
        "assignment": [
            "version",
            "concurrency",
            "part_size",
            "windows",
            "bandwidth_bps",
            "compression_level",
            "paused",
            "reason",
        ],
    }
    models = all_models()
    for name, fields in contract.items():
        properties = models[name].model_json_schema()["properties"]
        for envelope in ("v", "agent_id", "seq", "sent_at"):
            assert envelope in properties
        for field in fields:
            assert field in properties, f"{name}.{field}"
