"""The bounds of the protocol's numbers (docs/protocol.md, "Bounds"), pydantic-free.

A message that passes ``decode`` can be stored (PostgreSQL INTEGER/BIGINT, SQLite INTEGER) and computed with
without an overflow anywhere downstream. The messages (``fleet_protocol.messages``) and the assignment value
(``fleet_protocol.assignment``) read their bounds from here.
"""

from __future__ import annotations

#: a PostgreSQL INTEGER column (the narrowest integer column a field is stored in)
MAX_INT32 = 2**31 - 1
#: the largest integer a double, and so every JSON reader, holds exactly; far inside BIGINT (2**63 - 1)
MAX_EXACT = 2**53
#: byte counts (about 9 PB) and byte rates
MAX_BYTES = MAX_EXACT
MAX_RATE_BPS = float(MAX_EXACT)
#: counters and sequence numbers
MAX_COUNT = MAX_EXACT
#: assignment versions: BIGINT. A version reported back in telemetry is bounded lower (``MAX_EXACT``), so the
#: controller's next version, one above what the agent reports, always fits.
MAX_VERSION = 2**63 - 1
#: durations and ages in seconds: a century
MAX_SECONDS = 100 * 365.25 * 86400
MAX_CORES = 1024
#: stored ÷ WAV bytes of a compressed recording (FLAC of pure noise is slightly larger than the WAV)
MAX_RATIO = 2.0
MAX_CPU_PERCENT = 100 * 1024
#: a measured latency (a round trip, a time to first byte) in seconds: an hour is already an outage
MAX_LATENCY_S = 3600.0
