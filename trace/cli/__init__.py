"""The ``medtrace`` command line (Typer + Rich): one module per command group.

Errors of every part are mapped once, in ``medtrace.cli.errors``, to a message saying what to
do next and exit code 1; ``--verbose`` shows the traceback instead. Each command's module is
imported only when the command is used (``medtrace.cli.lazy``): a station's ``medtrace scan``
does not load the server.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from medtrace import terminal
from medtrace.cli.errors import Commands
from medtrace.cli.lazy import Installer, LazyCommands


def _server(app: typer.Typer) -> None:
    from medtrace.cli import server

    server.install(app)  # medtrace serve, bridge, demo, db upgrade


def _recall(app: typer.Typer) -> None:
    from medtrace.cli import recall

    recall.install(app)


def _ledger(app: typer.Typer) -> None:
    from medtrace.cli import ledger

    ledger.install(app)  # medtrace audit, medtrace witness ...


def _participant(app: typer.Typer) -> None:
    from medtrace.cli.participants import participant_app

    app.add_typer(participant_app, name="participant")


def _station(app: typer.Typer) -> None:
    from medtrace.cli.devices import station_app

    app.add_typer(station_app, name="station")


def _alerts(app: typer.Typer) -> None:
    from medtrace.cli.alerts import app as alerts_app

    app.add_typer(alerts_app, name="alerts")


def _reorder(app: typer.Typer) -> None:
    from medtrace.cli.reorder import app as reorder_app

    app.add_typer(reorder_app, name="reorder")


def _sensor(app: typer.Typer) -> None:
    from medtrace.cli.devices import SENSOR_COMMANDS, add_key_commands
    from medtrace.iot.cli import install

    install(app, lambda sensors: add_key_commands(sensors, SENSOR_COMMANDS))


def _labels(app: typer.Typer) -> None:
    from medtrace.cli.labels import labels_app

    app.add_typer(labels_app, name="labels")


def _cn(app: typer.Typer) -> None:
    from medtrace.cli.cn import cn_app

    app.add_typer(cn_app, name="cn")


def _portal(app: typer.Typer) -> None:
    from medtrace.cli.portal import portal_app

    app.add_typer(portal_app, name="portal")


def _scan(app: typer.Typer) -> None:
    from medtrace.scanners.cli import install

    install(app)  # medtrace scan, scan status, scan send


#: Every top-level command and the installer that mounts it, in the order ``--help`` lists them.
COMMANDS: dict[str, Installer] = {
    "serve": _server,
    "bridge": _server,
    "demo": _server,
    "recall": _recall,
    "audit": _ledger,
    "db": _server,
    "participant": _participant,
    "station": _station,
    "alerts": _alerts,
    "reorder": _reorder,
    "sensor": _sensor,
    "labels": _labels,
    "cn": _cn,
    "portal": _portal,
    "witness": _ledger,
    "scan": _scan,
}


class Medtrace(Commands):
    """The root group: :data:`COMMANDS`, each imported when it is first looked up."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(COMMANDS, self.commands)


app = typer.Typer(
    name="medtrace",
    cls=Medtrace,
    help="Trace medicines and medical devices on a verifiable, append-only Merkle log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks and debug logs.")
    ] = False,
) -> None:
    """Settings come from MEDTRACE_* environment variables (see docs/deployment.md)."""
    terminal.verbose = verbose
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)
