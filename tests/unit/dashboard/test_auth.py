from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.auth import Authenticator, Session, User, bcrypt_rounds, check_password, hash_password
from dashboard.config import Role, parse_config

OPERATOR_PW, VIEWER_PW = "operator-secret", "viewer-secret"
OPERATOR_HASH = hash_password(OPERATOR_PW, rounds=4)
VIEWER_HASH = hash_password(VIEWER_PW, rounds=4)
HERE = "192.0.2.10"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_auth(clock: FakeClock | None = None, **extra: object) -> Authenticator:
    config = parse_config(
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
    return Authenticator(config, clock or FakeClock())


def test_hash_is_bcrypt_and_checks() -> None:
    h = hash_password("correct horse", rounds=4)
    assert h.startswith("$2b$04$")
    assert bcrypt_rounds(h) == 4
    assert check_password("correct horse", h)
    assert not check_password("correct Horse", h)
    assert not check_password("correct horse", "not a hash")
    assert not check_password("x" * 100, h)  # longer than bcrypt reads: refused, not an exception


@pytest.mark.parametrize(
    ("password", "error"),
    [
        ("", "too short (0 characters): use at least 12"),
        ("a", "too short (1 characters)"),
        ("elevenchars", "too short (11 characters)"),
        ("ünïcödé-ñö", "too short (10 characters)"),  # characters, not bytes
        ("twelve chars", None),
        ("x" * 72, None),
        ("x" * 73, "too long"),
        ("é" * 37, "too long"),  # 74 bytes
    ],
)
def test_hash_password_length_rules(password: str, error: str | None) -> None:
    if error is None:
        assert check_password(password, hash_password(password, rounds=4))
    else:
        with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
            hash_password(password, rounds=4)


@pytest.mark.parametrize(
    ("name", "password", "role"),
    [
        ("olga", OPERATOR_PW, Role.OPERATOR),
        ("vic", VIEWER_PW, Role.VIEWER),
        ("olga", VIEWER_PW, None),
        ("nobody", OPERATOR_PW, None),
        ("", "", None),
        ("olga", "x" * 500, None),
    ],
)
def test_login(name: str, password: str, role: Role | None) -> None:
    outcome = make_auth().login(name, password, HERE)
    assert outcome.retry_after_s == 0
    assert (outcome.user.role if outcome.user else None) == role
    if outcome.user:
        assert outcome.user.can_change == (role is Role.OPERATOR)


@pytest.mark.parametrize(
    ("password_hash", "rounds"), [("$2b$04$" + "a" * 53, 4), ("$2b$12$x", 12), ("$2b$99$x", 31), ("$2b$xx$", 12)]
)
def test_bcrypt_rounds(password_hash: str, rounds: int) -> None:
    assert bcrypt_rounds(password_hash) == rounds


def test_unknown_names_cost_one_bcrypt_check_of_the_configured_cost() -> None:
    auth = make_auth()
    assert bcrypt_rounds(auth._dummy_hash) == bcrypt_rounds(OPERATOR_HASH) == 4
    no_users = Authenticator(parse_config({"database_url": "sqlite://", "secret_key": "k" * 32}))
    assert no_users.check("anyone", "whatever") is None


def test_failures_back_off_per_user_and_success_resets() -> None:
    clock = FakeClock()
    auth = make_auth(clock, login_max_failures=3, login_backoff_base_s=10, login_backoff_max_s=100)
    for _ in range(3):
        outcome = auth.login("olga", "wrong", HERE)
        assert (outcome.user, outcome.retry_after_s) == (None, 0)
    refused = auth.login("olga", OPERATOR_PW, "198.51.100.7")  # even the right password, from elsewhere
    assert refused.user is None
    assert refused.retry_after_s > 0
    assert auth.login("vic", VIEWER_PW, "198.51.100.7").user is not None  # other users are not affected
    clock.now += refused.retry_after_s
    assert auth.login("olga", OPERATOR_PW, HERE).user is not None
    assert auth.login("olga", "wrong", HERE).retry_after_s == 0  # the success reset olga's count


def test_unknown_names_are_throttled_like_known_ones() -> None:
    clock = FakeClock()
    auth = make_auth(clock, login_max_failures=2, login_backoff_base_s=5)
    answers = [auth.login(name, "wrong", f"192.0.2.{i}") for i, name in enumerate(["olga"] * 3 + ["nobody"] * 3)]
    assert [a.retry_after_s > 0 for a in answers] == [False, False, True] * 2
    assert answers[2].retry_after_s == answers[5].retry_after_s == 5


def test_one_address_guessing_many_names_is_throttled() -> None:
    auth = make_auth(FakeClock(), login_max_failures_per_address=4, login_backoff_base_s=30)
    answers = [auth.login(f"user{i}", "wrong", HERE) for i in range(5)]
    assert [a.retry_after_s for a in answers] == [0, 0, 0, 0, 30]
    assert auth.login("olga", OPERATOR_PW, HERE).retry_after_s == 30
    assert auth.login("olga", OPERATOR_PW, "192.0.2.11").user is not None


def test_session_round_trip_and_tampering() -> None:
    auth = make_auth()
    session = auth.start_session(User("olga", Role.OPERATOR))
    cookie = auth.dump(session)
    assert auth.load(cookie) == session
    assert auth.user_of(auth.load(cookie)) == User("olga", Role.OPERATOR)
    assert auth.load(cookie[:-2] + ("A" if cookie[-2] != "A" else "B") + cookie[-1]) is None
    assert auth.load("") is None
    assert auth.load(None) is None
    other = Authenticator(parse_config({"database_url": "sqlite://", "secret_key": "z" * 32}))
    assert other.load(cookie) is None  # signed with another key
    anonymous = Session.fresh()
    assert auth.load(auth.dump(anonymous)) == anonymous  # anonymous sessions need no server record


def test_logout_revokes_the_cookie_at_once() -> None:
    auth = make_auth()
    session = auth.start_session(User("olga", Role.OPERATOR))
    other = auth.start_session(User("olga", Role.OPERATOR))
    captured = auth.dump(session)
    auth.end_session(session)
    assert auth.load(captured) is None
    assert auth.load(auth.dump(other)) == other  # another browser of the same user stays logged in


def test_a_signed_cookie_without_a_server_session_is_nobody() -> None:
    auth = make_auth()
    forged = auth.dump(Session.fresh("olga"))  # right key (e.g. a restarted dashboard), no server record
    assert auth.load(forged) is None


def test_session_expires_on_the_server() -> None:
    clock = FakeClock()
    auth = make_auth(clock, session_max_age_s=60)
    cookie = auth.dump(auth.start_session(User("olga", Role.OPERATOR)))
    clock.now += 59
    assert auth.load(cookie) is not None
    clock.now += 1
    assert auth.load(cookie) is None


def test_cookie_signature_expires_too(monkeypatch: pytest.MonkeyPatch) -> None:
    auth = make_auth(session_max_age_s=60)
    cookie = auth.dump(Session.fresh())
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 61)  # itsdangerous reads time.time()
    assert auth.load(cookie) is None


def test_anonymous_or_removed_user_is_nobody() -> None:
    auth = make_auth()
    assert auth.user_of(Session.fresh()) is None
    assert auth.user_of(auth.start_session(User("mallory", Role.OPERATOR))) is None  # not configured
    assert auth.user_of(None) is None


AUTH = make_auth()


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
