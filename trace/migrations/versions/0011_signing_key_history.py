"""station and sensor key history: rotation and revocation

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
# The sensors table comes from 0004, another branch from 0001: it must exist first.
depends_on: str | Sequence[str] | None = "0004"


#: (key table, owner table, owner id column)
_HISTORIES = (("station_keys", "stations", "station_id"), ("sensor_keys", "sensors", "sensor_id"))


def upgrade() -> None:
    """Create the key tables and give every station and sensor its current key as the first
    entry of its history."""
    for table, owners, owner_id in _HISTORIES:
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column(owner_id, sa.String(length=64), nullable=False),
            sa.Column("public_key", sa.LargeBinary(length=32), nullable=False),
            sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
            sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
            sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
            sa.ForeignKeyConstraint([owner_id], [f"{owners}.{owner_id}"]),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index(f"ix_{table}_{owner_id}", table, [owner_id])
        op.execute(
            f"INSERT INTO {table} ({owner_id}, public_key, valid_from) "
            f"SELECT {owner_id}, public_key, created_at FROM {owners}"
        )


def downgrade() -> None:
    """Drop the key histories (each station and sensor keeps its newest key)."""
    for table, _owners, owner_id in _HISTORIES:
        op.drop_index(f"ix_{table}_{owner_id}", table_name=table)
        op.drop_table(table)
