"""Engines and the one dependency that owns a request's transaction.

Rules only `flush`; `transaction` commits when the route succeeds and rolls back when it
raises. SQLite runs in WAL mode with a busy timeout, and every writing transaction begins
with `BEGIN IMMEDIATE`, so writers queue instead of racing: the invariants that
PostgreSQL guards with row locks (hours caps, capacity) then hold on the embedded default
too. Reads (GET) take a deferred transaction, which in WAL mode never waits for a writer;
their audit entries are appended right after, in a short writing transaction of their
own, before the answer leaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event, text
from sqlmodel import Session

from .audit import flush_pending_audit, write_entries, write_refused_audit
from .settings import normalise_database_url


def make_engine(url: str, *, busy_timeout_ms: int = 10_000, pool_size: int = 10,
                writer: bool = True) -> Engine:
    """`writer=False` gives SQLite deferred (read) transactions; PostgreSQL ignores it."""
    url = normalise_database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy_timeout_ms / 1000},
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            # Let SQLAlchemy, not the driver, issue BEGIN (the documented pysqlite recipe).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        begin = "BEGIN IMMEDIATE" if writer else "BEGIN"

        @event.listens_for(engine, "begin")
        def _begin(connection) -> None:  # type: ignore[no-untyped-def]
            connection.exec_driver_sql(begin)

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def make_engines(url: str, *, busy_timeout_ms: int = 10_000) -> tuple[Engine, Engine]:
    """(writer, reader): two engines for SQLite, one shared for PostgreSQL."""
    writer = make_engine(url, busy_timeout_ms=busy_timeout_ms)
    if not normalise_database_url(url).startswith("sqlite"):
        return writer, writer
    return writer, make_engine(url, busy_timeout_ms=busy_timeout_ms, writer=False)


def is_postgresql(session_or_engine: Session | Engine) -> bool:
    bind = session_or_engine.get_bind() if isinstance(session_or_engine, Session) else (
        session_or_engine
    )
    return bind.dialect.name == "postgresql"


def check_database(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def new_session(engine: Engine) -> Session:
    # Objects stay readable after commit: responses are serialised before the commit.
    return Session(engine, expire_on_commit=False)


READ_METHODS = frozenset({"GET", "HEAD"})


def _transaction(request: Request) -> Iterator[Session]:
    read_only = request.method in READ_METHODS
    engine: Engine = request.app.state.read_engine if read_only else request.app.state.engine
    session = new_session(engine)
    try:
        yield session
        if read_only:
            pending = session.info.pop("audit_pending", [])
            session.commit()
            write_entries(request.app.state.engine, pending)
        else:
            flush_pending_audit(session)
            session.commit()
    except BaseException as exc:
        pending = session.info.pop("audit_pending", [])
        session.rollback()
        if pending:
            # A refusal is on record too, in its own transaction.
            write_refused_audit(request.app.state.engine, pending, exc)
        raise
    finally:
        session.close()


# scope="function": commit before the response is sent, so a failed commit is an error
# answer and never a 2xx for something that was not stored.
DbSession = Annotated[Session, Depends(_transaction, scope="function")]
