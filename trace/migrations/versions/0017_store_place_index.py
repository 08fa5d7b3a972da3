"""the places a participant stored at, indexed for binding its sensors there

Revision ID: 0017
Revises: 0003, 0015
Create Date: 2026-12-07

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = ("0003", "0015")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STORE = sa.text("type = 'store'")


def upgrade() -> None:
    """A partial index: only store events enter it, so capture of other events pays nothing."""
    op.create_index(
        "ix_events_store_place",
        "events",
        ["biz_location", "gln"],
        sqlite_where=_STORE,
        postgresql_where=_STORE,
    )


def downgrade() -> None:
    op.drop_index("ix_events_store_place", table_name="events")
