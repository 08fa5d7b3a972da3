"""One mapping from the errors of every part to what a person reads, and exit code 1.

Every ``medtrace`` command runs inside :class:`Commands`, the root command group: a command
raises the error of its part (the core's ``MedtraceError`` with its rule, a station's or a
sensor's client error with its diagnostics, a ledger error) and this module prints it once,
in one shape. ``medtrace --verbose`` shows the traceback instead.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from medtrace import terminal
from medtrace.errors import MedtraceError
from medtrace.iot.errors import IotError
from medtrace.ledger import LedgerError
from medtrace.scanners.errors import StationError

#: The errors a command may end with that are the user's to act on, not a bug's.
EXPECTED = (MedtraceError, StationError, IotError, LedgerError)


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
        except EXPECTED as exc:
            if terminal.verbose:
                raise
            terminal.err_console.print(explain(exc))
            raise typer.Exit(code=1) from exc
