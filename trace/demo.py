"""The demo: the whole chain on one machine, ending with verify URLs.

It starts the service on SQLite, registers a manufacturer, a distributor and a hospital
pharmacy (each with a GLN, an API token and one station with its own Ed25519 key), then drives
the stations over HTTP exactly as real ones would: commission a lot, ship, receive, ship on,
receive, dispense one pack; a second lot is recalled, and a code held by the distributor is
presented at the pharmacy as a copy would be. It waits for the sequencer's checkpoint so every
event printed is provable, prints the verify URLs, a regulator's and a pharmacy's portal log-in
and every API token, and serves until Ctrl-C.
"""

from __future__ import annotations

import datetime as dt
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from biip.checksums import gs1_standard_check_digit
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console
from rich.progress import Progress
from sqlalchemy import Engine
from sqlmodel import Session

from medtrace.api.main import create_app
from medtrace.config import CaptureSettings, Settings
from medtrace.iot.demo import DemoSensors
from medtrace.models import Role
from medtrace.protocol.identifiers import digital_link_path, random_serial
from medtrace.protocol.keys import write_key_file
from medtrace.scanners.client import CaptureClient
from medtrace.scanners.errors import CaptureRefused
from medtrace.scanners.station import Station
from medtrace.services.portal_accounts import add_user
from medtrace.services.registry import create_participant

# GS1 prefix 952 is reserved for demonstrations and examples.


def with_check_digit(payload: str) -> str:
    """A GS1 key from its payload: append the mod-10 check digit."""
    return payload + str(gs1_standard_check_digit(payload))


@dataclass(frozen=True)
class DemoParticipant:
    """A participant of the demo: who it is and where (its GLN)."""

    name: str
    role: Role
    city: str
    gln: str
    company_prefix: str | None = None


PARTICIPANTS = (
    DemoParticipant(
        "Huaxin Pharmaceutical",
        Role.MANUFACTURER,
        "Shanghai",
        with_check_digit("952123400000"),
        company_prefix="9521234",
    ),
    DemoParticipant(
        "Eastern Medical Logistics", Role.DISTRIBUTOR, "Hangzhou", with_check_digit("952567800000")
    ),
    DemoParticipant(
        "Ruijin Hospital Pharmacy", Role.PHARMACY, "Shanghai", with_check_digit("952901200000")
    ),
)
REGULATOR = DemoParticipant(
    "Shanghai Medical Products Administration",
    Role.REGULATOR,
    "Shanghai",
    with_check_digit("952999900000"),
)
# The portal accounts the demo prints, so a newcomer can log in as a regulator (investigate,
# recall) and as a pharmacy (stock, alerts, quarantine).
PORTAL_ROLES = (Role.REGULATOR, Role.PHARMACY)
GTIN = "0" + with_check_digit("952123400011")


class DemoServer:
    """The service in a background thread, on a socket bound before start (so port 0 works)."""

    def __init__(self, settings: Settings, sock: socket.socket) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self._server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning"))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    def start(self) -> None:
        """Start serving and wait until the server accepts requests."""
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the demo server failed to start")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop serving (graceful)."""
        self._server.should_exit = True
        self._thread.join(timeout=10)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


@dataclass(frozen=True)
class Enrolled:
    """A participant registered with the service, with its one station and API client."""

    participant: DemoParticipant
    station: Station
    api: CaptureClient
    token: str

    @property
    def gln(self) -> str:
        """The participant's GLN, where its station signs."""
        return self.participant.gln


def register(engine: Engine, p: DemoParticipant) -> str:
    """Register a participant, as the operator does; its API token."""
    with Session(engine) as session:
        created = create_participant(
            session=session,
            gln=p.gln,
            name=p.name,
            role=p.role,
            city=p.city,
            company_prefix=p.company_prefix,
        )
    return created.token


def enrol(engine: Engine, p: DemoParticipant, key: Ed25519PrivateKey, base_url: str) -> Enrolled:
    """Register a participant (as the operator does) and its station (over HTTP, as it would)."""
    token = register(engine, p)
    station = Station(f"{p.role.value}-1", p.gln, key)
    api = CaptureClient(base_url, token)
    api.register_station(station.station_id, station.public_key)
    return Enrolled(p, station, api, token)


@dataclass(frozen=True)
class Access:
    """How a newcomer gets in: each participant's API token and the demo's portal log-ins."""

    tokens: dict[str, str]  # participant name -> API token
    logins: list[tuple[DemoParticipant, str, str]]  # (whose, e-mail, password)


