"""Apply each service's migrations to its own database (alembic, one folder each), as
the role that owns it, then grant the service's own role what it needs."""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, pool, text
from sqlmodel import SQLModel

import migrations
from migrations.common import application_role_grants

from .settings import ServiceName, Settings, check_migration, normalise_database_url

MIGRATIONS_DIR = Path(migrations.__file__).resolve().parent
PLATFORM_TABLES = ("audit_entry", "audit_cut", "idempotency_key")
MODEL_MODULES = {
    ServiceName.gateway: "gateway.models",
    ServiceName.citizens: "services.citizens.models",
    ServiceName.providers: "services.providers.models",
    ServiceName.activation: "services.activation.models",
    ServiceName.security: "services.security.models",
}


def service_metadata(service: ServiceName) -> MetaData:
    """The tables a service's database should hold, from its models."""
    module = importlib.import_module(MODEL_MODULES[service])
    importlib.import_module("services.platform.audit")
    importlib.import_module("services.platform.idempotency")
    own = {
        obj.__tablename__ for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, SQLModel) and hasattr(obj, "__table__")
        and obj.__module__ == module.__name__
    }
    metadata = MetaData()
    for name, table in SQLModel.metadata.tables.items():
        if name in own or name in PLATFORM_TABLES:
            table.to_metadata(metadata)
    return metadata


def alembic_config(service: ServiceName, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_locations", str(MIGRATIONS_DIR / "versions" / service.value))
    config.set_main_option("sqlalchemy.url", normalise_database_url(url).replace("%", "%%"))
    config.attributes["target_metadata"] = service_metadata(service)
    return config


def upgrade(service: ServiceName, url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(service, url), "head")


def grant_application_role(url: str, role: str) -> None:
    """PostgreSQL, as the owner: `application_role_grants(role)` on every table there
    is now. Grants cover existing tables only, so this follows every migration run."""
    engine = create_engine(normalise_database_url(url), poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            for statement in application_role_grants(role):
                connection.execute(text(statement))
    finally:
        engine.dispose()


def upgrade_all(settings: Settings) -> None:
    """Each database migrated as its owner (the migration URL, where one is given), and
    the service's role, where it is another, granted its privileges afresh."""
    check_migration(settings)
    for service in ServiceName:
        url = settings.migration_database_url(service)
        upgrade(service, url)
        role = settings.application_role(service)
        if role is not None:
            grant_application_role(url, role)
