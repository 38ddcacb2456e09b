"""The audit tests' system: on PostgreSQL as deployed, every service connecting as an
application role that owns nothing, with exactly the grants of
`migrations.common.application_role_grants`; the tests tamper as the owner."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from sqlalchemy import Connection, text

from migrations.common import application_role_grants
from services.platform.db import make_engine
from services.platform.migrate import upgrade
from services.platform.settings import ServiceName

from ..conftest import BACKENDS, require_postgres
from ..support.postgres import PostgresCluster
from ..support.system import System, bearer


@contextmanager
def as_owner(audit_system: AuditSystem, service: ServiceName) -> Iterator[Connection]:
    """One transaction as the database's owner, the append-only triggers out of the way
    (PostgreSQL: as superuser, triggers off for this session; SQLite: dropped and put
    back as they were, in the same transaction)."""
    engine = make_engine(audit_system.owner_urls[service])
    try:
        with engine.begin() as connection:
            triggers: list[str] = []
            if connection.dialect.name == "postgresql":
                connection.execute(text("SET LOCAL session_replication_role = replica"))
            else:
                for name, sql in connection.execute(text(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                        "AND tbl_name = 'audit_entry'")):
                    connection.execute(text(f'DROP TRIGGER "{name}"'))
                    triggers.append(sql)
            yield connection
            for sql in triggers:
                connection.execute(text(sql))
    finally:
        engine.dispose()


@dataclass
class AuditSystem:
    system: System
    owner_urls: dict[ServiceName, str]  # the migrating owner (on SQLite: the same file)
    app_roles: dict[ServiceName, str]  # PostgreSQL only


def plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_application_role(owner_url: str, database: str) -> tuple[str, str, str]:
    """A login role with the deployment's grants on one migrated database.
    Returns (role, password, the role's URL)."""
    role = f"app_{database}"[:40]
    password = uuid.uuid4().hex
    with psycopg.connect(plain(owner_url), autocommit=True) as connection:
        connection.execute(
            f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}' NOSUPERUSER NOCREATEDB "
            "NOCREATEROLE NOINHERIT")
        connection.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"')
        for statement in application_role_grants(role):
            connection.execute(statement)
    head, _, tail = owner_url.partition("@")
    scheme = head.split("//")[0]
    return role, password, f"{scheme}//{role}:{password}@{tail}"


@pytest.fixture(scope="module", params=BACKENDS)
def audit_system(request: pytest.FixtureRequest, pg_cluster: PostgresCluster | None,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuditSystem]:
    data_dir = tmp_path_factory.mktemp(f"audit-{request.param}")
    owner_urls: dict[ServiceName, str] = {}
    app_urls: dict[ServiceName, str] = {}
    roles: dict[ServiceName, str] = {}
    if request.param == "postgresql":
        cluster = require_postgres(pg_cluster)
        for service in ServiceName:
            owner_urls[service] = cluster.create_database(service.value)
            upgrade(service, owner_urls[service])  # as the owner, like `sikkerby migrate`
            database = owner_urls[service].rsplit("/", 1)[1]
            roles[service], _, app_urls[service] = create_application_role(
                owner_urls[service], database)
    running = System(data_dir, app_urls or None).start()
    if not owner_urls:
        owner_urls = {service: running.settings.database_url(service) for service in ServiceName}
    yield AuditSystem(running, owner_urls, roles)
    running.stop()


@pytest.fixture(scope="module")
def system(audit_system: AuditSystem) -> System:
    return audit_system.system


@pytest.fixture(scope="module")
def http(system: System) -> Iterator[httpx.Client]:
    with system.http() as client:
        yield client


@pytest.fixture(scope="module")
def auditor(system: System) -> dict[str, str]:
    return bearer(system.token_for("auditor"))


@pytest.fixture(scope="module")
def caseworker(system: System) -> dict[str, str]:
    return bearer(system.token_for("caseworker"))
