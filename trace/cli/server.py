"""``medtrace serve``, ``medtrace bridge``, ``medtrace demo`` and ``medtrace db``: running
medtrace. The bridge is a server role (it writes readings through the capture API with the
server's settings), so its command lives here and not in the sensor client's command line."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from medtrace import terminal
from medtrace.cli.ledger import serve_witness
from medtrace.cli.options import UrlOption
from medtrace.config import Settings, get_settings
from medtrace.iot.bridge import SHARE_GROUP
from medtrace.iot.cli import HostOption, PortOption
from medtrace.logs import configure_logging
from medtrace.protocol.mqtt import MqttVersion
from medtrace.roles import ProcessRole, run_bridge, run_scheduler_role, run_sequencer
from medtrace.terminal import console, err_console

db_app = typer.Typer(help="The database schema.", no_args_is_help=True)


def serve(
    role: Annotated[
        ProcessRole, typer.Option(help="Which part of a deployment this process runs.")
    ] = ProcessRole.API,
    host: Annotated[str, typer.Option(help="Address to listen on (api, witness).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (api, witness).")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API worker processes on the one port (api). Python runs one request at a "
            "time per process: give each core a worker.",
        ),
    ] = 1,
) -> None:
    """Run one role of a deployment (see docker-compose.yml); every other option comes from
    the MEDTRACE_* settings.

    api: the HTTP API, verify pages and portal (plus the sequencer unless
    MEDTRACE_RUN_SEQUENCER=false). sequencer, scheduler: one leads, others stand by.
    bridge: MQTT readings into the capture API (MEDTRACE_BRIDGE_*). witness: cosigns the
    checkpoints of MEDTRACE_WITNESS_LOG_KEYS.
    """
    settings = get_settings()
    configure_logging(
        settings.log_format, level=logging.DEBUG if terminal.verbose else logging.INFO
    )
    if role is ProcessRole.API:
        from medtrace.api.serve import run_api

        run_api(settings, host=host, port=port, workers=workers)
    elif role is ProcessRole.SEQUENCER:
        run_sequencer(settings)
    elif role is ProcessRole.SCHEDULER:
        run_scheduler_role(settings)
    elif role is ProcessRole.BRIDGE:
        relay_readings(settings)
    else:
        serve_witness(settings, host=host, port=port)


def bridge(
    token: Annotated[
        str | None,
        typer.Option(
            envvar="MEDTRACE_TOKEN",
            help="The participant's API token (default MEDTRACE_BRIDGE_TOKEN).",
        ),
    ] = None,
    url: UrlOption = None,
    host: HostOption = None,
    port: PortOption = None,
    version: Annotated[
        MqttVersion | None,
        typer.Option(
            "--mqtt-version",
            help="5, or 3.1.1 for brokers without v5 (default MEDTRACE_MQTT_VERSION).",
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(
            help="Stable id: the broker keeps this bridge's session under it "
            "(default MEDTRACE_BRIDGE_CLIENT_ID)."
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            min=1, max=1000, help="Messages per commit (default MEDTRACE_BRIDGE_BATCH_SIZE)."
        ),
    ] = None,
    session_expiry: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Seconds the broker keeps the session while away "
            "(default MEDTRACE_BRIDGE_SESSION_EXPIRY).",
        ),
    ] = None,
    batch_wait: Annotated[
        float | None,
        typer.Option(
            min=0, help="Seconds a batch may wait to fill (default MEDTRACE_BRIDGE_BATCH_WAIT)."
        ),
    ] = None,
    share_group: Annotated[
        str | None,
        typer.Option(
            help=f"MQTT 5 shared-subscription group, e.g. {SHARE_GROUP}, so several bridges "
            "split the load (default MEDTRACE_BRIDGE_SHARE_GROUP, or a plain subscription, "
            "which survives broker restarts)."
        ),
    ] = None,
) -> None:
    """Relay MQTT readings into the capture API, acknowledging each batch once durable.

    The same as ``medtrace serve --role bridge``, with options over the settings.
    """
    settings = get_settings()
    mqtt = _given(host=host, port=port, version=version and version.value)
    bridge = _given(
        token=token,
        client_id=client_id,
        batch_size=batch_size,
        session_expiry=session_expiry,
        batch_wait=batch_wait,
        share_group=share_group,
    )
    settings = settings.model_copy(
        update={
            **_given(public_url=url),
            "mqtt": settings.mqtt.model_copy(update=mqtt),
            "bridge": settings.bridge.model_copy(update=bridge),
        }
    )
    relay_readings(settings)


def _given(**options: object) -> dict[str, object]:
    """The options given on the command line: those left out (None) keep the settings'."""
    return {name: value for name, value in options.items() if value is not None}


def relay_readings(settings: Settings) -> None:
    """Run the bridge role (``medtrace.roles.run_bridge``) and print what it relayed."""
    try:
        stats = run_bridge(settings)
    except ValueError as exc:
        err_console.print(f"[red]error[/] {exc}")
        raise typer.Exit(code=1) from exc
    console.print(
        f"relayed {stats.received} messages: {stats.accepted} accepted, "
        f"{stats.duplicates} duplicates, {stats.rejected} rejected"
    )


def demo(
    port: Annotated[int, typer.Option(help="Port to serve on (0 picks a free one).")] = 8000,
    units: Annotated[int, typer.Option(min=4, max=10_000, help="Units in the demo lot.")] = 24,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where to keep the demo's database and keys (default: a new temporary folder)."
        ),
    ] = None,
    exit_after: Annotated[
        bool, typer.Option("--exit", help="Stop after printing the URLs instead of serving.")
    ] = False,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            help="Keep the temporary folder on exit, to serve its data again with "
            "MEDTRACE_DATA_DIR (a --data-dir is always kept).",
        ),
    ] = False,
) -> None:
    """Run the whole chain on SQLite and print verify URLs, then serve until Ctrl-C.

    Registers a manufacturer, a distributor and a hospital pharmacy with their stations, and a
    regulator; commissions a lot, ships, receives, dispenses one pack; recalls a second lot and
    presents a copied code; waits for the signed checkpoint. Prints four verify URLs (genuine,
    dispensed, suspect, recalled), portal log-ins and API tokens.
    """
    from medtrace.demo import run_demo

    folder = data_dir or Path(tempfile.mkdtemp(prefix="medtrace-demo-"))
    temporary = data_dir is None and not keep
    try:
        run_demo(
            data_dir=folder,
            host="127.0.0.1",
            port=port,
            units=units,
            console=console,
            serve_forever=not exit_after,
        )
    except OSError as exc:
        if "Address already in use" in str(exc):
            err_console.print(f"[red]error[/] port {port} is in use; try --port 0")
            raise typer.Exit(code=1) from exc
        raise
    finally:
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
            console.print(f"removed {folder} (--keep keeps it)")
        else:
            console.print(f"the demo's data stays in {folder}")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations to MEDTRACE_DATABASE_URL."""
    from medtrace.db import create_db_engine, upgrade_schema

    settings = get_settings()
    upgrade_schema(create_db_engine(settings.resolved_database_url))
    console.print("[green]schema is up to date[/]")


def install(app: typer.Typer) -> None:
    """Mount ``serve``, ``bridge``, ``demo`` and ``db`` on the ``medtrace`` command."""
    app.command()(serve)
    app.command()(bridge)
    app.command()(demo)
    app.add_typer(db_app, name="db")
