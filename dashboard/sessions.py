"""Logged-in sessions held by the server: the cookie only names one, so logout and expiry take effect here.

A session id (random, from the signed cookie) maps to who logged in and when the session ends.
Logout revokes the id at once, so a cookie copied before the logout is worth nothing after it; the
absolute lifetime is enforced here, whatever the cookie claims. Each user keeps at most ``per_user``
sessions (the oldest goes first), so the table stays small. Pure: the time is passed in, ids come from
the caller. The dashboard runs as one process, so the table lives in its memory: a restart logs
everyone out.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class SessionRecord:
    user: str
    created: float
    expires: float


class SessionTable:
    def __init__(self, max_age_s: float, per_user: int = 20) -> None:
        self.max_age_s = max_age_s
        self.per_user = per_user
        self._records: OrderedDict[str, SessionRecord] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        return len(self._records)

    def create(self, sid: str, user: str, now: float) -> SessionRecord:
        self.purge(now)
        record = SessionRecord(user=user, created=now, expires=now + self.max_age_s)
        self._records.pop(sid, None)  # a reused id goes to the end: the table stays in creation order
        self._records[sid] = record
        mine = [key for key, r in self._records.items() if r.user == user]
        for key in mine[: max(0, len(mine) - self.per_user)]:
            del self._records[key]
        return record

    def get(self, sid: str, now: float) -> SessionRecord | None:
        record = self._records.get(sid)
        if record is not None and now >= record.expires:
            del self._records[sid]
            return None
        return record

    def revoke(self, sid: str) -> bool:
        return self._records.pop(sid, None) is not None

    def revoke_user(self, user: str) -> int:
        mine = [key for key, r in self._records.items() if r.user == user]
        for key in mine:
            del self._records[key]
        return len(mine)

    def purge(self, now: float) -> int:
        """Drop expired sessions (they are created in time order, so the expired ones lead)."""
        dropped = 0
        while self._records:
            key, record = next(iter(self._records.items()))
            if now < record.expires:
                break
            del self._records[key]
            dropped += 1
        return dropped