def _regulator_and_logins(engine: Engine, enrolled: dict[Role, Enrolled]) -> Access:
    """Register the regulator (it captures nothing, so it has no station) and a portal account
    for each of ``PORTAL_ROLES``, with a fresh random password."""
    tokens = {m.participant.name: m.token for m in enrolled.values()}
    tokens[REGULATOR.name] = register(engine, REGULATOR)
    whose = {Role.REGULATOR: REGULATOR} | {
        role: member.participant for role, member in enrolled.items()
    }
    logins = []
    for role in PORTAL_ROLES:
        email, password = f"{role.value}@demo.medtrace.example", secrets.token_urlsafe(12)
        with Session(engine) as session:
            add_user(session=session, gln=whose[role].gln, email=email, password=password)
        logins.append((whose[role], email, password))
    return Access(tokens, logins)


def _print_access(access: Access, base_url: str, data_dir: Path, console: Console) -> None:
    """The log-ins, the tokens, and how to point the command line at this demo."""
    console.print(f"\nPortal ({base_url}/portal/login):")
    for who, email, password in access.logins:
        console.print(
            f"  {who.role.value:<10} {email}  password [bold]{password}[/]", soft_wrap=True
        )
    console.print("API tokens (Authorization: Bearer ..., or MEDTRACE_TOKEN for the CLI):")
    for name, token in access.tokens.items():
        console.print(f"  {name:<42} {token}", soft_wrap=True)
    console.print(
        f"Point the CLI at this demo: export MEDTRACE_DATA_DIR={data_dir} "
        f"MEDTRACE_PUBLIC_URL={base_url}",
        soft_wrap=True,
    )


def _setup(server: DemoServer, console: Console) -> dict[Role, Enrolled]:
    """Enrol every participant, each station's key in a file as a real station keeps it."""
    enrolled: dict[Role, Enrolled] = {}
    key_dir = server.settings.resolved_station_key_dir
    for p in PARTICIPANTS:
        key = write_key_file(key_dir / f"{p.role.value}-1.pem")
        member = enrol(server.app.state.engine, p, key, server.settings.public_url)
        enrolled[p.role] = member
        console.print(
            f"  [bold]{p.name}[/] ({p.role.value}, {p.city}) GLN {p.gln}, "
            f"station [cyan]{member.station.station_id}[/]"
        )
    return enrolled


