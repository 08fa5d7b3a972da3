"""``medtrace serve``, ``medtrace demo`` and ``medtrace db``: running medtrace."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from medtrace import terminal
from medtrace.cli.ledger import serve_witness
from medtrace.config import get_settings
from medtrace.iot.cli import relay_readings
from medtrace.logs import configure_logging
from medtrace.roles import ProcessRole, run_scheduler_role, run_sequencer
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
) -> None:
    """Run the whole chain on SQLite and print verify URLs, then serve until Ctrl-C.

    Registers a manufacturer, a distributor and a hospital pharmacy with their stations,
    commissions a lot, ships, receives, dispenses one pack, and waits for the signed checkpoint.
    """
    from medtrace.demo import run_demo

    folder = data_dir or Path(tempfile.mkdtemp(prefix="medtrace-demo-"))
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


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations to MEDTRACE_DATABASE_URL."""
    from medtrace.db import create_db_engine, upgrade_schema

    settings = get_settings()
    upgrade_schema(create_db_engine(settings.resolved_database_url))
    console.print("[green]schema is up to date[/]")


def install(app: typer.Typer) -> None:
    """Mount ``serve``, ``demo`` and ``db`` on the ``medtrace`` command."""
    app.command()(serve)
    app.command()(demo)
    app.add_typer(db_app, name="db")
