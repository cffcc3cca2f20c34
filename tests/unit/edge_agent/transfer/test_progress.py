import io

from edge_agent.engine.events import EngineEvent
from edge_agent.transfer.progress import Progress
from fleet_protocol.vocabulary import EventKind

MiB = 1024 * 1024


def test_bar_shows_rate_eta_and_files() -> None:
    p = Progress({"/a.wav": 10 * MiB, "/b.wav": 30 * MiB}, stream=io.StringIO(), tty=True)
    p.on_bytes("/a.wav", 5 * MiB)
    p.on_event(EngineEvent(EventKind.UPLOAD_COMPLETED, "/a.wav", key="k", stored_bytes=5 * MiB))
    line = p.line()
    assert "5.0/35.0 MiB" in line  # a finished file counts with its stored size
    assert "MiB/s" in line
    assert "ETA 0:" in line
    assert line.endswith("files 1/2")


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    p = Progress({"/a.wav": 1}, stream=out, tty=False)
    p.start()
    p.on_event(EngineEvent(EventKind.FILE_REJECTED, "/a.wav", reason="empty file"))
    p.close()
    assert out.getvalue() == "file_rejected: /a.wav (empty file)\n"
