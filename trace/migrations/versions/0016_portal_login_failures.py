"""failed portal log-ins per account and client network, for the brute-force throttle

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-07

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the failure counts (empty: no one is throttled after the upgrade)."""
    op.create_table(
        "portal_login_failures",
        sa.Column("subject", sa.String(length=80), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject"),
    )


def downgrade() -> None:
    """Drop the failure counts."""
    op.drop_table("portal_login_failures")
