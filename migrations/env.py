"""Alembic environment shared by every service; each service has its own version folder
(migrations/versions/<service>) and its own database. Run through `sikkerby migrate` or
`services.platform.migrate.upgrade`, which say which service and database."""

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
url = config.get_main_option("sqlalchemy.url")
connectable = create_engine(url, poolclass=pool.NullPool)

with connectable.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=config.attributes.get("target_metadata"),
        render_as_batch=connection.dialect.name == "sqlite",
        version_table="alembic_version",
    )
    with context.begin_transaction():
        context.run_migrations()
connectable.dispose()
