"""portal accounts with hashed passwords; recalls recorded on a participant's session

Revision ID: 0013
Revises: 0001
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0008"


def upgrade() -> None:
    """Create the portal accounts; a recall may have no station (a portal recall is
    authenticated by the participant's session, like token-captured events)."""
    op.create_table(
        "portal_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_index("ix_portal_users_participant_id", "portal_users", ["participant_id"])
    with op.batch_alter_table("recalls") as batch:
        batch.alter_column("station_id", existing_type=sa.String(length=64), nullable=True)


def downgrade() -> None:
    """Drop the accounts; refused while a recall without a station exists (it would be lost)."""
    portal_recalls = op.get_bind().execute(
        sa.text("SELECT count(*) FROM recalls WHERE station_id IS NULL")
    )
    if portal_recalls.scalar_one():
        raise RuntimeError("recalls recorded through the portal exist: cannot downgrade")
    with op.batch_alter_table("recalls") as batch:
        batch.alter_column("station_id", existing_type=sa.String(length=64), nullable=False)
    op.drop_table("portal_users")
