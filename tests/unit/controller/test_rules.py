"""Pure rules: janitor (pagination against a tiny spec-following S3, stale rule) and the site split."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from controller.service.janitor import PendingUpload, list_pending, stale_uploads
from controller.store.instances import sites_for

NOW = datetime(2026, 6, 2, tzinfo=UTC)


@dataclass
class _Upload:
    object_name: str
    upload_id: str
    initiated_time: datetime | None


@dataclass
class _Page:
    uploads: list[_Upload]
    is_truncated: bool
    next_upload_id_marker: None = None  # minio 7.2 never fills it


@dataclass
class SpecS3:
    """Sorted by (key, upload id); markers exclusive, as S3 and MinIO do."""

    uploads: list[_Upload]
    calls: list[tuple[str | None, str | None]] = field(default_factory=list)

    def _list_multipart_uploads(self, bucket, prefix=None, key_marker=None, upload_id_marker=None, max_uploads=1000):
        self.calls.append((key_marker, upload_id_marker))
        ordered = sorted(
            (u for u in self.uploads if u.object_name.startswith(prefix or "")),
            key=lambda u: (u.object_name, u.upload_id),
        )
        if key_marker is not None:
            ordered = [u for u in ordered if (u.object_name, u.upload_id) > (key_marker, upload_id_marker or "")]
        return _Page(ordered[:max_uploads], len(ordered) > max_uploads)


def test_pagination_visits_every_upload_even_with_many_per_key() -> None:
    uploads = [_Upload(f"k/{k}", f"id-{k}-{n}", NOW) for k in "abc" for n in range(3)]
    s3 = SpecS3(uploads)
    listed = list(list_pending(s3, "bucket", page_size=2))
    assert sorted(u.upload_id for u in listed) == sorted(u.upload_id for u in uploads)
    assert len(s3.calls) == 5


def test_stale_rule() -> None:
    uploads = [
        PendingUpload("old", "1", NOW - timedelta(hours=25)),
        PendingUpload("old-active", "2", NOW - timedelta(hours=48)),
        PendingUpload("young", "3", NOW - timedelta(hours=23)),
        PendingUpload("unknown-age", "4", None),
    ]
    stale = stale_uploads(uploads, {"old-active"}, NOW, timedelta(hours=24))
    assert [u.key for u in stale] == ["old"]


@given(
    st.lists(st.text("abcdef", min_size=1, max_size=4), min_size=1, max_size=5, unique=True),
    st.sets(st.text("abcdefghij-", max_size=8), max_size=60),
)
def test_sites_are_dealt_to_exactly_one_live_controller(live: list[str], sites: set[str]) -> None:
    shares = [sites_for(member, live, sites) for member in live]
    assert set().union(*shares) == sites
    assert sum(len(share) for share in shares) == len(sites)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert sites_for(live[0], live, sites) == sites_for(live[0], list(reversed(live)), sites)
