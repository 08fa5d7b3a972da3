"""``medtrace alerts``: run the alert rules and deliver webhooks now, from the command line."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import httpx
import typer
from sqlmodel import Session

from medtrace.config import get_settings
from medtrace.db import create_db_engine, upgrade_schema
from medtrace.services.alerts import check_expiry
from medtrace.services.webhooks import deliver_due
from medtrace.terminal import console

app = typer.Typer(help="Alerts: run the rules, deliver webhooks.", no_args_is_help=True)


@app.command("check")
def check(
    warn_days: Annotated[
        int | None, typer.Option(help="Warn this many days before expiry (default: settings).")
    ] = None,
) -> None:
    """Run the scheduled rules once (expiry) and print the alerts they raised."""
    settings = get_settings()
    engine = create_db_engine(settings.resolved_database_url)
    upgrade_schema(engine)
    with Session(engine) as session:
        raised = check_expiry(
            session=session,
            today=dt.datetime.now(dt.UTC).date(),
            warn_days=settings.expiry_warn_days if warn_days is None else warn_days,
        )
        for alert in raised:
            colour = "red" if alert.severity == "critical" else "yellow"
            console.print(f"[{colour}]{alert.severity}[/] {alert.rule}: {alert.message}")
    console.print(f"{len(raised)} new alert(s)")


@app.command("deliver")
def deliver() -> None:
    """Send every webhook delivery that is due."""
    settings = get_settings()
    engine = create_db_engine(settings.resolved_database_url)
    with httpx.Client(timeout=settings.webhook_timeout) as http:
        report = deliver_due(engine=engine, http=http, max_attempts=settings.webhook_max_attempts)
    console.print(
        f"delivered {report.delivered}, retrying {report.retrying}, failed {report.failed}"
    )
