"""JSON Schema snapshots of every message: ``python -m fleet_protocol.schemas`` rewrites them.

The committed files in ``fleet_protocol/schemas/`` are what other tools read; a test fails when a model
changes without its snapshot, so a change to the wire format is always a deliberate, reviewed one.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from fleet_protocol.messages import AGENT_MESSAGES, ControllerState, QueueReply, QueueRequest

SCHEMA_DIR = Path(__file__).parent / "schemas"


def all_models() -> dict[str, type[BaseModel]]:
    models: dict[str, type[BaseModel]] = {channel.value: model for channel, model in AGENT_MESSAGES.items()}
    models["controller_state"] = ControllerState
    models["queue_request"] = QueueRequest
    models["queue_reply"] = QueueReply
    return models


def render(model: type[BaseModel]) -> str:
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"


def write_snapshots(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in all_models().items():
        path = directory / f"{name}.json"
        path.write_text(render(model))
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_snapshots():
        print(path)
