"""``medtrace station``: scan stations and their Ed25519 keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from medtrace.cli.options import TokenOption, UrlOption
from medtrace.config import get_settings
from medtrace.protocol.keys import b64, public_key_raw
from medtrace.terminal import console, create_key_file

if TYPE_CHECKING:
    from medtrace.scanners.client import CaptureClient

station_app = typer.Typer(help="Scan stations and their Ed25519 keys.", no_args_is_help=True)


@station_app.command("keygen")
def station_keygen(
    station_id: Annotated[str, typer.Argument(help="The station's id, e.g. dock-3.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Key file to write (default MEDTRACE_STATION_KEY_DIR/ID.pem)."),
    ] = None,
) -> None:
    """Create a station's Ed25519 key file (mode 0600) and print the public key to register."""
    path = out or get_settings().resolved_station_key_dir / f"{station_id}.pem"
    key = create_key_file(path)
    console.print(f"public key: [bold]{b64(public_key_raw(key))}[/]")


@station_app.command("register")
def station_register(
    station_id: Annotated[str, typer.Argument(help="The station's id.")],
    key_file: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="The station's key file.")
    ],
    token: TokenOption,
    url: UrlOption = None,
) -> None:
    """Register a station's public key with the service, for the token's participant."""
    _send_station_key(key_file, token, url, lambda c, key: c.register_station(station_id, key))
    console.print(f"[green]registered[/] station {station_id}")


@station_app.command("rotate")
def station_rotate(
    station_id: Annotated[str, typer.Argument(help="The station's id.")],
    key_file: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="The station's NEW key file.")
    ],
    token: TokenOption,
    url: UrlOption = None,
) -> None:
    """Register a station's new key; the old one then signs only events stamped before now."""
    key = _send_station_key(
        key_file, token, url, lambda c, key: c.rotate_station_key(station_id, key)
    )
    console.print(f"[green]rotated[/] station {station_id} to {key}")


def _send_station_key(
    key_file: Path,
    token: str,
    url: str | None,
    send: Callable[[CaptureClient, str], object],
) -> str:
    """Send the public key of ``key_file`` (base64) with ``send``; exit 1 with the server's
    reason if it is refused. Returns the key sent."""
    from medtrace.protocol.keys import read_key_file
    from medtrace.scanners.client import CaptureClient

    public_key = b64(public_key_raw(read_key_file(key_file)))
    with CaptureClient(url or get_settings().public_url, token) as client:
        send(client, public_key)
    return public_key


@station_app.command("revoke")
def station_revoke(
    station_id: Annotated[str, typer.Argument(help="The station's id.")],
    token: TokenOption,
    public_key: Annotated[
        str | None, typer.Option(help="The key to revoke, base64 (default: every key).")
    ] = None,
    url: UrlOption = None,
) -> None:
    """Revoke a station's key (a lost or stolen station): nothing it signed is accepted from
    now on, whatever time it claims; `station rotate` gives the station a new key."""
    from medtrace.scanners.client import CaptureClient

    with CaptureClient(url or get_settings().public_url, token) as client:
        client.revoke_station_keys(station_id, public_key)
    console.print(f"[green]revoked[/] {'that key' if public_key else 'every key'} of {station_id}")
