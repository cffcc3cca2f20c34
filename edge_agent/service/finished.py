"""The codec's ``check_finished`` as the service's ``FinishedCheck`` (verdict + reason, never raises)."""

from __future__ import annotations

from pathlib import Path

from edge_agent.service.ports import Verdict
from fleet_audio.source import RecordingNotReady, RecordingRejected, check_finished


def codec_check(path: Path) -> tuple[Verdict, str]:
    """Called only for files whose size and mtime were stable for ``settle_seconds`` (hence ``settled``)."""
    try:
        check_finished(path, settled=True)
    except RecordingNotReady as exc:
        return Verdict.NOT_READY, str(exc)
    except RecordingRejected as exc:
        return Verdict.REJECTED, str(exc)
    except OSError as exc:  # vanished or unreadable right now: look again later
        return Verdict.NOT_READY, str(exc)
    return Verdict.READY, ""
