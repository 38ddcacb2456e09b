"""gateway: the platform's tables and API clients.

Revision ID: gateway_0001
"""

import sqlalchemy as sa
from alembic import op

from migrations.common import create_platform_tables, drop_platform_tables

revision = "gateway_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables()
    op.create_table(
        "api_client",
        sa.Column("client_id", sa.String(100), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(40), nullable=False),
        sa.Column("provider_id", sa.String(36), nullable=True),
        sa.Column("scopes", sa.String(2000), nullable=False),
        sa.Column("secret_hash", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_api_client_created_at", "api_client", ["created_at"])


def downgrade() -> None:
    op.drop_table("api_client")
    drop_platform_tables()
