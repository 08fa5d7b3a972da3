"""EPCIS events as captured: the document in the store, its digest in the ledger leaves

Revision ID: 0018_epcis
Revises: 0017
Create Date: 2026-12-07

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018_epcis"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the table (empty: events captured before it are answered from their leaves,
    one EPCIS event per medtrace event, as before)."""
    op.create_table(
        "epcis_events",
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index("ix_epcis_events_participant_id", "epcis_events", ["participant_id"])


def downgrade() -> None:
    """Drop the documents (their events stay, answered from their leaves)."""
    op.drop_index("ix_epcis_events_participant_id", table_name="epcis_events")
    op.drop_table("epcis_events")
