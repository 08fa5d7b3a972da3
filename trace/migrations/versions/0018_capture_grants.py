"""capture grants: a participant lets another capture events at one of its GLNs

Revision ID: 0018
Revises: 0001
Create Date: 2026-12-07

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the grants table (empty: before it, every participant captured only at its own
    GLN, which needs no grant)."""
    op.create_table(
        "capture_grants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("grantor_id", sa.Integer(), nullable=False),
        sa.Column("grantee_id", sa.Integer(), nullable=False),
        sa.Column("gln", sa.String(length=13), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("granted_by", sa.String(length=80), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(["grantor_id"], ["participants.id"]),
        sa.ForeignKeyConstraint(["grantee_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_capture_grants_grantor_id", "capture_grants", ["grantor_id"])
    op.create_index("ix_capture_grants_grantee_gln", "capture_grants", ["grantee_id", "gln"])


def downgrade() -> None:
    """Drop the grants: every participant captures only at its own GLN again."""
    op.drop_index("ix_capture_grants_grantee_gln", table_name="capture_grants")
    op.drop_index("ix_capture_grants_grantor_id", table_name="capture_grants")
    op.drop_table("capture_grants")
