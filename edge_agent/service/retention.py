"""What happens to a local recording after the engine reported it stored AND verified (never before)."""

from __future__ import annotations

import logging
import os
import shutil
from enum import StrEnum
from pathlib import Path

from edge_agent.service.spool import SpoolEntry, stat_entry
from fleet_base.filenames import display_name

log = logging.getLogger(__name__)

NAME_MAX = 255  # bytes in one file name on Linux file systems


class Outcome(StrEnum):
    DELETED = "deleted"
    MOVED = "moved"
    KEPT = "kept"
    CHANGED = "changed"  # the file changed after it was taken: left alone, it will be uploaded again
    MISSING = "missing"


def _free_target(done_dir: Path, name: str) -> Path:
    """``done_dir/name``, else ``stem.1.wav``, ``stem.2.wav``, ...; the stem is shortened (in bytes) when the
    number would make the name longer than the file system allows."""
    target = done_dir / name
    stem, suffix = os.fsencode(Path(name).stem), os.fsencode(Path(name).suffix)
    n = 1
    while target.exists():
        tail = b".%d" % n + suffix
        if len(tail) >= NAME_MAX:  # a "suffix" that is most of the name: number the whole name instead
            stem, suffix, tail = os.fsencode(name), b"", b".%d" % n
        target = done_dir / os.fsdecode(stem[: NAME_MAX - len(tail)] + tail)
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
        log.warning("%s changed after it was uploaded; not removing it", display_name(str(path)))
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
