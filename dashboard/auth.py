"""Operator login: bcrypt password checks, a signed session cookie and per-session CSRF tokens.

The session cookie holds ``{"u": user name or "", "n": random nonce}`` signed with the configured
secret (itsdangerous, timestamped, so it expires). Anonymous visitors get a session too (empty user),
so the login form itself carries a CSRF token. The CSRF token is an HMAC of the nonce: it is bound
to the session, never stored, and a new nonce is issued at login and logout (no session fixation).
Roles come from the configuration on every request, so removing a user or demoting one takes
effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import bcrypt
from itsdangerous import BadSignature, URLSafeTimedSerializer

from dashboard.config import DashboardConfig, Role

SESSION_COOKIE = "edgefleet_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
# Hashed once so that a login with an unknown name costs as much as one with a wrong password.
_DUMMY_HASH = bcrypt.hashpw(b"edgefleet-no-such-user", bcrypt.gensalt(rounds=4))


def hash_password(password: str, rounds: int = 12) -> str:
    if not password:
        raise ValueError("empty password")
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=rounds)).decode("ascii")


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


class Authenticator:
    """Everything about who is asking, given the configuration; no I/O."""

    def __init__(self, config: DashboardConfig) -> None:
        self._config = config
        self._serializer = URLSafeTimedSerializer(config.secret_key, salt="edgefleet-session")
        self._csrf_key = hashlib.sha256(b"edgefleet-csrf:" + config.secret_key.encode("utf-8")).digest()

    @property
    def max_age_s(self) -> int:
        return self._config.session_max_age_s

    def login(self, name: str, password: str) -> User | None:
        entry = self._config.user(name)
        if entry is None:
            check_password(password, _DUMMY_HASH.decode("ascii"))
            return None
        if not check_password(password, entry.password_hash):
            return None
        return User(entry.name, entry.role)

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
        return Session(user=data["u"], nonce=data["n"])

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
