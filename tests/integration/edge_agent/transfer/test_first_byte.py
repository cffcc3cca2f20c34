"""The S3 store's time to first byte against a real S3 server (SeaweedFS): small requests are timed, a part's
upload is not (its answer waits for the whole body)."""

from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from edge_agent.engine.limits import MiB
from edge_agent.transfer.s3 import S3Store
from edgefleet.localservices import SeaweedS3
from tests.integration.edge_agent.transfer.helpers import settings_via

pytestmark = pytest.mark.integration


def test_small_requests_are_timed_parts_are_not(s3_server: SeaweedS3) -> None:
    key = f"ttfb/{uuid.uuid4().hex}.flac"
    opener = S3Store(settings_via(s3_server))
    upload_id = opener.create(key, "audio/flac", {})
    assert (opener.first_byte_s() or 0) > 0  # CreateMultipartUpload: a small request

    uploader = S3Store(settings_via(s3_server))
    try:
        part = bytearray(os.urandom(5 * MiB))
        uploader.upload_part(key, upload_id, 1, part, hashlib.md5(part).hexdigest())
        assert uploader.first_byte_s() is None
        assert uploader.head(f"{key}.missing") is None  # an error answer is an answer too
        first_byte = uploader.first_byte_s()
        assert first_byte is not None
        assert 0 < first_byte < 30
    finally:
        opener.abort(key, upload_id)
