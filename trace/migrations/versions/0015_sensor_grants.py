"""sensor grants: another participant's sensors allowed at a place or with a shipment

Revision ID: 0015
Revises: 0004
Create Date: 2026-12-07

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the grants table. Bindings stored before it need no change: the temperature
    history judges every binding, old or new, by the same rule when it reads it."""
    op.create_table(
        "sensor_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grantor_id", sa.Integer(), nullable=False),
        sa.Column("grantee_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=18), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["grantor_id"], ["participants.id"]),
        sa.ForeignKeyConstraint(["grantee_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sensor_grants_grantor_id", "sensor_grants", ["grantor_id"])
    op.create_index("ix_sensor_grants_grantee_id", "sensor_grants", ["grantee_id"])
    op.create_index("ix_sensor_grants_target", "sensor_grants", ["kind", "target"])


def downgrade() -> None:
    """Drop the grants (bindings that needed one stop counting, as they should)."""
    op.drop_index("ix_sensor_grants_target", table_name="sensor_grants")
    op.drop_index("ix_sensor_grants_grantee_id", table_name="sensor_grants")
    op.drop_index("ix_sensor_grants_grantor_id", table_name="sensor_grants")
    op.drop_table("sensor_grants")
