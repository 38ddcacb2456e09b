"""The tests build every database by running the migrations; here we check that what the
migrations build is what the models describe, on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from services.platform.db import make_engine
from services.platform.migrate import service_metadata, upgrade
from services.platform.settings import ServiceName


@pytest.mark.parametrize("service", list(ServiceName))
def test_migrations_match_the_models(service: ServiceName, database_url: str) -> None:
    upgrade(service, database_url)
    upgrade(service, database_url)  # a second run is a no-op
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, service_metadata(service))
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert differences == []
    assert {"audit_entry", "idempotency_key", "alembic_version"} <= tables
