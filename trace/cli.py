"""The ``medtrace`` command line (Typer + Rich).

Errors of the core and of the station client are caught once here and printed as a message
saying what to do next, with exit code 1; ``--verbose`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlmodel import Session

from medtrace import terminal
from medtrace.alerts_cli import app as alerts_app
from medtrace.cn_cli import cn_app
from medtrace.config import get_settings
from medtrace.errors import MedtraceError
from medtrace.iot.cli import install as install_iot_cli
from medtrace.iot.cli import relay_readings
from medtrace.keys import b64, public_key_raw
from medtrace.labels_cli import labels_app
from medtrace.ledger_cli import install as install_ledger_cli
from medtrace.ledger_cli import serve_witness
from medtrace.logs import configure_logging
from medtrace.models import Role
from medtrace.portal_cli import portal_app
from medtrace.reorder_cli import app as reorder_app
from medtrace.roles import ProcessRole, run_scheduler_role, run_sequencer
from medtrace.scanners.cli import install as install_scan_cli
from medtrace.scanners.errors import StationError
from medtrace.terminal import console, create_key_file, err_console, fail

if TYPE_CHECKING:
    from medtrace.scanners.client import CaptureClient

TokenOption = Annotated[
    str, typer.Option(envvar="MEDTRACE_TOKEN", help="The participant's API token.")
]
UrlOption = Annotated[str | None, typer.Option(help="Service URL (default MEDTRACE_PUBLIC_URL).")]

app = typer.Typer(
    name="medtrace",
    help="Trace medicines and medical devices on a verifiable, append-only Merkle log.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
participant_app = typer.Typer(
    help="Participants: manufacturers, distributors, pharmacies, regulators.", no_args_is_help=True
)
station_app = typer.Typer(help="Scan stations and their Ed25519 keys.", no_args_is_help=True)
token_app = typer.Typer(help="A participant's API tokens.", no_args_is_help=True)
participant_app.add_typer(token_app, name="token")
app.add_typer(db_app, name="db")
app.add_typer(participant_app, name="participant")
app.add_typer(station_app, name="station")
app.add_typer(alerts_app, name="alerts")
app.add_typer(reorder_app, name="reorder")
install_iot_cli(app)  # medtrace sensor ..., medtrace bridge
app.add_typer(labels_app, name="labels")
app.add_typer(cn_app, name="cn")
app.add_typer(portal_app, name="portal")
install_ledger_cli(app)  # medtrace audit, medtrace witness ...
install_scan_cli(app)  # medtrace scan, scan status, scan send


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks and debug logs.")
    ] = False,
) -> None:
    """Settings come from MEDTRACE_* environment variables (see README)."""
    terminal.verbose = verbose
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)


@app.command()
def serve(
    role: Annotated[
        ProcessRole, typer.Option(help="Which part of a deployment this process runs.")
    ] = ProcessRole.API,
    host: Annotated[str, typer.Option(help="Address to listen on (api, witness).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (api, witness).")] = 8000,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API worker processes on the one port (api). Python runs one request at a "
            "time per process: give each core a worker.",
        ),
    ] = 1,
) -> None:
    """Run one role of a deployment (see docker-compose.yml); every other option comes from
    the MEDTRACE_* settings.

    api: the HTTP API, verify pages and portal (plus the sequencer unless
    MEDTRACE_RUN_SEQUENCER=false). sequencer, scheduler: one leads, others stand by.
    bridge: MQTT readings into the capture API (MEDTRACE_BRIDGE_*). witness: cosigns the
    checkpoints of MEDTRACE_WITNESS_LOG_KEYS.
    """
    settings = get_settings()
    configure_logging(
        settings.log_format, level=logging.DEBUG if terminal.verbose else logging.INFO
    )
    if role is ProcessRole.API:
        from medtrace.api.serve import run_api

        run_api(settings, host=host, port=port, workers=workers)
    elif role is ProcessRole.SEQUENCER:
        run_sequencer(settings)
    elif role is ProcessRole.SCHEDULER:
        run_scheduler_role(settings)
    elif role is ProcessRole.BRIDGE:
        relay_readings(settings)
    else:
        serve_witness(settings, host=host, port=port)


@app.command()
def demo(
    port: Annotated[int, typer.Option(help="Port to serve on (0 picks a free one).")] = 8000,
    units: Annotated[int, typer.Option(min=4, max=10_000, help="Units in the demo lot.")] = 24,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where to keep the demo's database and keys (default: a new temporary folder)."
        ),
    ] = None,
    exit_after: Annotated[
        bool, typer.Option("--exit", help="Stop after printing the URLs instead of serving.")
    ] = False,
) -> None:
    """Run the whole chain on SQLite and print verify URLs, then serve until Ctrl-C.

    Registers a manufacturer, a distributor and a hospital pharmacy with their stations,
    commissions a lot, ships, receives, dispenses one pack, and waits for the signed checkpoint.
    """
    from medtrace.demo import run_demo

    folder = data_dir or Path(tempfile.mkdtemp(prefix="medtrace-demo-"))
    try:
        run_demo(
            data_dir=folder,
            host="127.0.0.1",
            port=port,
            units=units,
            console=console,
            serve_forever=not exit_after,
        )
    except OSError as exc:
        if "Address already in use" in str(exc):
            err_console.print(f"[red]error[/] port {port} is in use; try --port 0")
            raise typer.Exit(code=1) from exc
        raise
    except (MedtraceError, StationError) as exc:
        raise fail(exc) from exc


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending schema migrations to MEDTRACE_DATABASE_URL."""
    from medtrace.db import create_db_engine, upgrade_schema

    settings = get_settings()
    upgrade_schema(create_db_engine(settings.resolved_database_url))
    console.print("[green]schema is up to date[/]")


