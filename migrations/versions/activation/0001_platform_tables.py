"""activation: the platform's tables (audit chain, idempotency keys).

Revision ID: activation_0001
"""

from migrations.common import create_platform_tables, drop_platform_tables

revision = "activation_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_platform_tables()


def downgrade() -> None:
    drop_platform_tables()
