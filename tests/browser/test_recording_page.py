"""A recording's page in a real Chromium under the Content-Security-Policy: the player reaches a playable state
with the recording's duration (a FLAC object from the codec, a raw WAV, a float WAV stored as zstd and served
decompressed; in a real S3 server, played through the dashboard's range route), the spectrogram loads, and the
download link names the original file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgefleet.localservices import SeaweedS3
from tests.browser.conftest import RunningDashboard
from tests.browser.test_dashboard_browser import log_in
from tests.browser.test_dashboard_security import RECORD_VIOLATIONS, violations
from tests.corpus import write_wav
from tests.integration.dashboard.recordings import s3_section, store

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(180)]

SECONDS = 3.0
AUDIO_STATE = """() => {
  const a = document.querySelector('#player');
  return {ready: a.readyState, duration: a.duration, error: a.error && a.error.code};
}"""


# a 32-bit float WAV is stored as zstd (FLAC cannot hold it): the route serves it decompressed, the original WAV
@pytest.mark.parametrize(("level", "codec"), [(5, "flac"), (-1, "raw"), (5, "zstd")])
def test_the_recording_plays_and_shows_its_spectrogram(
    tmp_path: Path,
    s3_server: SeaweedS3,
    start_dashboard: Callable[..., RunningDashboard],
    browser_page: Any,
    level: int,
    codec: str,
) -> None:
    dashboard = start_dashboard(f"sqlite:///{tmp_path / 'controller.db'}", s3=s3_section(s3_server, tmp_path / "c"))
    sample = {"float32": True} if codec == "zstd" else {"bits": 16}
    wav = write_wav(tmp_path / "dawn chorus.wav", SECONDS, 44100, channels=2, seed=7, **sample)
    rec_id, key, _ = store(s3_server, dashboard.engine, wav, level)
    assert key.endswith({"flac": ".flac", "raw": ".wav", "zstd": ".zst"}[codec])
    page = browser_page
    page.add_init_script(RECORD_VIOLATIONS)
    log_in(page, dashboard.url, "vic")  # a viewer listens too

    page.goto(f"{dashboard.url}/recordings/{rec_id}")
    page.wait_for_function(
        "() => document.querySelector('#player').readyState >= 2 || document.querySelector('#player').error"
    )
    state = page.evaluate(AUDIO_STATE)
    assert state["error"] is None, state
    assert state["duration"] == pytest.approx(SECONDS, abs=0.05)
    page.wait_for_function("() => document.querySelector('#spectrogram').complete")
    assert page.evaluate("() => document.querySelector('#spectrogram').naturalWidth") > 0
    assert page.evaluate("() => document.querySelector('#spectrogram').naturalHeight") == 256

    # seeking asks for a byte range the route serves (206)
    page.evaluate(f"() => {{ document.querySelector('#player').currentTime = {SECONDS * 0.8}; }}")
    page.wait_for_function(
        "() => !document.querySelector('#player').seeking && document.querySelector('#player').readyState >= 2"
    )
    assert page.get_attribute("#download", "href").endswith(f"/recordings/{rec_id}/original")
    assert violations(page) == []
