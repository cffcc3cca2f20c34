from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.auth import Authenticator, Session, check_password, hash_password
from dashboard.config import Role, parse_config

OPERATOR_HASH = hash_password("op-secret", rounds=4)
VIEWER_HASH = hash_password("view-secret", rounds=4)


def make_auth(**extra: object) -> Authenticator:
    return Authenticator(
        parse_config(
            {
                "database_url": "sqlite://",
                "secret_key": "k" * 32,
                "users": [
                    {"name": "olga", "password_hash": OPERATOR_HASH, "role": "operator"},
                    {"name": "vic", "password_hash": VIEWER_HASH, "role": "viewer"},
                ],
                **extra,
            }
        )
    )


AUTH = make_auth()


def test_hash_is_bcrypt_and_checks() -> None:
    h = hash_password("pw", rounds=4)
    assert h.startswith("$2b$04$")
    assert check_password("pw", h)
    assert not check_password("pW", h)
    assert not check_password("pw", "not a hash")
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


@pytest.mark.parametrize(
    ("name", "password", "role"),
    [
        ("olga", "op-secret", Role.OPERATOR),
        ("vic", "view-secret", Role.VIEWER),
        ("olga", "view-secret", None),
        ("nobody", "op-secret", None),
        ("", "", None),
    ],
)
def test_login(name: str, password: str, role: Role | None) -> None:
    user = AUTH.login(name, password)
    assert (user.role if user else None) == role
    if user:
        assert user.can_change == (role is Role.OPERATOR)


def test_session_round_trip_and_tampering() -> None:
    session = Session.fresh("olga")
    cookie = AUTH.dump(session)
    assert AUTH.load(cookie) == session
    assert AUTH.user_of(AUTH.load(cookie)).name == "olga"  # type: ignore[union-attr]
    assert AUTH.load(cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]) is None
    assert AUTH.load("") is None
    assert AUTH.load(None) is None
    other = Authenticator(parse_config({"database_url": "sqlite://", "secret_key": "z" * 32}))
    assert other.load(cookie) is None  # signed with another key


def test_session_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = make_auth(session_max_age_s=60)
    cookie = auth.dump(Session.fresh("olga"))
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 61)  # itsdangerous reads time.time()
    assert auth.load(cookie) is None


def test_anonymous_or_removed_user_is_nobody() -> None:
    assert AUTH.user_of(Session.fresh()) is None
    assert AUTH.user_of(Session.fresh("mallory")) is None
    assert AUTH.user_of(None) is None


@settings(max_examples=50)
@given(a=st.text(min_size=1, max_size=30), b=st.text(min_size=1, max_size=30))
def test_csrf_token_is_bound_to_the_session(a: str, b: str) -> None:
    sa = Session(user="olga", nonce=a.encode().hex())
    sb = Session(user="olga", nonce=b.encode().hex())
    assert AUTH.csrf_ok(sa, AUTH.csrf_token(sa))
    assert AUTH.csrf_ok(sb, AUTH.csrf_token(sa)) == (a == b)
    assert not AUTH.csrf_ok(sa, "")
    assert not AUTH.csrf_ok(sa, None)
    assert not AUTH.csrf_ok(None, AUTH.csrf_token(sa))
