"""Which S3/network errors are worth retrying (the httpx idea: one small tree, retryable apart from fatal).

TransferError
├── RetryableError   network drop, timeout, 5xx, SlowDown: retry the same request with backoff, forever
├── UploadGone       NoSuchUpload: someone aborted our upload; start the file over
└── FatalS3Error     AccessDenied, NoSuchBucket, bad credentials...: the file fails (kept locally), retried later
"""

from __future__ import annotations

import http.client
import socket

import urllib3.exceptions
from minio.error import InvalidResponseError, S3Error, ServerError


class TransferError(Exception):
    pass


class RetryableError(TransferError):
    pass


class UploadGone(TransferError):
    pass


class FatalS3Error(TransferError):
    pass


_RETRYABLE_CODES = {
    "SlowDown",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "OperationAborted",
    "XMinioServerNotInitialized",
    "BadDigest",  # the part was damaged on the way: send it again
    "IncompleteBody",
}


def classify(exc: BaseException) -> TransferError:
    """Wrap any exception raised by an S3 call into the tree above."""
    if isinstance(exc, TransferError):
        return exc
    if isinstance(exc, S3Error):
        if exc.code == "NoSuchUpload":
            return UploadGone(f"upload no longer exists: {exc.message}")
        if exc.code in _RETRYABLE_CODES or (exc.response is not None and exc.response.status >= 500):
            return RetryableError(f"S3 {exc.code}: {exc.message}")
        return FatalS3Error(f"S3 {exc.code}: {exc.message}")
    if isinstance(exc, ServerError | InvalidResponseError):
        return RetryableError(f"S3 server error: {_short(exc)}")
    if isinstance(
        exc,
        urllib3.exceptions.HTTPError | http.client.HTTPException | ConnectionError | socket.timeout | TimeoutError,
    ):
        return RetryableError(f"S3 unreachable: {_short(exc)}")
    if isinstance(exc, OSError):
        return RetryableError(f"S3 I/O error: {_short(exc)}")
    raise exc


def _short(exc: BaseException) -> str:
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason  # "connection reset", "timed out"... rather than the URL
    if isinstance(exc, urllib3.exceptions.NewConnectionError) and exc.conn is not None:
        cause = exc.__cause__
        why = cause.strerror if isinstance(cause, OSError) and cause.strerror else str(cause or "")
        text = f"cannot connect to {exc.conn.host}:{exc.conn.port}" + (f" ({why})" if why else "")
    else:
        text = str(exc) or type(exc).__name__
    return text if len(text) < 200 else text[:197] + "..."
