"""What a failed write means: the database is away (retry; keep the messages for redelivery) or the data
does not fit (retrying cannot help; isolate the message that does not fit).

    Exception raised by a write
     ├── outage: retryable, the messages stay unacknowledged
     │    ├── sqlalchemy OperationalError   connection lost, server shut down, "database is locked",
     │    │                                 deadlock, disk full: the database, not the data
     │    ├── sqlalchemy InterfaceError, DisconnectionError, TimeoutError (connection pool exhausted)
     │    └── OSError                       the network under the driver
     └── anything else: a data error       DataError, IntegrityError, OverflowError (an int SQLite cannot
                                           hold), ValueError, a bug that one message's values trigger…

A data error is only taken at its word once the same database has accepted the message as a dead letter
(``controller.service.writer``): a database that cannot store that either is treated as away.
"""

from __future__ import annotations

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

OUTAGES: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeoutError,
    OSError,
)


def is_outage(exc: BaseException) -> bool:
    """True when ``exc`` says the database is unavailable (try again later), not that the data is bad."""
    return isinstance(exc, OUTAGES)
