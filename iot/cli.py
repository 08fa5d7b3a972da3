"""``medtrace sensor bind|grant|simulate ...``: the IoT side's command line (a sensor's key
commands are every signing device's, in ``medtrace.cli.devices``; the bridge is a server role,
``medtrace bridge`` in ``medtrace.cli.server``).

Errors of the IoT side (``IotError``) reach ``medtrace.cli.errors``, which prints their
``diagnostics()`` with exit code 1, as it does for every command.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from medtrace.config import get_settings
from medtrace.protocol.keys import b64, load_or_create_key, public_key_raw
from medtrace.protocol.mqtt import MqttVersion
from medtrace.terminal import console

from .client import ReadingsClient
from .errors import CaptureRejected
from .simulator import Fleet, Profile, SimulatedSensor

TokenOption = Annotated[
    str, typer.Option(envvar="MEDTRACE_TOKEN", help="The participant's API token.")
]
UrlOption = Annotated[str | None, typer.Option(help="Service URL (default MEDTRACE_PUBLIC_URL).")]
HostOption = Annotated[
    str | None, typer.Option(help="MQTT broker host (default MEDTRACE_MQTT_HOST).")
]
PortOption = Annotated[
    int | None, typer.Option(help="MQTT broker port (default MEDTRACE_MQTT_PORT).")
]
VersionOption = Annotated[
    MqttVersion, typer.Option("--mqtt-version", help="5, or 3.1.1 for brokers without v5.")
]


class BindKind(StrEnum):
    """What a sensor is bound to on the command line."""

    PLACE = "place"
    SHIPMENT = "shipment"


def sensor_key_dir() -> Path:
    """Where sensors' key files are kept by default: beside the stations', in ``sensors/``."""
    return get_settings().resolved_station_key_dir / "sensors"


def _api(url: str | None, token: str) -> ReadingsClient:
    return ReadingsClient(url or get_settings().public_url, token)


def _broker(host: str | None, port: int | None) -> tuple[str, int]:
    settings = get_settings()
    return host or settings.mqtt.host, port or settings.mqtt.port


def bind(
    sensor_id: Annotated[str, typer.Argument(help="The sensor's id.")],
    kind: Annotated[BindKind, typer.Option(help="A place (GLN) or a shipment (SSCC).")],
    target: Annotated[str, typer.Option(help="The GLN or the SSCC.")],
    token: TokenOption,
    since: Annotated[
        dt.datetime | None,
        typer.Option(
            help="Start of the binding (default: now, by the server's clock); "
            "a time without a zone is UTC."
        ),
    ] = None,
    url: UrlOption = None,
) -> None:
    """Bind a sensor to a place or a shipment from a time on (closing its previous binding)."""
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)  # a time given without a zone is UTC
    with _api(url, token) as api:
        binding = api.bind(sensor_id, kind=kind.value, target=target, valid_from=since)
    console.print(
        f"[green]bound[/] sensor {sensor_id} to {kind.value} {target} from {binding['valid_from']}"
    )


def grant(
    grantee: Annotated[str, typer.Argument(help="GLN of the participant whose sensors may bind.")],
    kind: Annotated[BindKind, typer.Option(help="A place (GLN) or a shipment (SSCC).")],
    target: Annotated[str, typer.Option(help="Your GLN (or a place in your site) or SSCC.")],
    token: TokenOption,
    url: UrlOption = None,
) -> None:
    """Let another participant's sensors measure at a place you hold or with a shipment you
    ship or receive, from now until you revoke it."""
    with _api(url, token) as api:
        given = api.grant(grantee, kind=kind.value, target=target)
    console.print(
        f"[green]granted[/] #{given['id']}: sensors of {grantee} may bind to "
        f"{kind.value} {given['target']}"
    )


def revoke_grant(
    grant_id: Annotated[int, typer.Argument(help="The grant's id (see `sensor grants`).")],
    token: TokenOption,
    url: UrlOption = None,
) -> None:
    """Revoke a grant you gave: its grantee's readings stop counting from now."""
    with _api(url, token) as api:
        revoked = api.revoke_grant(grant_id)
    console.print(f"[green]revoked[/] grant #{grant_id} at {revoked['revoked_at']}")


