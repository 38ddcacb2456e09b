"""providers: the platform's tables and providers.

Revision ID: providers_0001
"""

import sqlalchemy as sa
from alembic import op

from migrations.common import create_platform_tables, drop_platform_tables

revision = "providers_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables()
    op.create_table(
        "provider",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("cvr", sa.String(8), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_provider_created_at", "provider", ["created_at"])


def downgrade() -> None:
    op.drop_table("provider")
    drop_platform_tables()
