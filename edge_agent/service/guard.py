"""The local guard: the controller's thermal steps, applied by the agent itself while it cannot hear the controller.

Contact means the broker link is up and the controller's retained state says ``online``. Once contact has been
lost for ``[local_guard] after_s`` seconds the guard is on: every host reading steps the shared thermal function
(``fleet_plan.thermal.step``, the controller's own, with the same hysteresis) and the agent runs its last
assignment as that level allows (``fleet_plan.thermal.throttle``: cheaper compression, fewer parallel uploads,
raw, paused). When contact is back the guard is off at once and the controller's assignment applies again; the
controller reacts to a hot reading as soon as it arrives, so its next assignment is its own thermal step.

No I/O and no clock: the agent service passes readings and its monotonic ``now`` in.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from edge_agent.service.config import LocalGuardSection
from fleet_plan.thermal import LEVEL_NAMES, NORMAL, Sample, ThermalState, step, throttle
from fleet_protocol.assignment import AssignmentSettings

log = logging.getLogger(__name__)


def _instant(now: float) -> datetime:
    """The monotonic clock as a datetime for the thermal step (which only ever subtracts two of them)."""
    return datetime.fromtimestamp(now, UTC)


class LocalGuard:
    def __init__(self, config: LocalGuardSection, now: float) -> None:
        self.config = config
        self.lost_since: float | None = now  # no contact yet at start
        self.active = False
        self.thermal = ThermalState()
        self.why = ""

    @property
    def level(self) -> int:
        return self.thermal.level if self.active else NORMAL

    def contact(self, in_contact: bool, now: float) -> bool:
        """Note whether the controller is in contact now; True when the guard turned on or off."""
        if in_contact:
            self.lost_since = None
            if not self.active:
                return False
            log.info("controller contact is back: following its assignment again (local guard off)")
            self.active, self.thermal, self.why = False, ThermalState(), ""
            return True
        if self.lost_since is None:
            self.lost_since = now
        if self.active or not self.config.enabled or now - self.lost_since < self.config.after_s:
            return False
        log.warning(
            "no controller contact for %.0f s: the local guard applies the thermal steps itself", now - self.lost_since
        )
        self.active = True
        return True

    def observe(self, sample: Sample, now: float) -> bool:
        """Step the thermal level from a reading (only while on); True when the level changed."""
        if not self.active:
            return False
        done = step(self.thermal, sample, self.config, _instant(now))
        before, self.thermal, self.why = self.thermal.level, done.state, done.why
        if done.level == before:
            return False
        log.warning("local guard: %s → %s (%s)", LEVEL_NAMES[before], LEVEL_NAMES[done.level], done.why)
        return True

    def apply(self, settings: AssignmentSettings) -> AssignmentSettings:
        """``settings`` as the guard's level allows (unchanged while off)."""
        return throttle(settings, self.level)
