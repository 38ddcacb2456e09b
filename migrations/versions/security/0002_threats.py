"""security: threat subjects, assessments, affiliation conflicts and referrals.

Revision ID: security_0002
Revises: security_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "security_0002"
down_revision = "security_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "threat_subject",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("cpr_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("citizen_id", sa.Uuid(), nullable=True, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "threat_assessment",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("subject_id", sa.Uuid(), sa.ForeignKey("threat_subject.id"), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("measures", sa.String(300), nullable=False),
        sa.Column("affiliations_encrypted", sa.Text(), nullable=False),
        sa.Column("notes_encrypted", sa.Text(), nullable=True),
        sa.Column("received_by", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("level BETWEEN 0 AND 4", name="ck_threat_assessment_level"),
        sa.CheckConstraint("valid_until > valid_from", name="ck_threat_assessment_period"),
    )
    op.create_index("ix_threat_assessment_subject_received", "threat_assessment",
                    ["subject_id", "received_at"])
    op.create_index("ix_threat_assessment_received_at", "threat_assessment", ["received_at"])
    op.create_table(
        "affiliation_conflict",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("affiliation_a_hash", sa.String(64), nullable=False),
        sa.Column("affiliation_b_hash", sa.String(64), nullable=False),
        sa.Column("affiliation_a_encrypted", sa.String(300), nullable=False),
        sa.Column("affiliation_b_encrypted", sa.String(300), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("received_by", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("valid_until > valid_from", name="ck_affiliation_conflict_period"),
    )
    op.create_index("ix_affiliation_conflict_affiliation_a_hash", "affiliation_conflict",
                    ["affiliation_a_hash"])
    op.create_index("ix_affiliation_conflict_affiliation_b_hash", "affiliation_conflict",
                    ["affiliation_b_hash"])
    op.create_index("ix_affiliation_conflict_received_at", "affiliation_conflict",
                    ["received_at"])
    op.create_table(
        "referral",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("subject_id", sa.Uuid(), sa.ForeignKey("threat_subject.id"), nullable=False,
                  unique=True),
        sa.Column("cpr_encrypted", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_referral_status"),
    )
    op.create_index("ix_referral_status_created", "referral", ["status", "created_at"])


def downgrade() -> None:
    op.drop_table("referral")
    op.drop_table("affiliation_conflict")
    op.drop_table("threat_assessment")
    op.drop_table("threat_subject")
