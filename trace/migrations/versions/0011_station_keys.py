"""station key history: rotation and revocation

Revision ID: 0011
Revises: 0001
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``station_keys`` and give every station its current key as the first entry."""
    op.create_table(
        "station_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["station_id"], ["stations.station_id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_station_keys_station_id", "station_keys", ["station_id"])
    op.execute(
        "INSERT INTO station_keys (station_id, public_key, valid_from) "
        "SELECT station_id, public_key, created_at FROM stations"
    )


def downgrade() -> None:
    """Drop the key history (each station keeps its newest key)."""
    op.drop_index("ix_station_keys_station_id", table_name="station_keys")
    op.drop_table("station_keys")
