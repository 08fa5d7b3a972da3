"""public verifications counted per unit, place and minute instead of one row per request

Revision ID: 0014
Revises: 0008
Create Date: 2026-12-02

"""

from collections import Counter
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_requests = sa.table(
    "public_verifications",
    sa.column("gtin", sa.String()),
    sa.column("serial", sa.String()),
    sa.column("place_hash", sa.String()),
    sa.column("verified_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    """Create the counts, carry every recorded request over into its minute, drop the rows."""
    counts = op.create_table(
        "public_verification_counts",
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place_hash", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("gtin", "serial", "minute", "place_hash"),
    )
    per_minute: Counter[tuple[str, str, object, str]] = Counter()
    for gtin, serial, place, at in op.get_bind().execute(sa.select(_requests)):
        per_minute[gtin, serial, at.replace(second=0, microsecond=0), place] += 1
    op.bulk_insert(
        counts,
        [
            {"gtin": g, "serial": s, "minute": m, "place_hash": p, "count": n}
            for (g, s, m, p), n in per_minute.items()
        ],
    )
    op.drop_table("public_verifications")


def downgrade() -> None:
    """Back to one row per request (each counted request becomes a row at its minute)."""
    op.create_table(
        "public_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.Column("place_hash", sa.String(length=64), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_public_verifications_unit", "public_verifications", ["gtin", "serial", "verified_at"]
    )
    counts = sa.table(
        "public_verification_counts",
        sa.column("gtin", sa.String()),
        sa.column("serial", sa.String()),
        sa.column("minute", sa.DateTime(timezone=True)),
        sa.column("place_hash", sa.String()),
        sa.column("count", sa.Integer()),
    )
    rows = op.get_bind().execute(sa.select(counts)).all()
    op.bulk_insert(
        _requests,
        [
            {"gtin": g, "serial": s, "place_hash": p, "verified_at": m}
            for g, s, m, p, n in rows
            for _ in range(n)
        ],
    )
    op.drop_table("public_verification_counts")
