"""The ``medtrace`` command imports a command's module only when that command is used."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

from medtrace.cli import COMMANDS, app
from medtrace.cli.lazy import Installer, mounted

#: What a station's ``medtrace scan`` must not pay for at every start: the server's stack.
SERVER_ONLY = ("fastapi", "sqlalchemy", "alembic", "reportlab", "medtrace.api", "medtrace.ledger")

INSTALLERS = {installer.__name__: installer for installer in COMMANDS.values()}


@pytest.mark.parametrize("installer", list(INSTALLERS.values()), ids=list(INSTALLERS))
def test_the_table_names_exactly_what_each_installer_mounts(installer: Installer) -> None:
    named = {name for name, mounts in COMMANDS.items() if mounts is installer}
    assert set(mounted(installer)) == named


def test_every_command_is_listed_in_order_and_found_by_name() -> None:
    root: typer.core.TyperGroup = typer.main.get_group(app)
    assert list(root.commands) == list(COMMANDS)
    for name in COMMANDS:
        command = root.commands[name]
        assert name in root.commands and command.name == name


@pytest.mark.slow
def test_a_scan_station_starts_without_the_server() -> None:
    probe = (
        "import sys\n"
        "sys.argv = ['medtrace', 'scan', '--help']\n"
        "from medtrace.cli import app\n"
        "try:\n"
        "    app()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print('loaded:', sorted(m for m in sys.modules if m.startswith({SERVER_ONLY!r})))\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert "--ack-wait" in done.stdout  # the scan command's own help was shown
    assert done.stdout.splitlines()[-1] == "loaded: []"
