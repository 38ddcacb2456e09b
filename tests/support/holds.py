"""Holding concurrent placements inside their race window, with real database locks.

A placement reads what it must not break (the cohort's members, the citizen's hours, the
contract's seats), asks the security service for its group check, and only then inserts.
Requests that merely start at the same moment rarely overlap in that window. Here the
security service's answers are held until every request is either waiting for one (it has
read, and not yet inserted) or queued behind another request's row lock; then all answers
go out at once. With the row locks, one request waits for its answer and the others for
its locks; without them, all read the same state and all get in, in every run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from sqlalchemy import make_url, text

from services.platform.db import is_postgresql, make_engine
from services.platform.settings import ServiceName
from services.security.models import ThreatAssessment

from .system import System

# Well within the services' 10 s upstream timeout: the first request is waiting meanwhile.
GATHER_SECONDS = 8.0


@contextlib.contextmanager
def group_checks_held(system: System) -> Iterator[Callable[[int], None]]:
    """On PostgreSQL the security service answers no group check until the function
    yielded here, called with n, has seen n requests wait on a lock (in the security
    database for an answer, or in the activation database behind a row lock); the
    answers go out when the block ends.

    A transaction of the test holds an exclusive lock on the table every group check
    reads first. On SQLite a placement's writing transaction (BEGIN IMMEDIATE) is its
    lock: placements queue for it as a whole, no two are ever inside the window, and
    nothing is held; the function returns at once."""
    security = make_engine(system.settings.database_url(ServiceName.security))
    if not is_postgresql(security):
        security.dispose()
        yield lambda n: None
        return
    databases = [make_url(system.settings.database_url(s)).database
                 for s in (ServiceName.security, ServiceName.activation)]

    def all_waiting(n: int) -> None:
        deadline = time.monotonic() + GATHER_SECONDS
        with security.connect().execution_options(isolation_level="AUTOCOMMIT") as watch:
            while True:
                waiting = watch.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND backend_type = 'client backend' AND datname = ANY(:databases)"),
                    {"databases": databases}).scalar_one()
                if waiting >= n:
                    return
                assert time.monotonic() < deadline, f"only {waiting} of {n} requests waiting"
                time.sleep(0.01)

    try:
        with security.connect() as holder:
            holder.execute(text(f"LOCK TABLE {ThreatAssessment.__tablename__} "
                                "IN ACCESS EXCLUSIVE MODE"))
            try:
                yield all_waiting
            finally:
                holder.rollback()  # the answers go out
    finally:
        security.dispose()
