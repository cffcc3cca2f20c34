"""``S3Probe``: an active check of the object store. Each round puts a small object under its own prefix, gets it
back (and compares the bytes) and deletes it, timing each step; a failing step ends the round with its error.
The client has short timeouts and no retries: a probe measures the store as it is, it does not wait for it
to come back. Its S3 identity may only put, get and delete under that prefix (docs/controller.md)."""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from controller.central.readings import ProbeResult
from fleet_base.s3settings import S3Settings

if TYPE_CHECKING:
    from minio import Minio

PROBE_BYTES = 1024


def probe_client(settings: S3Settings, timeout_s: float) -> Minio:
    """A client with short timeouts and no retries (for http too: the pool is always this one)."""
    import urllib3

    pool = settings.http_pool(timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s), retries=False)
    return settings.client(http_client=pool)


class S3Probe:
    def __init__(self, client: Any, bucket: str, key: str, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self.client, self.bucket, self.key, self.clock = client, bucket, key, clock

    def run(self) -> ProbeResult:
        body = secrets.token_bytes(PROBE_BYTES)
        seconds: dict[str, float] = {}
        step = "put"
        try:
            seconds["put"] = self._timed(
                lambda: self.client.put_object(self.bucket, self.key, io.BytesIO(body), len(body))
            )
            step = "get"
            got: list[bytes] = []
            seconds["get"] = self._timed(lambda: got.append(self._get()))
            if got[0] != body:
                return _result(seconds, "get: other bytes came back")
            step = "delete"
            seconds["delete"] = self._timed(lambda: self.client.remove_object(self.bucket, self.key))
        except Exception as exc:  # any failure is the probe's result, never the monitor's end
            return _result(seconds, f"{step}: {type(exc).__name__}: {exc}")
        return _result(seconds, "")

    def _timed(self, call: Callable[[], object]) -> float:
        start = self.clock()
        call()
        return self.clock() - start

    def _get(self) -> bytes:
        response = self.client.get_object(self.bucket, self.key)
        try:
            return bytes(response.read())
        finally:
            response.close()
            response.release_conn()


def _result(seconds: dict[str, float], error: str) -> ProbeResult:
    return ProbeResult(
        ok=not error,
        put_s=seconds.get("put"),
        get_s=seconds.get("get"),
        delete_s=seconds.get("delete"),
        error=error[:200],
    )
