"""``medtrace reorder``: a pharmacy's reorder plans from its dispense history, in a table."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from medtrace.config import get_settings
from medtrace.db import create_db_engine, upgrade_schema
from medtrace.policies import planning_parameters
from medtrace.protocol.identifiers import parse_gln
from medtrace.services.reorder import plan_reorders
from medtrace.terminal import console

app = typer.Typer(help="Reorder plans from dispense history.", no_args_is_help=True)


@app.command("plan")
def plan(
    gln: Annotated[str, typer.Option(help="The pharmacy's GLN.")],
    lead_time: Annotated[float | None, typer.Option(help="Days a delivery takes.")] = None,
    review_period: Annotated[float | None, typer.Option(help="Days between orders.")] = None,
    service_level: Annotated[
        float | None, typer.Option(help="Chance of not running out, e.g. 0.95.")
    ] = None,
    history_days: Annotated[int | None, typer.Option(help="Days of dispense history.")] = None,
) -> None:
    """Print the pharmacy's plan for every product it dispensed or holds (defaults: settings)."""
    settings = get_settings()
    parameters = planning_parameters(settings).with_overrides(
        lead_time_days=lead_time,
        review_period_days=review_period,
        service_level=service_level,
        history_days=history_days,
    )
    engine = create_db_engine(settings.resolved_database_url)
    upgrade_schema(engine)
    with Session(engine) as session:
        plans = plan_reorders(
            session=session,
            gln=parse_gln(gln),
            today=dt.datetime.now(dt.UTC).date(),
            parameters=parameters,
        )
    table = Table(
        title=f"Reorder plan for {gln}: lead time {parameters.lead_time_days:g} d, review "
        f"every {parameters.review_period_days:g} d, service level {parameters.service_level:.0%}, "
        f"{parameters.history_days} days of history"
    )
    for column in ("GTIN", "product", "use/day", "on hand", "usable", "at risk", "reorder at"):
        table.add_column(column, justify="left" if column in ("GTIN", "product") else "right")
    table.add_column("order", justify="right", style="bold")
    for p in plans:
        table.add_row(
            p.gtin,
            p.product or "",
            f"{p.mean_daily_use:.2f}",
            str(p.on_hand),
            f"{p.usable_on_hand:.0f}",
            f"[red]{p.at_risk_of_expiry:.0f}[/]" if p.expiry_risk else "0",
            f"{p.reorder_point:.1f}",
            str(p.order_quantity),
        )
    console.print(table)
    if not plans:
        console.print("no dispense history and no stock: nothing to plan")