@participant_app.command("add")
def participant_add(
    gln: Annotated[str, typer.Option(help="13-digit GLN with its check digit.")],
    name: Annotated[str, typer.Option(help="Name shown on verify pages.")],
    role: Annotated[Role, typer.Option(help="What the participant does.")],
    city: Annotated[str, typer.Option(help="City shown on verify pages.")] = "",
    company_prefix: Annotated[
        str | None, typer.Option(help="GS1 company prefix (manufacturers).")
    ] = None,
) -> None:
    """Register a participant and print its API token (shown once; store it safely)."""
    from medtrace.db import create_db_engine, upgrade_schema
    from medtrace.services.registry import create_participant

    engine = create_db_engine(get_settings().resolved_database_url)
    upgrade_schema(engine)
    try:
        with Session(engine) as session:
            created = create_participant(
                session=session,
                gln=gln,
                name=name,
                role=role,
                city=city,
                company_prefix=company_prefix,
            )
    except MedtraceError as exc:
        raise fail(exc) from exc
    console.print(f"[green]registered[/] {name} ({role.value}) GLN {gln}")
    console.print(f"API token: [bold]{created.token}[/]")


def _registry_session() -> Session:
    """A session on the configured database, its schema brought up to date."""
    from medtrace.db import create_db_engine, upgrade_schema

    engine = create_db_engine(get_settings().resolved_database_url)
    upgrade_schema(engine)
    return Session(engine)


@token_app.command("issue")
def token_issue(
    gln: Annotated[str, typer.Option(help="The participant's GLN.")],
) -> None:
    """Issue another API token for a participant and print it (shown once; its other tokens
    stay valid until revoked, so clients can switch over without downtime)."""
    from medtrace.services.registry import issue_token

    try:
        with _registry_session() as session:
            token = issue_token(session=session, gln=gln)
    except MedtraceError as exc:
        raise fail(exc) from exc
    console.print(f"API token: [bold]{token}[/]")


