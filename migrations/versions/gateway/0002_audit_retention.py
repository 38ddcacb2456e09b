"""gateway: audit retention cuts (`sikkerby retention run` deletes audit entries past
their time, and only below a cut it records; verification starts from the latest cut).

Revision ID: gateway_0002
"""

from migrations.common import create_audit_cut, drop_audit_cut

revision = "gateway_0002"
down_revision = "gateway_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_cut()


def downgrade() -> None:
    drop_audit_cut()