def grants(token: TokenOption, url: UrlOption = None) -> None:
    """The grants you gave or received (a regulator: every grant)."""
    with _api(url, token) as api:
        rows = api.grants()
    table = Table("id", "grantor", "grantee", "kind", "target", "granted", "revoked")
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["grantor"],
            row["grantee"],
            row["kind"],
            row["target"],
            row["granted_at"],
            row["revoked_at"] or "",
        )
    console.print(table)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def simulate(
    sensors: Annotated[int, typer.Option(min=1, max=1000, help="How many sensors.")] = 1,
    rate: Annotated[
        float, typer.Option(min=0.01, max=1000, help="Readings per second per sensor.")
    ] = 1.0,
    profile: Annotated[Profile, typer.Option(help="What the loggers do.")] = Profile.FRIDGE,
    prefix: Annotated[str, typer.Option(help="Sensor ids are PREFIX-0, PREFIX-1, ...")] = "sim",
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    speed: Annotated[
        float, typer.Option(min=1, help="Simulated seconds per real second (profiles only).")
    ] = 1.0,
    token: Annotated[
        str | None,
        typer.Option(envvar="MEDTRACE_TOKEN", help="Register new sensors with this token."),
    ] = None,
    gln: Annotated[
        str | None, typer.Option(help="Bind the sensors to this place (needs --token).")
    ] = None,
    url: UrlOption = None,
    host: HostOption = None,
    port: PortOption = None,
    version: VersionOption = MqttVersion.V5,
) -> None:
    """Simulate loggers publishing signed readings at QoS 1 (keys kept in the key dir)."""
    fleet_sensors = [
        SimulatedSensor(
            f"{prefix}-{i}", load_or_create_key(sensor_key_dir() / f"{prefix}-{i}.pem"), profile
        )
        for i in range(sensors)
    ]
    if token:
        _enrol(fleet_sensors, _api(url, token), gln)
    broker_host, broker_port = _broker(host, port)
    fleet = Fleet(fleet_sensors, host=broker_host, port=broker_port, version=version)
    stop = _stop_on_signals()
    fleet.start()
    fleet.run(rate=rate, stop=stop, duration=duration, speed=speed)
    flushed = fleet.flush(timeout=30)
    fleet.stop()
    console.print(f"published {fleet.published} readings" + ("" if flushed else " (some unsent)"))
    if not flushed:
        raise typer.Exit(code=1)


def _enrol(sensors: list[SimulatedSensor], api: ReadingsClient, gln: str | None) -> None:
    """Register the sensors that are new, and bind them all to ``gln`` from now."""
    with api:
        for sensor in sensors:
            try:
                api.register_sensor(sensor.sensor_id, b64(public_key_raw(sensor.key)))
            except CaptureRejected as exc:
                if exc.rule != "sensor.exists":
                    raise
            if gln:
                api.bind(
                    sensor.sensor_id, kind="place", target=gln, valid_from=dt.datetime.now(dt.UTC)
                )


def install(app: typer.Typer, key_commands: Callable[[typer.Typer], None]) -> None:
    """Mount ``sensor`` on the ``medtrace`` command.

    ``key_commands`` adds a sensor's key commands (keygen, register, rotate, revoke) to the
    group: they are the ones every signing device shares (``medtrace.cli.devices``), which
    the command's entry point owns, so this client package imports nothing of the server.
    """
    sensors = typer.Typer(help="Temperature sensors: keys, registration, simulation.")
    key_commands(sensors)
    commands = (
        ("bind", bind),
        ("grant", grant),
        ("revoke-grant", revoke_grant),
        ("grants", grants),
        ("simulate", simulate),
    )
    for name, command in commands:
        sensors.command(name)(command)
    app.add_typer(sensors, name="sensor", no_args_is_help=True)
