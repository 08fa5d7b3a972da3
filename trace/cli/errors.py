"""One mapping from the errors of every part to what a person reads, and exit code 1.

Every ``medtrace`` command runs inside :class:`Commands`, the root command group: a command
raises the error of its part (the core's ``MedtraceError`` with its rule, a station's or a
sensor's client error with its diagnostics, a ledger error) and this module prints it once,
in one shape. ``medtrace --verbose`` shows the traceback instead.
"""

from __future__ import annotations

from typing import Any

import typer
from typer import _click
from typer.core import TyperGroup

from medtrace import terminal
from medtrace.errors import MedtraceError
from medtrace.iot.errors import IotError
from medtrace.scanners.errors import StationError


def expected() -> tuple[type[Exception], ...]:
    """The errors a command may end with that are the user's to act on, not a bug's.

    The ledger's is imported here, on the error path: its package loads SQLAlchemy, which a
    station's ``medtrace scan`` never needs (and a command that raises it has loaded it)."""
    from medtrace.ledger import LedgerError

    return (MedtraceError, StationError, IotError, LedgerError)


def explain(exc: BaseException) -> str:
    """What a person reads for an expected error: the message and the rule, or the client's
    diagnostics (what happened and what to do next)."""
    if isinstance(exc, MedtraceError):
        return f"[red]error[/] {exc.message}\n[dim]rule: {exc.rule}[/]"
    if isinstance(exc, StationError | IotError):
        return f"[red]error[/] {exc.diagnostics()}"
    return f"[red]error[/] {exc}"


class Commands(TyperGroup):
    """The root command group: runs the chosen command and maps its expected errors."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        terminal.fit_help_to_output()
        return super().main(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, _click.ClickException):
            raise  # the command line's own flow (help, exit codes, usage), not an error of ours
        except Exception as exc:
            if terminal.verbose or not isinstance(exc, expected()):
                raise
            terminal.err_console.print(explain(exc))
            raise typer.Exit(code=1) from exc
