"""``medtrace station|sensor keygen|register|rotate|revoke``: a signing device's Ed25519 keys.

Stations and sensors have the same key life (``medtrace.services.devices``), so one set of
commands serves both: ``add_key_commands`` mounts it on a group for a ``DeviceCommands``,
which names the kind, where its key files go and which client calls speak for it.
"""

# No ``from __future__ import annotations``: the commands are built per kind, and Typer reads
# their help from the annotations, which must hold the kind's words when they are defined.

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Generic, TypeVar

import typer

from medtrace.cli.options import TokenOption, UrlOption
from medtrace.config import get_settings
from medtrace.iot.cli import sensor_key_dir
from medtrace.iot.client import ReadingsClient
from medtrace.protocol.http import TokenClient
from medtrace.protocol.keys import b64, public_key_raw, read_key_file
from medtrace.scanners.client import CaptureClient
from medtrace.terminal import console, create_key_file

Client = TypeVar("Client", bound=TokenClient)


@dataclass(frozen=True)
class DeviceCommands(Generic[Client]):
    """One kind of device on the command line: its name, an example id, its key files, the
    client that speaks for it and that client's key calls, and the words of its help."""

    name: str
    example_id: str
    key_dir: Callable[[], Path]
    key_dir_help: str
    client: Callable[[str, str], Client]
    register: Callable[[Client, str, str], object]
    rotate: Callable[[Client, str, str], object]
    revoke: Callable[[Client, str, str | None], object]
    signed: str
    """What a rotated key still signs, e.g. "events stamped"."""
    lost: str
    """Why one revokes, e.g. "a lost or stolen station"."""


STATION_COMMANDS = DeviceCommands(
    name="station",
    example_id="dock-3",
    key_dir=lambda: get_settings().resolved_station_key_dir,
    key_dir_help="MEDTRACE_STATION_KEY_DIR/ID.pem",
    client=CaptureClient,
    register=CaptureClient.register_station,
    rotate=CaptureClient.rotate_station_key,
    revoke=CaptureClient.revoke_station_keys,
    signed="events stamped",
    lost="a lost or stolen station",
)
SENSOR_COMMANDS = DeviceCommands(
    name="sensor",
    example_id="fridge-3",
    key_dir=sensor_key_dir,
    key_dir_help="<key dir>/sensors/ID.pem",
    client=ReadingsClient,
    register=ReadingsClient.register_sensor,
    rotate=ReadingsClient.rotate_sensor_key,
    revoke=ReadingsClient.revoke_sensor_keys,
    signed="readings taken",
    lost="a lost or tampered logger",
)


def add_key_commands(app: typer.Typer, kind: DeviceCommands[Client]) -> None:
    """Add ``keygen``, ``register``, ``rotate`` and ``revoke`` for ``kind`` to ``app``."""
    name = kind.name
    id_argument = typer.Argument(metavar=f"{name}_id", help=f"The {name}'s id.")

    def keygen(
        device_id: Annotated[
            str,
            typer.Argument(metavar=f"{name}_id", help=f"The {name}'s id, e.g. {kind.example_id}."),
        ],
        out: Annotated[
            Path | None, typer.Option(help=f"Key file to write (default {kind.key_dir_help}).")
        ] = None,
    ) -> None:
        path = out or kind.key_dir() / f"{device_id}.pem"
        key = create_key_file(path)
        console.print(f"public key: [bold]{b64(public_key_raw(key))}[/]")

    def key_sender(
        send: Callable[[Client, str, str], object], key_help: str, done: str
    ) -> Callable[..., None]:
        """A command that sends the public key of a key file with ``send`` and prints
        ``done`` (formatted with the device's id and the key)."""

        def command(
            device_id: Annotated[str, id_argument],
            key_file: Annotated[Path, typer.Option(exists=True, dir_okay=False, help=key_help)],
            token: TokenOption,
            url: UrlOption = None,
        ) -> None:
            public_key = _public_key(key_file)
            _call(kind, url, token, lambda client: send(client, device_id, public_key))
            console.print(done.format(device_id=device_id, public_key=public_key))

        return command

    register = key_sender(
        kind.register, f"The {name}'s key file.", f"[green]registered[/] {name} {{device_id}}"
    )
    rotate = key_sender(
        kind.rotate,
        f"The {name}'s NEW key file.",
        f"[green]rotated[/] {name} {{device_id}} to {{public_key}}",
    )

    def revoke(
        device_id: Annotated[str, id_argument],
        token: TokenOption,
        public_key: Annotated[
            str | None, typer.Option(help="The key to revoke, base64 (default: every key).")
        ] = None,
        url: UrlOption = None,
    ) -> None:
        _call(kind, url, token, lambda client: kind.revoke(client, device_id, public_key))
        console.print(
            f"[green]revoked[/] {'that key' if public_key else 'every key'} of {device_id}"
        )

    app.command(
        "keygen",
        help=f"Create a {name}'s Ed25519 key file (mode 0600) and print the public key to "
        "register.",
    )(keygen)
    app.command(
        "register",
        help=f"Register a {name}'s public key with the service, for the token's participant.",
    )(register)
    app.command(
        "rotate",
        help=f"Register a {name}'s new key; the old one then signs only {kind.signed} before now.",
    )(rotate)
    app.command(
        "revoke",
        help=f"Revoke a {name}'s key ({kind.lost}): nothing it signs is accepted from now on, "
        f"whatever time it claims; `{name} rotate` gives it a new key.",
    )(revoke)


def _public_key(key_file: Path) -> str:
    """The public key of a key file, in base64 as the API takes it."""
    return b64(public_key_raw(read_key_file(key_file)))


def _call(
    kind: DeviceCommands[Client], url: str | None, token: str, call: Callable[[Client], object]
) -> None:
    """Make one call with the kind's client for the token's participant; a refusal reaches
    ``medtrace.cli.errors`` as the client's error, with the server's rule."""
    with kind.client(url or get_settings().public_url, token) as client:
        call(client)


station_app = typer.Typer(help="Scan stations and their Ed25519 keys.", no_args_is_help=True)
add_key_commands(station_app, STATION_COMMANDS)
