"""activation: audit retention cuts (`sikkerby retention run` deletes audit entries past
their time, and only below a cut it records; verification starts from the latest cut).

Revision ID: activation_0004
"""

from migrations.common import create_audit_cut, drop_audit_cut

revision = "activation_0004"
down_revision = "activation_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_cut()


def downgrade() -> None:
    drop_audit_cut()
