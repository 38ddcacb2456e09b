"""The gateway's audit of every request it forwards, written in batches.

Writing one row per request inside the hot path would cost a database transaction per
request; instead entries queue in memory and are chained and inserted a few times a
second, in one transaction per batch. A crash can lose at most the last fraction of a
second of gateway entries; the services' own audit entries, written in the same
transaction as the data they describe, are not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from services.platform.audit import PendingEntry, write_entries

logger = logging.getLogger("sikkerby.gateway.audit")
MAX_QUEUED = 100_000


class AccessAudit:
    def __init__(self, engine: Engine, interval_seconds: float = 0.2) -> None:
        self._engine = engine
        self._interval = interval_seconds
        self._pending: list[PendingEntry] = []
        self._task: asyncio.Task[None] | None = None

    def record(self, *, actor: str, role: str, action: str, resource: str, outcome: str,
               request_id: str, citizen_id: uuid.UUID | None = None,
               purpose: str = "access") -> None:
        if len(self._pending) >= MAX_QUEUED:
            logger.error("audit queue full; the database is not keeping up")
            return
        self._pending.append(PendingEntry(
            at=datetime.now(UTC), actor=actor, role=role, action=action, resource=resource,
            citizen_id=citizen_id, purpose=purpose, outcome=outcome, request_id=request_id,
        ))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            await run_in_threadpool(self._write, batch)
        except SQLAlchemyError as exc:
            logger.error("audit batch not written, will retry: %s", type(exc).__name__)
            self._pending[:0] = batch

    def _write(self, batch: list[PendingEntry]) -> None:
        write_entries(self._engine, batch)
