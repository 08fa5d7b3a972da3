"""``medtrace alerts``: run the alert rules and push alerts now, from the command line."""

from __future__ import annotations

import datetime as dt
import os
from contextlib import closing
from typing import Annotated

import typer
from sqlmodel import Session

from medtrace.config import get_settings
from medtrace.db import create_db_engine, upgrade_schema
from medtrace.policies import cold_chain_limits, delivery_policy, temperature_policy
from medtrace.services.alert_topic import MqttPublisher, publish_due
from medtrace.services.alerts import check_expiry
from medtrace.services.coldchain import check_cold_chain
from medtrace.services.webhooks import deliver_due
from medtrace.terminal import console

app = typer.Typer(help="Alerts: run the rules, deliver webhooks.", no_args_is_help=True)


@app.command("check")
def check(
    warn_days: Annotated[
        int | None, typer.Option(help="Warn this many days before expiry (default: settings).")
    ] = None,
) -> None:
    """Run the scheduled rules once (expiry, cold chain, sensor silence) and print the alerts
    they raised."""
    settings = get_settings()
    engine = create_db_engine(settings.resolved_database_url)
    upgrade_schema(engine)
    with Session(engine) as session:
        raised = check_expiry(
            session=session,
            today=dt.datetime.now(dt.UTC).date(),
            warn_days=settings.expiry.warn_days if warn_days is None else warn_days,
        )
        raised += check_cold_chain(
            session=session,
            now=dt.datetime.now(dt.UTC),
            default=temperature_policy(settings),
            limits=cold_chain_limits(settings),
        )
        for alert in raised:
            colour = "red" if alert.severity == "critical" else "yellow"
            console.print(f"[{colour}]{alert.severity}[/] {alert.rule}: {alert.message}")
    console.print(f"{len(raised)} new alert(s)")


@app.command("deliver")
def deliver() -> None:
    """Publish new alerts on the MQTT alert topic and send every webhook delivery that is due."""
    settings = get_settings()
    engine = create_db_engine(settings.resolved_database_url)
    publisher = MqttPublisher(
        settings.mqtt.host, settings.mqtt.port, client_id=f"medtrace-alerts-{os.getpid()}"
    )
    with closing(publisher):
        published = publish_due(engine=engine, publisher=publisher)
    report = deliver_due(engine=engine, policy=delivery_policy(settings))
    console.print(
        f"published {published} on MQTT; webhooks: delivered {report.delivered}, "
        f"retrying {report.retrying}, failed {report.failed}"
    )
