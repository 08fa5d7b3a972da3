"""The ``medtrace`` command line (Typer + Rich): one module per command group.

Errors of every part are mapped once, in ``medtrace.cli.errors``, to a message saying what to
do next and exit code 1; ``--verbose`` shows the traceback instead.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from medtrace import terminal
from medtrace.cli import ledger, recall, server
from medtrace.cli.alerts import app as alerts_app
from medtrace.cli.cn import cn_app
from medtrace.cli.errors import Commands
from medtrace.cli.labels import labels_app
from medtrace.cli.participants import participant_app
from medtrace.cli.portal import portal_app
from medtrace.cli.reorder import app as reorder_app
from medtrace.cli.stations import station_app
from medtrace.iot.cli import install as install_iot_cli
from medtrace.scanners.cli import install as install_scan_cli

app = typer.Typer(
    name="medtrace",
    cls=Commands,
    help="Trace medicines and medical devices on a verifiable, append-only Merkle log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
server.install(app)  # medtrace serve, bridge, demo, db upgrade
app.add_typer(participant_app, name="participant")
app.add_typer(station_app, name="station")
app.add_typer(alerts_app, name="alerts")
app.add_typer(reorder_app, name="reorder")
install_iot_cli(app)  # medtrace sensor ...
app.add_typer(labels_app, name="labels")
app.add_typer(cn_app, name="cn")
app.add_typer(portal_app, name="portal")
recall.install(app)  # medtrace recall
ledger.install(app)  # medtrace audit, medtrace witness ...
install_scan_cli(app)  # medtrace scan, scan status, scan send


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks and debug logs.")
    ] = False,
) -> None:
    """Settings come from MEDTRACE_* environment variables (see docs/deployment.md)."""
    terminal.verbose = verbose
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)
