"""What ``edgefleet upload`` shows on stderr while it runs: the bar, plain progress lines, and S3 trouble."""

import io
import time

import pytest

from edge_agent.engine.events import EngineEvent
from edge_agent.transfer.context import RetryNotice
from edge_agent.transfer.progress import NOTICE_EVERY_S, Progress, fmt_duration, retry_message
from fleet_protocol.vocabulary import EventKind

MiB = 1024 * 1024
NOON = time.mktime((2026, 12, 3, 12, 0, 0, 0, 0, -1))  # local time, as the messages show it


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bar_shows_rate_eta_and_files() -> None:
    p = Progress({"/a.wav": 10 * MiB, "/b.wav": 30 * MiB}, stream=io.StringIO(), tty=True)
    p.on_bytes("/a.wav", 5 * MiB)
    p.on_event(EngineEvent(EventKind.UPLOAD_COMPLETED, "/a.wav", key="k", stored_bytes=5 * MiB))
    line = p.line()
    assert "5.0/35.0 MiB" in line  # a finished file counts with its stored size
    assert "MiB/s" in line
    assert "ETA 0:" in line
    assert line.endswith("files 1/2")


def test_plain_lines_show_progress_but_leave_outcomes_to_the_final_report() -> None:
    out = io.StringIO()
    p = Progress({"/a.wav": 1, "/b.wav": 1, "/c.wav": 1}, stream=out, tty=False)
    p.start()
    p.on_event(EngineEvent(EventKind.UPLOAD_STARTED, "/a.wav", key="k/a.flac"))
    p.on_event(EngineEvent(EventKind.UPLOAD_COMPLETED, "/a.wav", key="k/a.flac", stored_bytes=1))
    p.on_event(EngineEvent(EventKind.FILE_REJECTED, "/b.wav", reason="empty file"))
    p.on_event(EngineEvent(EventKind.UPLOAD_FAILED, "/c.wav", reason="S3 AccessDenied"))
    p.close()
    assert out.getvalue() == "upload_started: /a.wav -> k/a.flac\nupload_completed: /a.wav -> k/a.flac\n"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0 s"), (0.25, "0.2 s"), (9.9, "9.9 s"), (10, "10 s"), (59.4, "59 s"), (65, "1 min 05 s"),
     (3600 + 7 * 60 + 2, "1 h 07 min")],
)  # fmt: skip
def test_durations_read_naturally(seconds: float, text: str) -> None:
    assert fmt_duration(seconds) == text


FAILED_CREATE = RetryNotice("CreateMultipartUpload k/a.flac", "S3 unreachable: refused", 1, 0.1, 12.0)


@pytest.mark.parametrize(
    ("notice", "first", "expected", "absent"),
    [
        (
            FAILED_CREATE,
            True,
            [
                "CreateMultipartUpload k/a.flac failed: S3 unreachable: refused",
                "next attempt in 12 s, at 12:00:12",
                "retrying until it answers",
                "--give-up-after SECONDS",
            ],
            ["gives up"],
        ),
        (
            RetryNotice("upload of part 3 of k/a.flac", "S3 unreachable: reset", 9, 95.0, 30.0),
            False,
            ["S3 still failing after 1 min 35 s (S3 unreachable: reset)", "next attempt in 30 s, at 12:00:30"],
            ["upload of part 3"],
        ),
        (
            RetryNotice("HEAD k", "S3 server error: 503", 2, 4.0, 2.5, give_up_in_s=56.0),
            True,
            ["HEAD k failed", "next attempt in 2.5 s, at 12:00:02", "gives up in 56 s (--give-up-after)"],
            ["retrying until it answers"],
        ),
        (
            RetryNotice("HEAD k", "", 5, 125.0),
            False,
            ["S3 answers again after 2 min 05 s of failures; going on"],
            ["next attempt"],
        ),
    ],
)
def test_retry_messages_say_what_failed_when_the_next_attempt_is_and_how_to_stop(
    notice: RetryNotice, first: bool, expected: list[str], absent: list[str]
) -> None:
    text = retry_message(notice, first, NOON)
    assert "\n" not in text
    for words in expected:
        assert words in text
    for words in absent:
        assert words not in text


def test_s3_trouble_is_told_once_then_every_while_and_once_more_when_it_is_over() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress({"/a.wav": MiB}, stream=out, tty=False, clock=clock, wall_clock=lambda: NOON)

    def lines() -> list[str]:
        return out.getvalue().splitlines()

    p.on_retry(RetryNotice("HEAD k", "", 0, 0.0))  # a success with no trouble before: nothing to say
    assert lines() == []
    p.on_retry(FAILED_CREATE)
    assert len(lines()) == 1
    assert "waiting for S3" in p.line()
    assert "ETA ?" in p.line()
    for part in range(1, 5):  # several requests failing at once, soon after: the same stretch of trouble
        clock.now += 1
        p.on_retry(RetryNotice(f"upload of part {part} of k", "S3 unreachable: refused", 1, 0.1, 1.0))
    assert len(lines()) == 1
    clock.now += NOTICE_EVERY_S
    p.on_retry(RetryNotice("CreateMultipartUpload k/a.flac", "S3 unreachable: refused", 7, 34.0, 30.0))
    assert len(lines()) == 2
    assert lines()[1].startswith("S3 still failing after 34 s")
    p.on_retry(RetryNotice("CreateMultipartUpload k/a.flac", "", 8, 64.0))
    assert len(lines()) == 3
    assert lines()[2].startswith("S3 answers again after 1 min 04 s")
    assert "waiting for S3" not in p.line()
    p.on_retry(RetryNotice("upload of part 2 of k", "", 1, 64.0))  # the others going through: said already
    assert len(lines()) == 3


def test_on_a_terminal_a_notice_clears_the_bar_line() -> None:
    out = io.StringIO()
    p = Progress({"/a.wav": MiB}, stream=out, tty=True, wall_clock=lambda: NOON)
    p.on_retry(FAILED_CREATE)
    assert out.getvalue().startswith("\r\033[KCreateMultipartUpload")
    assert out.getvalue().endswith("\n")


def test_on_a_terminal_a_resume_gets_a_line_and_the_rest_is_the_bar() -> None:
    out = io.StringIO()
    p = Progress({"/a.wav": MiB, "/b.wav": MiB}, stream=out, tty=True)
    p.on_event(EngineEvent(EventKind.UPLOAD_STARTED, "/a.wav", key="k/a.flac"))
    p.on_event(EngineEvent(EventKind.UPLOAD_RESUMED, "/b.wav", key="k/b.flac", reason="2 parts already stored"))
    p.on_event(EngineEvent(EventKind.UPLOAD_COMPLETED, "/a.wav", key="k/a.flac", stored_bytes=1))
    assert out.getvalue() == "\r\033[Kupload_resumed: /b.wav -> k/b.flac (2 parts already stored)\n"


def test_everything_goes_to_stderr_as_it_is_when_the_command_runs(capsys: pytest.CaptureFixture[str]) -> None:
    p = Progress({"/a.wav": MiB})  # the command's own: stderr, whatever sys.stderr is by then
    p.start()
    p.on_event(EngineEvent(EventKind.UPLOAD_STARTED, "/a.wav", key="k/a.flac"))
    p.say("a notice")
    p.close()
    out, err = capsys.readouterr()
    assert out == ""  # stdout carries the outcome lines only
    assert "upload_started: /a.wav -> k/a.flac" in err
    assert "a notice" in err
