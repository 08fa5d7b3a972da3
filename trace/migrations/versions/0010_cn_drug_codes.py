"""China drug identification codes mapped to products

Revision ID: 0010
Revises: 0001
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the table of drug identification codes and their GTINs."""
    op.create_table(
        "cn_drug_codes",
        sa.Column("drug_code", sa.String(length=7), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("drug_code"),
    )
    op.create_index("ix_cn_drug_codes_gtin", "cn_drug_codes", ["gtin"])
    op.create_index("ix_cn_drug_codes_participant_id", "cn_drug_codes", ["participant_id"])


def downgrade() -> None:
    """Drop it."""
    op.drop_table("cn_drug_codes")
