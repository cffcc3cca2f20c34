"""The dashboard's ``[s3]``: the controller's connection settings plus the limits of listening and downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dashboard.config import ConfigError, parse_config
from tests.integration.dashboard.seed import config_data

S3 = {"endpoint": "http://127.0.0.1:8333", "access_key": "reader", "secret_key": "s3cret", "bucket": "recordings"}


def test_without_s3_there_is_no_read_access() -> None:
    assert parse_config(config_data("sqlite://")).s3 is None


def test_s3_with_defaults() -> None:
    s3 = parse_config(config_data("sqlite://", s3=S3)).s3
    assert s3 is not None
    assert s3.settings().bucket == "recordings"
    assert (s3.streams_per_user, s3.downloads_per_user, s3.downloads_total) == (4, 2, 8)
    assert s3.spectrogram_cache_dir == Path.home() / ".cache" / "edgefleet" / "spectrograms"
    assert (s3.spectrogram_width, s3.spectrogram_height, s3.spectrogram_workers) == (1024, 256, 2)


def test_the_environment_fills_in_s3() -> None:
    env = {
        "EDGEFLEET_S3_ENDPOINT": "https://s3.lan:9000",
        "EDGEFLEET_S3_ACCESS_KEY": "a",
        "EDGEFLEET_S3_SECRET_KEY": "b",
        "EDGEFLEET_S3_BUCKET": "rec",
    }
    s3 = parse_config(config_data("sqlite://"), env).s3
    assert s3 is not None
    assert s3.settings().secure


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"downloads_per_user": 0}, "s3.downloads_per_user"),
        ({"spectrogram_width": 10}, "s3.spectrogram_width"),
        ({"spectrogram_cache_bytes": 1000}, "s3.spectrogram_cache_bytes"),
        ({"spectrogram_timeout_s": 0}, "s3.spectrogram_timeout_s"),
        ({"endpoint": "ftp://x"}, "s3"),
        ({"presign": True}, "s3.presign"),  # unknown keys are errors
    ],
)
def test_bad_s3_settings_are_named(extra: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        parse_config(config_data("sqlite://", s3={**S3, **extra}))
