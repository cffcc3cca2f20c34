"""What happens to a local recording after the engine reported it stored AND verified (never before)."""

from __future__ import annotations

import logging
import shutil
from enum import StrEnum
from pathlib import Path

from edge_agent.service.spool import SpoolEntry, stat_entry

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    DELETED = "deleted"
    MOVED = "moved"
    KEPT = "kept"
    CHANGED = "changed"  # the file changed after it was taken: left alone, it will be uploaded again
    MISSING = "missing"


def _free_target(done_dir: Path, name: str) -> Path:
    target = done_dir / name
    n = 1
    while target.exists():
        target = done_dir / f"{Path(name).stem}.{n}{Path(name).suffix}"
        n += 1
    return target


def apply_retention(policy: str, path: Path, taken: SpoolEntry | None, done_dir: Path | None = None) -> Outcome:
    """Delete, move or keep ``path``; only if it is still exactly the file that was uploaded.

    ``taken`` is the spool entry as it was handed to the engine (None: unknown, treated as changed).
    Raises OSError if the file system refuses (the caller logs it; the file simply stays).
    """
    current = stat_entry(path)
    if current is None:
        return Outcome.MISSING
    if taken is None or current.signature != taken.signature:
        log.warning("%s changed after it was uploaded; not removing it", path)
        return Outcome.CHANGED
    if policy == "keep":
        return Outcome.KEPT
    if policy == "delete":
        path.unlink()
        return Outcome.DELETED
    if policy == "move":
        if done_dir is None:
            raise ValueError("retention 'move' needs a done_dir")
        done_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(path, _free_target(done_dir, path.name))
        return Outcome.MOVED
    raise ValueError(f"unknown retention policy {policy!r}")
