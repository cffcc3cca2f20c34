"""What the campaign checks in the object store, and the watcher that catches a file retired too early."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from minio import Minio
from minio.error import S3Error

from fleet_audio import recmeta


def list_keys(client: Minio, bucket: str, prefix: str) -> list[str]:
    return sorted(o.object_name for o in client.list_objects(bucket, prefix=f"{prefix}/", recursive=True))


def open_uploads(client: Minio, bucket: str) -> list[tuple[str, str]]:
    """Every multipart upload that was started and neither completed nor aborted."""
    found: list[tuple[str, str]] = []
    marker: str | None = None
    while True:
        result = client._list_multipart_uploads(bucket, key_marker=marker, max_uploads=1000)
        found += [(str(u.object_name), str(u.upload_id)) for u in result.uploads]
        if not result.is_truncated:
            return found
        marker = result.next_key_marker


def expected_keys(prefix: str, agent_id: str, path: Path) -> list[str]:
    """``{prefix}/{agent}/{YYYY}/{MM}/{DD}/{stem}.flac`` or raw: the date (UTC) is the recording's own (metadata
    chunks before the audio, or the name: ``fleet_audio.recmeta``), else the file's mtime."""
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    with path.open("rb") as f:
        head = f.read(1024 * 1024)
    found = recmeta.extract(recmeta.chunks_from_riff(head), file_name=path.name)
    day = (found.recorded_at or mtime).strftime("%Y/%m/%d")
    return [f"{prefix}/{agent_id}/{day}/{path.stem}.flac", f"{prefix}/{agent_id}/{day}/{path.name}"]


@dataclass(eq=False)
class RetirementWatcher(threading.Thread):
    """Polls the agents' done folders; a file that shows up there while its object is not in the store is a
    violation of "local files are moved only after the object is complete and verified"."""

    client: Minio
    bucket: str
    prefix: str
    done_dirs: dict[str, Path]
    interval_s: float = 0.2
    seen: set[Path] = field(default_factory=set)
    violations: list[str] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        super().__init__(name="retirement-watcher", daemon=True)

    def run(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            self.scan()

    def scan(self) -> None:
        for agent_id, folder in self.done_dirs.items():
            if not folder.exists():
                continue
            for path in folder.iterdir():
                if path not in self.seen and self._check(agent_id, path):
                    self.seen.add(path)

    def _check(self, agent_id: str, path: Path) -> bool:
        """True once decided (object found, or violation recorded); False: ask again (S3 down right now)."""
        try:
            keys = expected_keys(self.prefix, agent_id, path)
        except FileNotFoundError:
            return False
        for key in keys:
            try:
                self.client.stat_object(self.bucket, key)
                return True
            except S3Error as exc:
                if exc.code not in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                    return False
            except Exception:  # S3 restarting in the campaign: decide later
                return False
        self.violations.append(f"{path} was retired but no object {keys} exists")
        return True

    def stop(self) -> None:
        self.stop_event.set()
        self.join(10)
        self.scan()
