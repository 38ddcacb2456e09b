"""Shared fixtures: the PostgreSQL cluster, the database backends, the running system."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.platform.settings import ServiceName

from .audit.logscan import LeakScan
from .support.postgres import PostgresCluster, find_bindir
from .support.system import System

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster | None]:
    bindir = find_bindir()
    if bindir is None:
        yield None
        return
    cluster = PostgresCluster(bindir)
    cluster.start()
    yield cluster
    cluster.destroy()


def require_postgres(cluster: PostgresCluster | None) -> PostgresCluster:
    if cluster is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed here")
    return cluster


def database_urls(backend: str, cluster: PostgresCluster | None) -> dict[ServiceName, str]:
    if backend == "sqlite":
        return {}
    cluster = require_postgres(cluster)
    return {service: cluster.create_database(service.value) for service in ServiceName}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module", params=BACKENDS)
def system(request: pytest.FixtureRequest, pg_cluster: PostgresCluster | None,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The whole system, once per test module and backend."""
    urls = database_urls(request.param, pg_cluster)
    running = System(tmp_path_factory.mktemp(f"system-{request.param}"), urls).start()
    yield running
    running.stop()


@pytest.fixture
def database_url(backend: str, pg_cluster: PostgresCluster | None, tmp_path) -> str:
    """An empty database of the backend under test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return require_postgres(pg_cluster).create_database("unit")


# The suite-wide leak scan (tests/audit/logscan.py): every log record of the session and
# every audit entry of every system the tests ran, searched for CPR numbers, bearer tokens
# and the tests' secrets. Anything found fails the session.
LEAK_SCAN = LeakScan()


def pytest_configure(config: pytest.Config) -> None:
    LEAK_SCAN.start()


@pytest.fixture(scope="session", autouse=True)
def _leak_scan_watches_systems() -> Iterator[None]:
    with LEAK_SCAN.watching_systems():
        yield


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if LEAK_SCAN.finish() and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    lines = LEAK_SCAN.summary()
    if not lines:
        return
    terminalreporter.section("leak scan", red=LEAK_SCAN.failed, green=not LEAK_SCAN.failed)
    for line in lines:
        terminalreporter.write_line(line)
