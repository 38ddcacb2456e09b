"""activation: caps, cohorts, placements, attendance, sanction cases, guidance, conversations

Revision ID: activation_0002
Revises: activation_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "activation_0002"
down_revision = "activation_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attendance_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("placement_id", sa.Uuid(), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("hours_tenths", sa.Integer(), nullable=True),
        sa.Column("late_report", sa.Boolean(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("reported_by", sa.String(200), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("placement_id", "day", "version", name="uq_attendance_version"),
    )
    with op.batch_alter_table("attendance_record", schema=None) as batch_op:
        batch_op.create_index("ix_attendance_citizen_day", ["citizen_id", "day"], unique=False)

    op.create_table(
        "cohort",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("contract_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("offer_type", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("max_size", sa.Integer(), nullable=False),
        sa.Column("location", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cohort", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cohort_contract_id"), ["contract_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_cohort_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_cohort_provider_id"), ["provider_id"], unique=False)

    op.create_table(
        "contract_seats",
        sa.Column("contract_id", sa.Uuid(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("contract_id"),
    )
    op.create_table(
        "conversation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=False),
        sa.Column("week", sa.String(8), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attended", sa.Boolean(), nullable=True),
        sa.Column("outcome_by", sa.String(200), nullable=True),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("booked_by", sa.String(200), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_citizen_id"), ["citizen_id"], unique=False
        )
        batch_op.create_index("ix_conversation_week", ["week", "citizen_id"], unique=False)

    op.create_table(
        "hours_cap",
        sa.Column("citizen_id", sa.Uuid(), nullable=False),
        sa.Column("weekly_tenths", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("citizen_id"),
    )
    op.create_table(
        "hours_cap_change",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=False),
        sa.Column("weekly_tenths", sa.Integer(), nullable=False),
        sa.Column("previous_tenths", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("set_by", sa.String(200), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("hours_cap_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_hours_cap_change_citizen_id"), ["citizen_id"], unique=False
        )

    op.create_table(
        "placement",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=False),
        sa.Column("contract_id", sa.Uuid(), nullable=False),
        sa.Column("provider_id", sa.Uuid(), nullable=False),
        sa.Column("cohort_id", sa.Uuid(), nullable=True),
        sa.Column("offer_type", sa.String(40), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("end_reason", sa.String(200), nullable=True),
        sa.Column("weekly_tenths", sa.Integer(), nullable=False),
        sa.Column("weekly_price_ore", sa.Integer(), nullable=False),
        sa.Column("absence_notice_given_on", sa.Date(), nullable=True),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("placement", schema=None) as batch_op:
        batch_op.create_index(
            "ix_placement_citizen_period", ["citizen_id", "starts_on"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_placement_cohort_id"), ["cohort_id"], unique=False)
        batch_op.create_index(
            "ix_placement_contract_period", ["contract_id", "starts_on"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_placement_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_placement_provider_id"), ["provider_id"], unique=False)

    op.create_table(
        "rights_guidance",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=False),
        sa.Column("given_on", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("given_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rights_guidance", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rights_guidance_citizen_id"), ["citizen_id"], unique=False
        )

    op.create_table(
        "sanction_case",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("citizen_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("decide_by", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attendance_placement_id", sa.Uuid(), nullable=True),
        sa.Column("conversation_id", sa.Uuid(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("hearing_sent_on", sa.Date(), nullable=True),
        sa.Column("hearing_respond_by", sa.Date(), nullable=True),
        sa.Column("hearing_by", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sanction_case", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sanction_case_citizen_id"), ["citizen_id"], unique=False
        )
        batch_op.create_index(
            "ix_sanction_case_status_decide_by", ["status", "decide_by"], unique=False
        )
        batch_op.create_index(
            "uq_sanction_case_absence",
            ["attendance_placement_id", "occurred_on"],
            unique=True,
            postgresql_where=sa.text(
                "status <> 'withdrawn' AND attendance_placement_id IS NOT NULL"
            ),
            sqlite_where=sa.text("status <> 'withdrawn' AND attendance_placement_id IS NOT NULL"),
        )

    op.create_table(
        "contact_attempt",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(40), nullable=False),
        sa.Column("reached", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["sanction_case.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("contact_attempt", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_contact_attempt_case_id"), ["case_id"], unique=False)

    op.create_table(
        "sanction_decision",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reasonable_excuse", sa.Boolean(), nullable=False),
        sa.Column("deduction_days", sa.Integer(), nullable=False),
        sa.Column("justification", sa.String(4000), nullable=False),
        sa.Column("replaces_id", sa.Uuid(), nullable=True),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["sanction_case.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("replaces_id"),
    )
    with op.batch_alter_table("sanction_decision", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sanction_decision_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sanction_decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sanction_decision_case_id"))

    op.drop_table("sanction_decision")
    with op.batch_alter_table("contact_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_attempt_case_id"))

    op.drop_table("contact_attempt")
    with op.batch_alter_table("sanction_case", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_sanction_case_absence",
            postgresql_where=sa.text(
                "status <> 'withdrawn' AND attendance_placement_id IS NOT NULL"
            ),
            sqlite_where=sa.text("status <> 'withdrawn' AND attendance_placement_id IS NOT NULL"),
        )
        batch_op.drop_index("ix_sanction_case_status_decide_by")
        batch_op.drop_index(batch_op.f("ix_sanction_case_citizen_id"))

    op.drop_table("sanction_case")
    with op.batch_alter_table("rights_guidance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rights_guidance_citizen_id"))

    op.drop_table("rights_guidance")
    with op.batch_alter_table("placement", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_placement_provider_id"))
        batch_op.drop_index(batch_op.f("ix_placement_created_at"))
        batch_op.drop_index("ix_placement_contract_period")
        batch_op.drop_index(batch_op.f("ix_placement_cohort_id"))
        batch_op.drop_index("ix_placement_citizen_period")

    op.drop_table("placement")
    with op.batch_alter_table("hours_cap_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_hours_cap_change_citizen_id"))

    op.drop_table("hours_cap_change")
    op.drop_table("hours_cap")
    with op.batch_alter_table("conversation", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_week")
        batch_op.drop_index(batch_op.f("ix_conversation_citizen_id"))

    op.drop_table("conversation")
    op.drop_table("contract_seats")
    with op.batch_alter_table("cohort", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cohort_provider_id"))
        batch_op.drop_index(batch_op.f("ix_cohort_created_at"))
        batch_op.drop_index(batch_op.f("ix_cohort_contract_id"))

    op.drop_table("cohort")
    with op.batch_alter_table("attendance_record", schema=None) as batch_op:
        batch_op.drop_index("ix_attendance_citizen_day")

    op.drop_table("attendance_record")
