"""Decode golden messages with whichever ``fleet_protocol`` is first on the path, and print what each gave.

``tests/unit/fleet_protocol/test_golden.py`` runs it in a subprocess with an older release's ``fleet_protocol``
(extracted from its commit) first on ``PYTHONPATH``: ``python -m tests.golden.decode FILE...`` prints one JSON
object, ``{"fleet_protocol": <the module's file>, "refused": {<file>: <error>}}``. Uses nothing the first
release's ``fleet_protocol`` lacks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import fleet_protocol
from fleet_protocol.codec import decode, decode_controller_state
from fleet_protocol.errors import ProtocolError
from tests.golden.corpus import CONTROLLER_STATE, topic_of


def refusals(paths: list[Path]) -> dict[str, str]:
    refused: dict[str, str] = {}
    for path in paths:
        payload = path.read_bytes()
        topic = topic_of(path.stem, payload)
        try:
            if path.stem == CONTROLLER_STATE:
                decode_controller_state(topic, payload)
            else:
                decode(topic, payload)
        except ProtocolError as exc:
            refused[str(path)] = str(exc)
    return refused


if __name__ == "__main__":
    found = refusals([Path(arg) for arg in sys.argv[1:]])
    print(json.dumps({"fleet_protocol": fleet_protocol.__file__, "refused": found}))
