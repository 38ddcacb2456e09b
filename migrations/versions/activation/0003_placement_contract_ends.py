"""activation: an index for the seat check (placements of a contract that end on or after
a day), so it reads the placements that meet a period, not a contract's whole history.

Revision ID: activation_0003
"""

from alembic import op

revision = "activation_0003"
down_revision = "activation_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_placement_contract_ends", "placement", ["contract_id", "ends_on"])


def downgrade() -> None:
    op.drop_index("ix_placement_contract_ends", table_name="placement")
