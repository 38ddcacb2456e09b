"""providers: contracts, the offer types they cover, and their extensions.

Revision ID: providers_0002
Revises: providers_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "providers_0002"
down_revision = "providers_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contract",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("provider_id", sa.Uuid(), sa.ForeignKey("provider.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("weekly_price_ore", sa.Integer(), nullable=False),
        sa.Column("max_threat_level", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("ends_on >= starts_on", name="ck_contract_period"),
        sa.CheckConstraint("capacity >= 1", name="ck_contract_capacity"),
        sa.CheckConstraint("weekly_price_ore >= 0", name="ck_contract_price"),
        sa.CheckConstraint("max_threat_level BETWEEN 0 AND 4",
                           name="ck_contract_threat_level"),
    )
    op.create_index("ix_contract_provider_id", "contract", ["provider_id"])
    op.create_index("ix_contract_ends_on", "contract", ["ends_on"])
    op.create_index("ix_contract_created_at", "contract", ["created_at"])

    op.create_table(
        "contract_offer_type",
        sa.Column("contract_id", sa.Uuid(), sa.ForeignKey("contract.id"), primary_key=True),
        sa.Column("offer_type", sa.String(40), primary_key=True),
    )

    op.create_table(
        "contract_extension",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("contract_id", sa.Uuid(), sa.ForeignKey("contract.id"), nullable=False),
        sa.Column("previous_ends_on", sa.Date(), nullable=False),
        sa.Column("new_ends_on", sa.Date(), nullable=False),
        sa.Column("extended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("extended_by", sa.String(200), nullable=False),
        sa.CheckConstraint("new_ends_on > previous_ends_on",
                           name="ck_contract_extension_later"),
    )
    op.create_index("ix_contract_extension_contract_id", "contract_extension",
                    ["contract_id"])


def downgrade() -> None:
    op.drop_table("contract_extension")
    op.drop_table("contract_offer_type")
    op.drop_table("contract")
