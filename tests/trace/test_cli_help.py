"""``--help`` piped into a pager or a file is whole: no option, default or environment
variable is cut to fit 80 columns."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer.rich_utils
from typer.main import get_command
from typer.testing import CliRunner

from medtrace.cli import app


# Typer vendors its own click: commands are told apart from groups by their ``commands``.
def command_paths(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command of the tree, as the words that name it."""
    yield path
    for name, command in getattr(group, "commands", {}).items():
        yield from command_paths(command, (*path, name))


def environment_variables(command: Any) -> list[str]:
    return [
        name
        for param in command.params
        for name in ([param.envvar] if isinstance(param.envvar, str) else param.envvar or [])
    ]


def test_every_commands_help_is_whole_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.delenv("TERMINAL_WIDTH", raising=False)
    monkeypatch.setattr(typer.rich_utils, "MAX_WIDTH", None)  # as a fresh process has it
    root = get_command(app)
    runner = CliRunner()
    paths = list(command_paths(root))
    assert len(paths) > 40  # the whole tree was walked, not only the root
    for path in paths:
        command = root
        for word in path:
            command = command.commands[word]
        shown = runner.invoke(app, [*path, "--help"])
        assert shown.exit_code == 0, (path, shown.output)
        assert "…" not in shown.output, f"medtrace {' '.join(path)} --help is cut:\n{shown.output}"
        for variable in environment_variables(command):
            assert variable in shown.output, (path, variable)
