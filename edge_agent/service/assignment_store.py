"""The last assignment, kept on disk so the agent works on with it while the broker or controller is away."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import ValidationError

from fleet_protocol.messages import Assignment

log = logging.getLogger(__name__)

FILE_NAME = "assignment.json"


class AssignmentStore:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME

    def load(self, agent_id: str) -> Assignment | None:
        """The stored assignment, or None if there is none or it is unusable (logged, never fatal)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("cannot read stored assignment %s: %s; using defaults", self.path, exc)
            return None
        try:
            assignment = Assignment.model_validate_json(raw)
        except ValidationError as exc:
            log.warning("stored assignment %s is invalid (%s); using defaults", self.path, exc.error_count())
            return None
        if assignment.agent_id != agent_id:
            log.warning("stored assignment is for %r, not %r; using defaults", assignment.agent_id, agent_id)
            return None
        return assignment

    def save(self, assignment: Assignment) -> None:
        """Atomic replace with fsync; raises OSError (e.g. disk full) for the caller to log."""
        tmp = self.path.with_suffix(".tmp")
        data = assignment.model_dump_json().encode()
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
