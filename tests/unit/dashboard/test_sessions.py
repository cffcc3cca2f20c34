from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.sessions import SessionTable


def test_create_get_revoke() -> None:
    table = SessionTable(max_age_s=100)
    record = table.create("s1", "olga", now=10)
    assert (record.user, record.created, record.expires) == ("olga", 10, 110)
    assert table.get("s1", 50) == record
    assert table.get("s2", 50) is None
    assert table.revoke("s1")
    assert not table.revoke("s1")
    assert table.get("s1", 50) is None


def test_expiry_is_absolute() -> None:
    table = SessionTable(max_age_s=100)
    table.create("s1", "olga", now=0)
    assert table.get("s1", 99.9) is not None  # being used does not extend it
    assert table.get("s1", 100) is None
    assert len(table) == 0


def test_each_user_keeps_the_newest_sessions() -> None:
    table = SessionTable(max_age_s=100, per_user=2)
    for i in range(4):
        table.create(f"o{i}", "olga", now=i)
    table.create("v0", "vic", now=5)
    assert [sid for sid in ("o0", "o1", "o2", "o3", "v0") if table.get(sid, 6)] == ["o2", "o3", "v0"]


def test_revoke_user_and_purge() -> None:
    table = SessionTable(max_age_s=10)
    table.create("a", "olga", now=0)
    table.create("b", "olga", now=5)
    table.create("c", "vic", now=5)
    assert table.revoke_user("olga") == 2
    assert table.purge(14) == 0
    assert table.purge(15) == 1
    assert len(table) == 0


ops = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.integers(0, 9), st.sampled_from(["olga", "vic", "ann"])),
        st.tuples(st.just("revoke"), st.integers(0, 9), st.none()),
        st.tuples(st.just("wait"), st.integers(0, 40), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=300)
@given(ops=ops, per_user=st.integers(1, 4))
def test_a_session_is_valid_exactly_until_expiry_revocation_or_eviction(
    ops: list[tuple[str, int, str | None]], per_user: int
) -> None:
    """Against a plain model: sid -> (user, created), newest ``per_user`` per user, ``max_age_s`` = 30."""
    table = SessionTable(max_age_s=30, per_user=per_user)
    model: dict[str, tuple[str, float]] = {}
    now = 0.0
    for op, n, user in ops:
        sid = f"s{n}"
        if op == "create" and user is not None:
            model = {key: v for key, v in model.items() if key != sid and now - v[1] < 30}
            model[sid] = (user, now)
            mine = [key for key, (u, _) in model.items() if u == user]  # in creation order
            for key in mine[: max(0, len(mine) - per_user)]:
                del model[key]
            table.create(sid, user, now)
        elif op == "revoke":
            table.revoke(sid)
            model.pop(sid, None)
        else:
            now += n
        for key in (f"s{i}" for i in range(10)):
            expected = model.get(key)
            record = table.get(key, now)
            if expected is None or now - expected[1] >= 30:
                assert record is None
            else:
                assert record is not None
                assert record.user == expected[0]
