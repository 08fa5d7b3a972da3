"""Commands imported when they are used, not when ``medtrace`` starts.

Importing every command module costs about 5 s on a busy machine (FastAPI, SQLAlchemy, alembic,
reportlab and the API's routes), and every run of every command paid it: a scan station
started at the dock, a sensor, each CLI process the tests start. The root group's commands are
therefore a :class:`LazyCommands` mapping: a command's module is imported the first time the
command is looked up (to run it, to show its help, or to list every command in ``--help``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping

import typer
from typer import _click

#: Mounts one or more commands of a module on a Typer app (``install(app)``).
Installer = Callable[[typer.Typer], None]


class LazyCommands(MutableMapping[str, _click.Command]):
    """A group's commands by name; ``installers`` says which installer mounts each name (one
    installer may mount several), and names iterate in that order."""

    def __init__(
        self, installers: Mapping[str, Installer], loaded: Mapping[str, _click.Command]
    ) -> None:
        self._installers = installers
        self._loaded = dict(loaded)

    def __getitem__(self, name: str) -> _click.Command:
        if name not in self._loaded and name in self._installers:
            self._loaded.update(mounted(self._installers[name]))
        return self._loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in self._installers

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._installers, *self._loaded]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*self._installers, *self._loaded]))

    def __setitem__(self, name: str, command: _click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]


def mounted(installer: Installer) -> dict[str, _click.Command]:
    """The click commands ``installer`` mounts, by name."""
    part = typer.Typer()
    installer(part)
    return dict(typer.main.get_group(part).commands)
