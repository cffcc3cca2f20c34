"""``Context.retrying``: a failing request is retried with backoff, told to ``on_retry``, and given up only when
``give_up_after_s`` says so, with its last try at that deadline (not up to a whole backoff later)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edge_agent.engine.limits import Limits
from edge_agent.transfer import EngineConfig
from edge_agent.transfer.context import Context, RetryNotice
from edge_agent.transfer.errors import RetryableError
from fleet_audio import source as codec
from fleet_base.s3settings import S3Settings
from tests.unit.edge_agent.transfer.fakes import FakeJournal, FakeStore


def context(tmp_path: Path, **config: float) -> tuple[Context, list[RetryNotice]]:
    s3 = S3Settings("http://s3.invalid", "key", "secret", "bucket")
    cfg = EngineConfig(s3=s3, prefix="p", agent_id="pi-7", state_dir=tmp_path, **config)  # type: ignore[arg-type]
    ctx = Context(cfg, Limits(), FakeStore(), FakeJournal(), codec, lambda event: None)
    notices: list[RetryNotice] = []
    ctx.on_retry = notices.append
    return ctx, notices


def failing(times: int) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise RetryableError(f"S3 unreachable: try {len(calls)}")
        return "ok"

    return calls, fn


@pytest.mark.parametrize("failures", [0, 1, 4])
def test_every_failure_is_told_and_so_is_the_success_after_them(tmp_path: Path, failures: int) -> None:
    ctx, notices = context(tmp_path, retry_base_s=0.0, retry_cap_s=0.0)
    _, fn = failing(failures)
    assert ctx.retrying("HEAD k", fn, lambda: False) == ("ok", failures)
    told = [(n.what, n.error, n.failures, n.give_up_in_s) for n in notices]
    expected = [("HEAD k", f"S3 unreachable: try {i}", i, None) for i in range(1, failures + 1)]
    assert told == expected + ([("HEAD k", "", failures, None)] if failures else [])
    assert [n.recovered for n in notices] == [False] * failures + [True] * bool(failures)
    assert ctx.counters.retries_total == failures


def test_giving_up_tries_last_at_the_deadline_and_says_so(tmp_path: Path) -> None:
    ctx, notices = context(tmp_path, retry_base_s=1000.0, retry_cap_s=1000.0, give_up_after_s=0.3)
    calls, fn = failing(10**6)
    started = time.monotonic()
    with pytest.raises(RetryableError, match=r"^gave up after 0 s of failures: S3 unreachable: try \d+$"):
        ctx.retrying("CreateMultipartUpload k", fn, lambda: False)
    assert time.monotonic() - started < 60  # not a 1000 s backoff
    assert len(calls) >= 2  # a last try at the deadline
    assert all(n.delay_s <= 0.3 for n in notices)
    assert all(n.give_up_in_s is not None and 0 <= n.give_up_in_s <= 0.3 for n in notices)


def test_a_failing_retry_callback_does_not_stop_the_request(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path, retry_base_s=0.0, retry_cap_s=0.0)

    def broken(notice: RetryNotice) -> None:
        raise RuntimeError("display broke")

    ctx.on_retry = broken
    _, fn = failing(2)
    assert ctx.retrying("HEAD k", fn, lambda: False)[0] == "ok"