def _walk(
    enrolled: dict[Role, Enrolled],
    serials: list[str],
    lot: str,
    expiry: dt.date,
    console: Console,
) -> None:
    """Drive the custody path up to the pharmacy's shelf."""
    maker, maker_api = enrolled[Role.MANUFACTURER].station, enrolled[Role.MANUFACTURER].api
    hub, hub_api = enrolled[Role.DISTRIBUTOR].station, enrolled[Role.DISTRIBUTOR].api
    pharmacy, pharmacy_api = enrolled[Role.PHARMACY].station, enrolled[Role.PHARMACY].api
    to_pharmacy = serials[: len(serials) // 2]
    steps: list[tuple[str, CaptureClient, list[dict[str, Any]]]] = [
        (
            f"commission {len(serials)} units of lot {lot}",
            maker_api,
            [maker.commission(GTIN, s, lot=lot, expiry=expiry) for s in serials],
        ),
        (
            "ship them to the distributor",
            maker_api,
            [maker.ship(GTIN, s, to=hub.gln) for s in serials],
        ),
        ("receive them at the distributor", hub_api, [hub.receive(GTIN, s) for s in serials]),
        (
            f"ship {len(to_pharmacy)} to the hospital pharmacy",
            hub_api,
            [hub.ship(GTIN, s, to=pharmacy.gln) for s in to_pharmacy],
        ),
        (
            "receive them at the pharmacy",
            pharmacy_api,
            [pharmacy.receive(GTIN, s) for s in to_pharmacy],
        ),
    ]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("custody", total=len(steps))
        for label, client, envelopes in steps:
            progress.update(task, description=label)
            receipts = client.capture(envelopes)
            first, final = receipts[0]["leaf_index"], receipts[-1]["leaf_index"]
            console.print(f"  [green]✓[/] {label}: leaves {first}…{final}")
            progress.advance(task)


def _recalled_lot(enrolled: dict[Role, Enrolled], console: Console) -> tuple[str, str]:
    """A second, small lot shipped to the distributor and recalled by its manufacturer; the
    (lot, serial) of one of its units."""
    maker, hub = enrolled[Role.MANUFACTURER], enrolled[Role.DISTRIBUTOR]
    lot = "R" + dt.date.today().strftime("%y%m%d") + random_serial(3)
    expiry = dt.date.today() + dt.timedelta(days=365)
    serials = [random_serial() for _ in range(2)]
    maker.api.capture(
        [maker.station.commission(GTIN, s, lot=lot, expiry=expiry) for s in serials]
        + [maker.station.ship(GTIN, s, to=hub.gln) for s in serials]
    )
    hub.api.capture([hub.station.receive(GTIN, s) for s in serials])
    maker.api.recall(
        maker.station.recall(GTIN, lot, reason="Particles found in retained samples (demo)")
    )
    console.print(f"  [green]✓[/] lot {lot} shipped to the distributor, then recalled")
    return lot, serials[0]


def _cloned_code(enrolled: dict[Role, Enrolled], serial: str, console: Console) -> None:
    """The pharmacy's station presents a code whose unit sits at the distributor, as a copied
    code would be: the dispense is refused and the unit is marked suspect (``suspect.clone``)."""
    pharmacy = enrolled[Role.PHARMACY]
    try:
        pharmacy.api.capture([pharmacy.station.dispense(GTIN, serial)])
    except CaptureRefused as exc:
        console.print(
            "  [green]✓[/] a copy of a code held by the distributor, presented at the "
            f"pharmacy: refused ({exc.rule}), the unit marked suspect"
        )
    else:
        raise RuntimeError(f"the dispense of {serial}, held by the distributor, was accepted")


def _ledger_size(base_url: str, regulator_token: str) -> int:
    """The log's size once the demo's last write is in: the newest alert (the clone's) is the
    last leaf the demo causes."""
    alerts = httpx.get(
        f"{base_url}/api/v1/alerts", headers={"Authorization": f"Bearer {regulator_token}"}
    )
    alerts.raise_for_status()
    return max(int(alert["leaf_index"]) for alert in alerts.json()["data"]) + 1


def _wait_for_checkpoint(base_url: str, size: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{base_url}/api/v1/ledger/checkpoint")
        if response.status_code == 200 and int(response.text.splitlines()[1]) >= size:
            return
        time.sleep(0.2)
    raise RuntimeError(f"no checkpoint of size {size} after {timeout} s")


def run_demo(
    *,
    data_dir: Path,
    host: str,
    port: int,
    units: int,
    console: Console,
    serve_forever: bool = True,
) -> list[str]:
    """Run the demo; return the verify URLs it printed."""
    sock = bind(host, port)
    base_url = f"http://{host}:{sock.getsockname()[1]}"
    # The demo walks the chain in seconds, faster than goods travel: no minimum transit time.
    settings = Settings(
        data_dir=data_dir,
        public_url=base_url,
        database_url="",
        capture=CaptureSettings(min_transit_seconds=0),
    )
    server = DemoServer(settings, sock)
    server.start()
    console.print(f"[bold]medtrace demo[/] on {base_url} (data in {data_dir})")
    enrolled = _setup(server, console)
    access = _regulator_and_logins(server.app.state.engine, enrolled)
    console.print(f"  [bold]{REGULATOR.name}[/] (regulator, {REGULATOR.city}) GLN {REGULATOR.gln}")
    lot = "L" + dt.date.today().strftime("%y%m%d") + random_serial(3)
    expiry = dt.date.today() + dt.timedelta(days=730)
    serials = [random_serial() for _ in range(units)]
    sensors = DemoSensors.for_places(
        base_url,
        settings.resolved_station_key_dir / "sensors",
        [(m.participant.role.value, m.token, m.gln) for m in enrolled.values()],
    )
    sensors.start()
    _walk(enrolled, serials, lot, expiry, console)
    readings, _ = sensors.finish()
    console.print(f"  [green]✓[/] {readings} signed temperature readings over MQTT, bound to GLNs")
    # Dispensed after the loggers reported, so the dispensed pack has a temperature history.
    pharmacy = enrolled[Role.PHARMACY]
    dispensed = pharmacy.api.capture([pharmacy.station.dispense(GTIN, serials[0])])
    console.print(f"  [green]✓[/] dispense one pack: leaf {dispensed[0]['leaf_index']}")
    recalled_lot, recalled = _recalled_lot(enrolled, console)
    _cloned_code(enrolled, serials[-1], console)
    _wait_for_checkpoint(base_url, _ledger_size(base_url, access.tokens[REGULATOR.name]))
    for member in enrolled.values():
        member.api.close()
    key = httpx.get(f"{base_url}/api/v1/ledger/public-key").json()
    picks = [
        (lot, serials[0], "genuine: dispensed at the pharmacy, with its temperature history"),
        (lot, serials[1], "genuine: on the pharmacy's shelf"),
        (
            lot,
            serials[-1],
            "suspect: its code was presented at the pharmacy while the distributor holds it",
        ),
        (recalled_lot, recalled, "recalled: its lot was recalled by the manufacturer"),
    ]
    urls = [base_url + digital_link_path(GTIN, s, lot=lt) for lt, s, _ in picks]
    console.print(
        f"\nLog key (compare it with the one your verifier trusts): [bold]{key['vkey']}[/]"
    )
    if serve_forever:
        console.print("Verify URLs (open in a browser, or ask for Accept: application/json):")
    else:
        console.print("Verify URLs (the demo stops now: run it without --exit to open them):")
    for url, (_, _, shows) in zip(urls, picks, strict=True):
        console.print(f"  {url}\n    [dim]{shows}[/]", soft_wrap=True)
    if serve_forever:
        _print_access(access, base_url, data_dir, console)
        console.print("\nServing; press Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            console.print("stopping")
    server.stop()
    return urls
