"""Which recordings in the spool folder are finished: a pure tracker fed with directory listings and a clock.

Rule (docs/design.md, section 4): a file is a candidate once its size, mtime and inode have stayed the same for
``settle_seconds`` of observation; the caller then asks the codec (``check_finished``) and reports back
``not_ready`` (the settle clock restarts), ``rejected`` or ``taken``. A taken or rejected file is not offered
again unless it changes (then it settles again like a new file). A file that disappears is forgotten.
A file whose handling failed in an unexpected way is ``set_aside``: not offered again before a delay that
doubles with every failure (30 s .. 1 h, the engine queue's retry rule), or at once if it changes.

Names are ``str`` as ``os.scandir`` gives them: any bytes the file system allows, with the bytes that are not
UTF-8 surrogate-escaped (``fleet_base/filenames.py`` says how they are stored and shown).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from edge_agent.engine.queue import retry_delay


@dataclass(frozen=True)
class SpoolEntry:
    name: str
    size: int
    mtime_ns: int
    inode: int

    @property
    def signature(self) -> tuple[int, int, int]:
        return (self.size, self.mtime_ns, self.inode)


class FileStatus(StrEnum):
    QUEUED = "queued"  # handed to the engine
    REJECTED = "rejected"  # the codec says it will never upload
    DONE = "done"  # uploaded and verified (retention may have removed it)


@dataclass
class _Seen:
    entry: SpoolEntry
    since: float
    status: FileStatus | None = None
    handled: SpoolEntry | None = None  # the entry as it was when the status was set
    failures: int = 0  # unexpected errors while handling this version of the file
    retry_at: float = 0.0


@dataclass
class SpoolTracker:
    settle_seconds: float
    _files: dict[str, _Seen] = field(default_factory=dict)

    def restore(self, known: Mapping[str, tuple[SpoolEntry, FileStatus]], now: float) -> None:
        """Seed with the ledger after a restart so queued/rejected/done files are not taken twice."""
        for name, (entry, status) in known.items():
            self._files[name] = _Seen(entry, now, status, entry)

    def observe(self, entries: Iterable[SpoolEntry], now: float) -> list[SpoolEntry]:
        """Update from a listing; return the files that are settled and not yet handled, oldest first."""
        current = {e.name: e for e in entries}
        for name in [n for n in self._files if n not in current]:
            del self._files[name]
        ready = []
        for name, entry in current.items():
            seen = self._files.get(name)
            if seen is None:
                self._files[name] = _Seen(entry, now)
                seen = self._files[name]
            elif seen.entry.signature != entry.signature:
                seen.entry, seen.since = entry, now
                seen.failures, seen.retry_at = 0, 0.0
            if seen.handled is not None and seen.handled.signature == entry.signature:
                continue
            if now - seen.since >= self.settle_seconds and now >= seen.retry_at:
                ready.append(entry)
        ready.sort(key=lambda e: (e.mtime_ns, e.name))
        return ready

    def not_ready(self, name: str, now: float) -> None:
        if name in self._files:
            self._files[name].since = now

    def set_aside(self, name: str, now: float) -> float:
        """Handling this file failed unexpectedly: not offered again before the returned time (unless it changes)."""
        seen = self._files.get(name)
        if seen is None:
            return now
        seen.failures += 1
        seen.retry_at = now + retry_delay(seen.failures)
        return seen.retry_at

    def mark(self, entry: SpoolEntry, status: FileStatus) -> None:
        seen = self._files.setdefault(entry.name, _Seen(entry, 0.0))
        seen.status, seen.handled = status, entry

    def status(self, name: str) -> FileStatus | None:
        seen = self._files.get(name)
        return None if seen is None else seen.status

    def handled(self, name: str) -> SpoolEntry | None:
        """The file as it was when it was queued/rejected/done (not as it is now)."""
        seen = self._files.get(name)
        return None if seen is None else seen.handled


def list_spool(spool_dir: Path, suffixes: Iterable[str]) -> list[SpoolEntry]:
    """Regular, non-hidden files with one of ``suffixes`` (case-insensitive): one ``stat`` each, no reads."""
    wanted = tuple(s.lower() for s in suffixes)
    entries = []
    with os.scandir(spool_dir) as it:
        for item in it:
            if item.name.startswith(".") or not item.name.lower().endswith(wanted):
                continue
            try:
                if not item.is_file(follow_symlinks=False):
                    continue
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            entries.append(SpoolEntry(item.name, st.st_size, st.st_mtime_ns, st.st_ino))
    return entries


def stat_entry(path: Path) -> SpoolEntry | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return SpoolEntry(path.name, st.st_size, st.st_mtime_ns, st.st_ino)
