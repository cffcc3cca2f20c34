"""From one evaluation to the next (pure): which alerts open, which resolve, which are due a repeated
notification; and the notification itself in Alertmanager's webhook format (version 4).

The evaluator reads the open alerts of its scopes from the store (``Open``), calls ``reconcile`` with what
fires now, and writes the ``Changes``. A notification is queued once when an alert opens, once when it
resolves, and again while it stays open every ``repeat_interval_s`` (0: never again).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from controller.alerting.rules import Firing

#: Alertmanager's ``endsAt`` of an alert that is still firing
ZERO_TIME = "0001-01-01T00:00:00Z"
RECEIVER = "edgefleet"


@dataclass(frozen=True, slots=True)
class Open:
    """An open alert as stored."""

    fingerprint: str
    scope: str
    started_at: datetime
    notified_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Changes:
    opened: list[Firing] = field(default_factory=list)
    #: fingerprints of open alerts (of the evaluated scopes) that no longer fire
    resolved: list[str] = field(default_factory=list)
    #: fingerprints of open alerts still firing whose repeat notification is due
    repeat: list[str] = field(default_factory=list)


def reconcile(
    open_alerts: Mapping[str, Open],
    firing: Sequence[Firing],
    scopes: Collection[str],
    now: datetime,
    repeat_interval_s: float,
) -> Changes:
    """``open_alerts`` by fingerprint; only alerts of ``scopes`` are resolved (another controller evaluates the
    rest). A fingerprint firing twice in ``firing`` opens once."""
    now_firing = {f.fingerprint: f for f in firing}
    opened = [f for fp, f in now_firing.items() if fp not in open_alerts]
    resolved = [fp for fp, a in open_alerts.items() if a.scope in scopes and fp not in now_firing]
    repeat = [
        fp
        for fp, a in open_alerts.items()
        if fp in now_firing and repeat_interval_s > 0 and _due(a.notified_at or a.started_at, now, repeat_interval_s)
    ]
    return Changes(opened, sorted(resolved), sorted(repeat))


def _due(last: datetime, now: datetime, interval_s: float) -> bool:
    return (now - last).total_seconds() >= interval_s


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class AlertInstance:
    """What a notification tells of one alert."""

    fingerprint: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    started_at: datetime
    resolved_at: datetime | None = None
    generator_url: str = ""


def group_key(labels: Mapping[str, str]) -> str:
    """One group per alert instance, written the way Alertmanager writes its group keys."""
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return "{}:{" + inner + "}"


def webhook_payload(alert: AlertInstance, *, external_url: str = "") -> dict[str, Any]:
    """The body Alertmanager's webhook receiver would POST for a group of this one alert (version 4)."""
    status = "resolved" if alert.resolved_at is not None else "firing"
    labels = dict(alert.labels)
    annotations = dict(alert.annotations)
    return {
        "version": "4",
        "groupKey": group_key(labels),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": RECEIVER,
        "groupLabels": labels,
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [
            {
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(alert.started_at),
                "endsAt": ZERO_TIME if alert.resolved_at is None else rfc3339(alert.resolved_at),
                "generatorURL": alert.generator_url,
                "fingerprint": alert.fingerprint,
            }
        ],
    }


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_s: float = 5.0
    max_s: float = 600.0
    #: a notification not delivered this long after it was queued is given up (logged, kept as given up)
    give_up_after_s: float = 86_400.0

    def delay(self, attempts: int) -> float:
        """Wait after the ``attempts``-th failed attempt (1, 2, …): doubling from ``first_s`` up to ``max_s``."""
        return min(self.max_s, self.first_s * 2.0 ** min(max(0, attempts - 1), 32))
