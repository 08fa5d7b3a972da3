"""products, lot records and lot documents

Revision ID: 0007
Revises: 0001
Create Date: 2026-11-22

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the product and lot record tables."""
    op.create_table(
        "products",
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("name_en", sa.String(), nullable=False),
        sa.Column("name_zh", sa.String(), nullable=False),
        sa.Column("form", sa.String(), nullable=False),
        sa.Column("strength", sa.String(), nullable=False),
        sa.Column("storage_low_c", sa.Float(), nullable=True),
        sa.Column("storage_high_c", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("gtin"),
    )
    op.create_index("ix_products_participant_id", "products", ["participant_id"])
    op.create_table(
        "lot_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("lot", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("production_date", sa.Date(), nullable=False),
        sa.Column("expiry", sa.Date(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("leaf_index", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
        sa.UniqueConstraint("gtin", "lot", "version"),
    )
    op.create_index("ix_lot_records_lot", "lot_records", ["lot"])
    op.create_table(
        "lot_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lot_record_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["lot_record_id"], ["lot_records.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_lot_documents_lot_record_id", "lot_documents", ["lot_record_id"])
    op.create_index("ix_lot_documents_sha256", "lot_documents", ["sha256"])


def downgrade() -> None:
    """Drop them."""
    op.drop_table("lot_documents")
    op.drop_table("lot_records")
    op.drop_table("products")
