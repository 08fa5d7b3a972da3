"""The terminal of medtrace's commands: one pair of consoles, and the output they share
(new key files, progress bars)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
import typer.rich_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from medtrace.protocol.keys import write_key_file

# Keys, URLs and rules must stay on one line to be copied or grepped: the terminal wraps them,
# not Rich (which, piped into a log, would cut them at 80 columns).
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

PIPED_HELP_WIDTH = 120
"""Columns ``--help`` is laid out in when it goes to a pipe or a file: wide enough that no
option's environment variable is cut."""

verbose = False
"""Set by ``medtrace --verbose``: errors then show their traceback instead of a message
(``medtrace.cli.errors``)."""


def fit_help_to_output() -> None:
    """Lay ``--help`` out for where it goes. In a terminal Rich fits the terminal's width;
    piped (into ``less``, ``grep``, a file) it would assume 80 columns and cut what does not
    fit, such as the longer environment variable names (``MEDTRACE_BRIDGE_SESSION_E…``), so
    there it takes ``PIPED_HELP_WIDTH`` columns, unless ``COLUMNS`` or ``TERMINAL_WIDTH``
    names a width."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS") or os.environ.get("TERMINAL_WIDTH"):
        return
    typer.rich_utils.MAX_WIDTH = PIPED_HELP_WIDTH


def create_key_file(path: Path) -> Ed25519PrivateKey:
    """Write a new Ed25519 key file (mode 0600), or exit 1 if one is there: a key is never
    overwritten, since whatever it signed would no longer verify."""
    try:
        key = write_key_file(path)
    except FileExistsError as exc:
        err_console.print(f"[red]error[/] {path} exists; a key is never overwritten")
        raise typer.Exit(code=1) from exc
    console.print(f"key file: {path}")
    return key


def progress_bar(label: str = "{task.description}") -> Progress:
    """A bar with a count and the time left, on stderr so that what a command prints on
    stdout (a report, a file name) stays clean to pipe; ``label`` names the work, or by
    default each task's own description."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
    )
