"""Shared fixtures: the PostgreSQL cluster, the database backends, the running system."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.platform.settings import ServiceName

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
