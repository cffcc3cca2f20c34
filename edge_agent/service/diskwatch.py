"""When the spool disk is low: a threshold with hysteresis, so a reading that hovers around it is one event.

Pure: the agent feeds it the free bytes of each telemetry sample; it answers whether a ``disk_low`` event is due
now. Low starts when the free space drops below ``threshold`` and ends only when it is back at ``threshold +
hysteresis`` or above; an event is due once per start.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DiskWatch:
    threshold: int  # bytes; 0 = never low
    hysteresis: int  # bytes above the threshold before low ends
    low: bool = False

    def observe(self, free: int) -> bool:
        """Take a reading; True when it starts a low (the caller sends one ``disk_low`` event)."""
        if self.low:
            self.low = free < self.threshold + self.hysteresis
            return False
        self.low = free < self.threshold
        return self.low