@token_app.command("revoke")
def token_revoke(
    token: Annotated[
        str | None, typer.Argument(help="The token to revoke (or --all with --gln).")
    ] = None,
    gln: Annotated[str | None, typer.Option(help="With --all: the participant's GLN.")] = None,
    all_tokens: Annotated[
        bool, typer.Option("--all", help="Revoke every token of the participant --gln.")
    ] = False,
) -> None:
    """Revoke an API token: every request carrying it is refused from now on (401)."""
    from medtrace.services.registry import revoke_all_tokens, revoke_token

    one = token is not None and not all_tokens
    every = token is None and all_tokens and gln is not None
    if not (one or every):
        err_console.print("[red]error[/] give a TOKEN, or --all with --gln")
        raise typer.Exit(code=2)
    try:
        with _registry_session() as session:
            if token is not None:
                revoke_token(session=session, token=token)
                console.print("[green]revoked[/] 1 token")
            else:
                assert gln is not None
                count = revoke_all_tokens(session=session, gln=gln)
                console.print(f"[green]revoked[/] {count} token(s) of {gln}")
    except MedtraceError as exc:
        raise fail(exc) from exc


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
    from medtrace.keys import read_key_file
    from medtrace.scanners.client import CaptureClient

    public_key = b64(public_key_raw(read_key_file(key_file)))
    try:
        with CaptureClient(url or get_settings().public_url, token) as client:
            send(client, public_key)
    except StationError as exc:
        raise fail(exc) from exc
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

    try:
        with CaptureClient(url or get_settings().public_url, token) as client:
            client.revoke_station_keys(station_id, public_key)
    except StationError as exc:
        raise fail(exc) from exc
    console.print(f"[green]revoked[/] {'that key' if public_key else 'every key'} of {station_id}")


@app.command()
def recall(
    gtin: Annotated[str, typer.Option(help="The product's 14-digit GTIN.")],
    lot: Annotated[str, typer.Option(help="The lot (batch) to recall.")],
    reason: Annotated[str, typer.Option(help="Why, in words the holders will read.")],
    station_id: Annotated[str, typer.Option(help="The signing station's id.")],
    key_file: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="The station's key file.")
    ],
    gln: Annotated[str, typer.Option(help="The recalling participant's GLN.")],
    token: TokenOption,
    url: UrlOption = None,
) -> None:
    """Recall a lot (its manufacturer or a regulator) and print its reach.

    Signs a recall event with the station's key; every unit of the lot is then refused for
    shipping and dispensing, and every current holder is alerted.
    """
    from medtrace.custody import FINAL_STATES
    from medtrace.scanners.client import CaptureClient
    from medtrace.scanners.station import Station

    final_state_names = {s.value for s in FINAL_STATES}
    station = Station.from_key_file(station_id, gln, key_file)
    try:
        with CaptureClient(url or get_settings().public_url, token) as client:
            recorded = client.recall(station.recall(gtin, lot, reason=reason))
            reach = client.recall_reach(gtin, lot)
    except StationError as exc:
        raise fail(exc) from exc
    counts = reach["counts"]
    console.print(
        f"[green]recalled[/] lot {lot} of GTIN {gtin}: leaf {recorded['leaf_index']}, "
        f"{recorded['alerts_raised']} holder alerts raised"
    )
    console.print(
        f"reach: {counts['units']} units; {counts['held']} held by {counts['holders']} "
        f"participants, {counts['in_transit']} in transit, {counts['dispensed']} dispensed, "
        f"{counts['out_of_chain']} destroyed or exported"
    )
    holders: dict[str, int] = {}  # who still holds units, to act on them
    for unit in reach["units"]:
        if unit["holder"] and unit["state"] not in final_state_names:
            name = f"{unit['holder']['name']} ({unit['holder']['gln']})"
            holders[name] = holders.get(name, 0) + 1
    for name, units in sorted(holders.items()):
        console.print(f"  {name}: {units} units")
