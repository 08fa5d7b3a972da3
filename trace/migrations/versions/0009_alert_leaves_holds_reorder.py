"""alerts on the ledger and on MQTT, quarantine holds, cold-chain limits, reorder plans

Revision ID: 0009
Revises: 0001
Create Date: 2026-12-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "0006"


def upgrade() -> None:
    """Alerts gain their leaf and publication time; holds, products' cold-chain limits and
    reorder plans get tables."""
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("leaf_index", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_unique_constraint("uq_alerts_leaf_index", ["leaf_index"])
    # alerts raised before this revision were pushed by webhooks only: not published again
    op.execute("UPDATE alerts SET published_at = created_at")
    op.create_table(
        "unit_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("serial", sa.String(length=20), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_unit_holds_unit", "unit_holds", ["gtin", "serial"])
    op.create_table(
        "reorder_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gln", sa.String(length=13), nullable=False),
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("computed_on", sa.Date(), nullable=False),
        sa.Column("history_days", sa.Integer(), nullable=False),
        sa.Column("lead_time_days", sa.Float(), nullable=False),
        sa.Column("review_period_days", sa.Float(), nullable=False),
        sa.Column("service_level", sa.Float(), nullable=False),
        sa.Column("mean_daily_use", sa.Float(), nullable=False),
        sa.Column("std_daily_use", sa.Float(), nullable=False),
        sa.Column("safety_stock", sa.Float(), nullable=False),
        sa.Column("reorder_point", sa.Float(), nullable=False),
        sa.Column("order_up_to", sa.Float(), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("usable_on_hand", sa.Float(), nullable=False),
        sa.Column("at_risk_of_expiry", sa.Float(), nullable=False),
        sa.Column("order_quantity", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gln", "gtin", "computed_on"),
    )
    op.create_index("ix_reorder_plans_gln", "reorder_plans", ["gln"])
    op.create_table(
        "product_cold_chain",
        sa.Column("gtin", sa.String(length=14), nullable=False),
        sa.Column("max_excursion_minutes", sa.Float(), nullable=True),
        sa.Column("excursion_budget_minutes", sa.Float(), nullable=True),
        sa.Column("freeze_c", sa.Float(), nullable=True),
        sa.Column("max_freeze_minutes", sa.Float(), nullable=True),
        sa.Column("mkt_limit_c", sa.Float(), nullable=True),
        sa.Column("mkt_window_hours", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("gtin"),
    )


def downgrade() -> None:
    """Drop what ``upgrade`` added."""
    op.drop_table("product_cold_chain")
    op.drop_table("reorder_plans")
    op.drop_table("unit_holds")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint("uq_alerts_leaf_index", type_="unique")
        batch.drop_column("published_at")
        batch.drop_column("leaf_index")
