"""Is this client revoked? Asked on every request, answered from a short cache.

The gateway that revokes a client drops it from its cache at once, so revocation takes
effect on the next request. Other replicas notice within `revocation_cache_seconds`.
"""

from __future__ import annotations

import time

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from services.platform.db import new_session

from .logic import client_is_revoked


class RevocationCache:
    def __init__(self, engine: Engine, ttl_seconds: float) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._known: dict[str, tuple[bool, float]] = {}

    async def is_revoked(self, client_id: str) -> bool:
        now = time.monotonic()
        known = self._known.get(client_id)
        if known is not None and now - known[1] < self._ttl:
            return known[0]
        revoked = await run_in_threadpool(self._ask_database, client_id)
        if len(self._known) > 100_000:
            self._known.clear()
        self._known[client_id] = (revoked, now)
        return revoked

    def mark_revoked(self, client_id: str) -> None:
        self._known[client_id] = (True, time.monotonic())

    def _ask_database(self, client_id: str) -> bool:
        with new_session(self._engine) as session:
            return client_is_revoked(session, client_id)
