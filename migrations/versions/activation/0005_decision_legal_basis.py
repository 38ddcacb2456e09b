"""activation: a sanction decision records its legal basis (DOMAIN.md).

Revision ID: activation_0005
"""

import sqlalchemy as sa
from alembic import op

revision = "activation_0005"
down_revision = "activation_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sanction_decision") as batch:
        batch.add_column(sa.Column("legal_basis", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sanction_decision") as batch:
        batch.drop_column("legal_basis")
