"""Operator login: bcrypt password checks, login throttling, server-side sessions and per-session CSRF tokens.

The session cookie holds ``{"u": user name or "", "n": random nonce}`` signed with the configured
secret (itsdangerous, timestamped). Anonymous visitors get a session too (empty user, nothing kept on
the server), so the login form itself carries a CSRF token. A logged-in session's nonce is also its id
in the server's ``SessionTable``: a cookie whose id is not there (logged out, expired, the dashboard
restarted) is nobody's. The CSRF token is an HMAC of the nonce: bound to the session, never stored,
and a new nonce is issued at login and logout (no session fixation). Login attempts go through a
``LoginThrottle`` (per user name and per client address). Roles come from the configuration on every
request. Thread-safe: the routes run in a thread pool; the lock is never held across a bcrypt check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import bcrypt
from itsdangerous import BadSignature, URLSafeTimedSerializer

from dashboard.config import DashboardConfig, Role
from dashboard.sessions import SessionTable
from dashboard.throttle import BackoffPolicy, LoginThrottle, address_key

SESSION_COOKIE = "edgefleet_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
MIN_PASSWORD_LENGTH = 12
BCRYPT_MAX_BYTES = 72  # bcrypt reads no further; the bcrypt package refuses longer input
DEFAULT_ROUNDS = 12
_USER_KEY_MAX = 100  # throttle key; configured names are at most 64 characters


def hash_password(password: str, rounds: int = DEFAULT_ROUNDS) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(
            f"the password is too short ({len(password)} characters): use at least {MIN_PASSWORD_LENGTH}"
        )
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        raise ValueError(f"the password is too long: bcrypt uses at most {BCRYPT_MAX_BYTES} bytes of it")
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=rounds)).decode("ascii")


def bcrypt_rounds(password_hash: str) -> int:
    """The cost factor of a ``$2b$NN$…`` hash (the default when it cannot be read)."""
    cost = password_hash[4:6]
    return min(max(int(cost), 4), 31) if cost.isdigit() else DEFAULT_ROUNDS  # what bcrypt accepts


def check_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("ascii"))
    except ValueError:
        return False


@dataclass(frozen=True)
class User:
    name: str
    role: Role

    @property
    def can_change(self) -> bool:
        return self.role is Role.OPERATOR


@dataclass(frozen=True)
class Session:
    user: str  # "" = not logged in
    nonce: str

    @staticmethod
    def fresh(user: str = "") -> Session:
        return Session(user=user, nonce=secrets.token_urlsafe(18))


@dataclass(frozen=True)
class LoginOutcome:
    """``user`` when the password was right; ``retry_after_s`` > 0 when the attempt was refused unchecked."""

    user: User | None
    retry_after_s: float = 0.0


class Authenticator:
    """Everything about who is asking, given the configuration and a monotonic clock; no I/O."""

    def __init__(self, config: DashboardConfig, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._now = monotonic
        self._serializer = URLSafeTimedSerializer(config.secret_key, salt="edgefleet-session")
        self._csrf_key = hashlib.sha256(b"edgefleet-csrf:" + config.secret_key.encode("utf-8")).digest()
        # Checked for unknown names, at the cost of the configured hashes, so their timing gives nothing away
        # (made here, not at the first unknown name, whose answer would otherwise take longer).
        rounds = max((bcrypt_rounds(u.password_hash) for u in config.users), default=4)  # no users: nobody to find
        self._dummy_hash = bcrypt.hashpw(b"edgefleet-no-such-user", bcrypt.gensalt(rounds=rounds)).decode("ascii")
        self._lock = threading.Lock()
        self._sessions = SessionTable(config.session_max_age_s)
        self._throttle = LoginThrottle(
            per_user=BackoffPolicy(config.login_max_failures, config.login_backoff_base_s, config.login_backoff_max_s),
            per_address=BackoffPolicy(
                config.login_max_failures_per_address, config.login_backoff_base_s, config.login_backoff_max_s
            ),
        )

    @property
    def max_age_s(self) -> int:
        return self._config.session_max_age_s

    def check(self, name: str, password: str) -> User | None:
        """The password check alone (no throttling): one bcrypt check whether or not ``name`` exists."""
        entry = self._config.user(name)
        if entry is None:
            check_password(password, self._dummy_hash)
            return None
        if not check_password(password, entry.password_hash):
            return None
        return User(entry.name, entry.role)

    def login(self, name: str, password: str, address: str | None) -> LoginOutcome:
        """A throttled login attempt from the client ``address``; unknown names are throttled like known ones."""
        user_key, client_key = name[:_USER_KEY_MAX], address_key(address)
        with self._lock:
            wait = self._throttle.begin(user_key, client_key, self._now())
        if wait > 0:
            return LoginOutcome(None, wait)
        user = self.check(name, password)
        if user is not None:
            with self._lock:
                self._throttle.succeeded(user_key, client_key)
        return LoginOutcome(user)

    def start_session(self, user: User) -> Session:
        session = Session(user=user.name, nonce=secrets.token_urlsafe(32))
        with self._lock:
            self._sessions.create(session.nonce, user.name, self._now())
        return session

    def end_session(self, session: Session | None) -> None:
        """Logout: the session's id is forgotten, so its cookie is refused from now on."""
        if session is not None and session.user:
            with self._lock:
                self._sessions.revoke(session.nonce)

    def is_live(self, session: Session) -> bool:
        """An anonymous session always; a logged-in one while the server still holds it for that user."""
        if not session.user:
            return True
        with self._lock:
            record = self._sessions.get(session.nonce, self._now())
        return record is not None and record.user == session.user

    def dump(self, session: Session) -> str:
        return self._serializer.dumps({"u": session.user, "n": session.nonce})

    def load(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self._config.session_max_age_s)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), str) or not isinstance(data.get("n"), str):
            return None
        session = Session(user=data["u"], nonce=data["n"])
        return session if self.is_live(session) else None

    def user_of(self, session: Session | None) -> User | None:
        if session is None or not session.user:
            return None
        entry = self._config.user(session.user)
        return None if entry is None else User(entry.name, entry.role)

    def csrf_token(self, session: Session) -> str:
        return hmac.new(self._csrf_key, session.nonce.encode("ascii"), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: Session | None, token: str | None) -> bool:
        if session is None or not token:
            return False
        return hmac.compare_digest(self.csrf_token(session), token)
