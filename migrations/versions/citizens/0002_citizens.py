"""citizens: citizens with encrypted CPR, their change history, enrolment periods.

Revision ID: citizens_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "citizens_0002"
down_revision = "citizens_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "citizen",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("cpr_encrypted", sa.String(200), nullable=False),
        sa.Column("cpr_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("benefit", sa.String(40), nullable=False),
        sa.Column("readiness", sa.String(40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_citizen_created_at", "citizen", ["created_at"])
    op.create_table(
        "citizen_change",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("citizen_id", sa.Uuid(), sa.ForeignKey("citizen.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(40), nullable=False),
        sa.Column("old_value", sa.String(200), nullable=False),
        sa.Column("new_value", sa.String(200), nullable=False),
        sa.Column("changed_by", sa.String(200), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_citizen_change_citizen_id", "citizen_change", ["citizen_id"])
    op.create_table(
        "enrolment",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("citizen_id", sa.Uuid(), sa.ForeignKey("citizen.id"), nullable=False),
        sa.Column("enrolled_on", sa.Date(), nullable=False),
        sa.Column("referral_source", sa.String(40), nullable=False),
        sa.Column("exited_on", sa.Date(), nullable=True),
        sa.Column("exit_reason", sa.String(40), nullable=True),
        sa.Column("enrolled_by", sa.String(200), nullable=False),
        sa.Column("exited_by", sa.String(200), nullable=True),
        sa.Column("next_enrolled_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_enrolment_citizen_id", "enrolment", ["citizen_id"])
    op.create_index("ix_enrolment_enrolled_on_citizen", "enrolment",
                    ["enrolled_on", "citizen_id"])
    # At most one open enrolment per citizen, whatever the code does.
    op.create_index("uq_enrolment_one_open", "enrolment", ["citizen_id"], unique=True,
                    postgresql_where=sa.text("exited_on IS NULL"),
                    sqlite_where=sa.text("exited_on IS NULL"))


def downgrade() -> None:
    op.drop_table("enrolment")
    op.drop_table("citizen_change")
    op.drop_table("citizen")
