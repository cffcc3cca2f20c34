"""The upload engine's pure core (h11 style): no minio, SQLite, threads, clock or file I/O in here.

Everything in this package takes values in and gives values out; the adapters in
:mod:`edge_agent.transfer` do the I/O (S3, journal, threads, clock) around it.

- :mod:`.limits`     - ``Limits``, the knobs the controller's assignment sets
- :mod:`.partsize`   - part sizing (>= 5 MiB, <= 10,000 parts, part 1 small because it is held)
- :mod:`.splitter`   - object bytes in, numbered parts out (part 1 last)
- :mod:`.attempt`    - one file attempt's whole lifecycle: the next command out, each result in, the fault table
- :mod:`.commands`   - the attempt's commands and results (frozen dataclasses), faults and dispositions
- :mod:`.upload`     - the rules of one upload: settings, journal record, resume decision, the part ledger
- :mod:`.queue`      - the order files are taken in (smaller first, aging, failures move back)
- :mod:`.backoff`    - exponential backoff with full jitter
- :mod:`.bucket`     - the token bucket and the size of the chunks that pace the wire (clock passed in)
- :mod:`.linkrate`   - the link-rate estimator: acknowledged bytes over busy time, an EWMA (clock passed in)
- :mod:`.senderheld` - how much the CPU held the part senders back (run + run-queue share of their wire time)
- :mod:`.linkguard`  - what the measured rate decides: the thin-link guard, part deadlines, the backlog ETA
- :mod:`.windows`    - upload windows ("HH:MM-HH:MM" local time)
- :mod:`.events`     - what the engine reports (events, stats, run report)
"""

from edge_agent.engine.events import EngineEvent, EngineStats, FileResult, RunReport
from edge_agent.engine.limits import Limits, MiB

__all__ = ["EngineEvent", "EngineStats", "FileResult", "Limits", "MiB", "RunReport"]
