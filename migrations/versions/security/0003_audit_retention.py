"""security: audit retention cuts (`sikkerby retention run` deletes audit entries past
their time, and only below a cut it records; verification starts from the latest cut).

Revision ID: security_0003
"""

from migrations.common import create_audit_cut, drop_audit_cut

revision = "security_0003"
down_revision = "security_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_cut()


def downgrade() -> None:
    drop_audit_cut()
