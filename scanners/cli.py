"""``medtrace scan``: the station people use at the dock and at the pharmacy counter.

Codes come from a keyboard-wedge scanner (one code a line on standard input or the terminal),
from image files, or from a folder a camera drops pictures into. Each scan shows its verdict
at once, in colour, with the reason and what to do; every signed event is in the station's
outbox before anything is shown as done, and a background sender delivers it.
``scan status`` shows the outbox, ``scan send`` delivers what is left in it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from medtrace.config import get_settings
from medtrace.errors import InvalidInput
from medtrace.protocol.identifiers import Code
from medtrace.protocol.verdicts import ADVICE, Signal
from medtrace.terminal import console, err_console

from .client import CaptureClient
from .decode import distinct_codes, read_image
from .errors import CaptureRefused, ServerUnreachable
from .forward import forward_until_settled
from .last_known import LastKnown
from .outbox import Outbox, Status
from .sender import Sender
from .session import Mode, Outcome, ScanResult, ScanSession, Task
from .station import Station
from .wedge import COMMON_FNC1_SUBSTITUTES, parse_wedge, scanned_lines

scan_app = typer.Typer(
    help="Scan codes at a station: verdicts in colour, events signed and sent exactly once.",
    invoke_without_command=True,
)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
_WATCH_POLL = 0.5  # seconds between looks into a watched folder

_STYLE = {
    Signal.OK: "bold white on green",
    Signal.EXPIRED: "bold white on red",
    Signal.RECALLED: "bold white on red",
    Signal.SUSPECT: "bold white on red",
    Signal.UNKNOWN: "bold white on red",
    Signal.REFUSED: "bold white on red",
    Signal.QUARANTINED: "bold black on yellow",
    Signal.NOT_FOR_THIS_PLACE: "bold black on yellow",
    Signal.UNCHECKED: "bold black on yellow",
}
_DONE = {
    Mode.RECEIVE: "received",
    Mode.SHIP: "shipped",
    Mode.STORE: "stored",
    Mode.DISPENSE: "dispensed",
    Mode.PACK: "packed",
    Mode.UNPACK: "unpacked",
    Mode.RETURN: "returned",
    Mode.DESTROY: "destroyed",
}

OutboxOption = Annotated[
    Path | None,
    typer.Option(
        envvar="MEDTRACE_OUTBOX",
        help="The station's outbox file (default: MEDTRACE_DATA_DIR/outbox.db).",
    ),
]
UrlOption = Annotated[str | None, typer.Option(help="Service URL (default MEDTRACE_PUBLIC_URL).")]


def _outbox_path(path: Path | None) -> Path:
    return path or get_settings().data_dir / "outbox.db"


@dataclass
class Tally:
    """How the session's scans ended, for the closing line and the exit code."""

    shown: dict[Signal, int] = field(default_factory=dict)
    unreadable: int = 0

    def add(self, result: ScanResult) -> None:
        """Count one scan."""
        self.shown[result.signal] = self.shown.get(result.signal, 0) + 1

    @property
    def all_ok(self) -> bool:
        """Every scan read and OK."""
        return not self.unreadable and set(self.shown) <= {Signal.OK}


@scan_app.callback()
def scan(
    ctx: typer.Context,
    mode: Annotated[
        Mode | None,
        typer.Option(help="What every scan does; verify signs nothing, dispense verifies first."),
    ] = None,
    to: Annotated[str | None, typer.Option(help="ship, return: the destination GLN.")] = None,
    at: Annotated[
        str | None, typer.Option(help="store: the place inside the site (a fridge's GLN).")
    ] = None,
    into: Annotated[
        str | None, typer.Option(help="pack: the SSCC of the case or pallet to pack into.")
    ] = None,
    station_id: Annotated[
        str | None, typer.Option(envvar="MEDTRACE_STATION_ID", help="This station's id.")
    ] = None,
    gln: Annotated[
        str | None,
        typer.Option(envvar="MEDTRACE_STATION_GLN", help="The GLN of this station's site."),
    ] = None,
    key_file: Annotated[
        Path | None,
        typer.Option(
            envvar="MEDTRACE_STATION_KEY_FILE",
            dir_okay=False,
            help="The station's key file (medtrace station keygen).",
        ),
    ] = None,
    token: Annotated[
        str | None, typer.Option(envvar="MEDTRACE_TOKEN", help="The participant's API token.")
    ] = None,
    url: UrlOption = None,
    outbox: OutboxOption = None,
    image: Annotated[
        list[Path] | None,
        typer.Option(exists=True, dir_okay=False, help="Read codes from this picture (repeat)."),
    ] = None,
    watch: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Read every picture dropped into this folder (a camera's); read ones move "
            "to done/, unreadable ones to unreadable/.",
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option(help="With --watch: read the pictures there now, then stop.")
    ] = False,
    fnc1: Annotated[
        list[str] | None,
        typer.Option(
            help="A stand-in your scanner types for FNC1, e.g. '<GS>' (repeat); "
            f"--common-fnc1 accepts {', '.join(COMMON_FNC1_SUBSTITUTES)}."
        ),
    ] = None,
    common_fnc1: Annotated[
        bool, typer.Option(help="Accept the common FNC1 stand-ins listed above.")
    ] = False,
    ack_wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait for the server's answer before queueing."),
    ] = 3.0,
) -> None:
    """Scan codes at this station: one code a line (a keyboard-wedge scanner), pictures, or
    a camera's drop folder.

    Each scan shows OK, EXPIRED, RECALLED, QUARANTINED, SUSPECT, UNKNOWN or NOT FOR THIS
    PLACE in colour, with the reason and what to do. Offline, scanning goes on: events wait
    in the outbox and the verdict shown is the last known one, with its time.

    Examples:

      medtrace scan --mode receive < codes.txt

      medtrace scan --mode ship --to 9525678000004

      medtrace scan --mode dispense        (verify-before-dispense: only OK is dispensed)

      medtrace scan --mode verify --image photo.jpg

      medtrace scan status
    """
    if ctx.invoked_subcommand is not None:
        return
    if mode is None:
        err_console.print(ctx.get_help())
        raise typer.Exit(code=2)
    try:
        task = Task(mode, to=to, at=at, into=into)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    station = _station(station_id, gln, key_file)
    substitutes = [*(fnc1 or ()), *(COMMON_FNC1_SUBSTITUTES if common_fnc1 else ())]
    service = url or get_settings().public_url
    if token is None:
        raise typer.BadParameter("give the participant's API token (--token or MEDTRACE_TOKEN)")
    tally = _run(
        task,
        station,
        service,
        token,
        _outbox_path(outbox),
        ack_wait,
        _codes(image, watch, once, substitutes),
    )
    raise typer.Exit(code=0 if tally.all_ok else 1)


def _station(station_id: str | None, gln: str | None, key_file: Path | None) -> Station:
    missing = [
        flag
        for flag, value in (("--station-id", station_id), ("--gln", gln), ("--key-file", key_file))
        if value is None
    ]
    if missing:
        raise typer.BadParameter(
            f"this station needs {', '.join(missing)} (or MEDTRACE_STATION_ID, "
            "MEDTRACE_STATION_GLN, MEDTRACE_STATION_KEY_FILE)"
        )
    assert station_id is not None and gln is not None and key_file is not None
    try:
        return Station.from_key_file(station_id, gln, key_file)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"cannot read the key file {key_file}: {exc}") from exc


def _run(
    task: Task,
    station: Station,
    url: str,
    token: str,
    outbox_path: Path,
    ack_wait: float,
    codes: Iterator[Code | InvalidInput],
) -> Tally:
    tally = Tally()
    with ExitStack() as stack:
        outbox = Outbox(outbox_path)
        stack.callback(outbox.close)
        last_known = LastKnown(outbox_path)
        stack.callback(last_known.close)
        # public lookups (verify, the station's keys) carry no token: they do not count
        # against the token's rate limit, which the captures need
        lookups = stack.enter_context(CaptureClient(url, None, timeout=ack_wait or 3.0))
        _check_registration(lookups, station)
        sender = Sender(outbox_path, lambda: CaptureClient(url, token))
        sender.start()
        stack.callback(sender.stop)
        session = ScanSession(
            station=station,
            task=task,
            outbox=outbox,
            last_known=last_known,
            lookups=lookups,
            sender=sender,
            ack_wait=ack_wait,
        )
        console.print(
            f"station [bold]{station.station_id}[/] at {station.gln}: "
            f"[bold]{task.mode}[/]{_task_detail(task)}; scan codes (Ctrl-D or Ctrl-C to stop)"
        )
        try:
            for code in codes:
                if isinstance(code, InvalidInput):
                    tally.unreadable += 1
                    _show_unreadable(code)
                    continue
                try:
                    result = session.scan(code)
                except InvalidInput as exc:
                    tally.unreadable += 1
                    _show_unreadable(exc)
                    continue
                tally.add(result)
                show(result, task)
        except KeyboardInterrupt:
            console.print()
        sender.wait(sender.request(), ack_wait)
        _closing_line(tally, outbox)
    return tally


def _task_detail(task: Task) -> str:
    if task.to:
        return f" to {task.to}"
    if task.into:
        return f" into {task.into}"
    if task.at:
        return f" at {task.at}"
    return ""


def _check_registration(client: CaptureClient, station: Station) -> None:
    """Stop at once if the server does not know this station's key: every scan would be
    refused. Offline, say so and go on: scans wait in the outbox."""
    try:
        known = client.station(station.station_id)
    except ServerUnreachable as exc:
        err_console.print(f"[yellow]offline[/] {exc}: scans wait in the outbox")
        return
    except CaptureRefused as exc:
        err_console.print(
            f"[red]error[/] station {station.station_id} is not registered ({exc.message}).\n"
            f"Register its key: medtrace station register {station.station_id} --key-file ..."
        )
        raise typer.Exit(code=1) from exc
    mine = next((k for k in known["keys"] if k["public_key"] == station.public_key), None)
    problem = None
    if mine is None:
        problem = (
            f"the key file's public key is not one registered for station {station.station_id}."
            "\nUse that station's key file, or register this key (medtrace station rotate)."
        )
    elif mine["revoked_at"]:
        problem = (
            f"this key of station {station.station_id} was revoked at {mine['revoked_at']}: "
            "nothing it signs is accepted.\nMake a new key (medtrace station keygen) and have "
            "it registered (medtrace station rotate)."
        )
    elif mine["valid_until"]:
        problem = (
            f"this key of station {station.station_id} was replaced at {mine['valid_until']}."
            "\nUse the station's new key file."
        )
    elif not known["active"]:
        problem = (
            f"station {station.station_id} is deactivated on the server; ask your "
            "administrator to register a new key."
        )
    if problem is not None:
        err_console.print(f"[red]error[/] {problem}")
        raise typer.Exit(code=1)


# --- sources of codes -------------------------------------------------------------------------


def _codes(
    images: list[Path] | None, watch: Path | None, once: bool, substitutes: list[str]
) -> Iterator[Code | InvalidInput]:
    """The codes to scan, in order; an unreadable one as its error (shown, and skipped)."""
    if images:
        for path in images:
            yield from _codes_in_image(path)
    elif watch is not None:
        yield from _watched(watch, once)
    else:
        import sys

        for line in scanned_lines(sys.stdin):
            try:
                yield parse_wedge(line, substitutes)
            except InvalidInput as exc:
                yield exc


def _codes_in_image(path: Path) -> Iterator[Code | InvalidInput]:
    try:
        scans = read_image(path)
    except InvalidInput as exc:
        yield exc
        return
    if not scans:
        yield InvalidInput(f"no code found in {path.name}", rule="scan.no_code")
    yield from distinct_codes(scans)


def _watched(folder: Path, once: bool) -> Iterator[Code | InvalidInput]:
    """Pictures as they land in ``folder``: a picture is read once its size has stopped
    changing (the camera finished writing), then moved to ``done/`` or ``unreadable/``."""
    folder.mkdir(parents=True, exist_ok=True)
    sizes: dict[Path, int] = {}
    while True:
        pictures = sorted(
            (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
            key=lambda p: p.stat().st_mtime,
        )
        for picture in pictures:
            size = picture.stat().st_size
            if not once and sizes.get(picture) != size:
                sizes[picture] = size  # seen growing or new: look again next time
                continue
            sizes.pop(picture, None)
            codes = list(_codes_in_image(picture))
            readable = not any(isinstance(c, InvalidInput) for c in codes)
            _move(picture, folder / ("done" if readable else "unreadable"))
            yield from codes
        if once:
            return
        time.sleep(_WATCH_POLL)


def _move(picture: Path, into: Path) -> None:
    into.mkdir(exist_ok=True)
    picture.replace(into / picture.name)


# --- what a person sees ------------------------------------------------------------------------


def show(result: ScanResult, task: Task) -> None:
    """One scan: the signal in colour, what happened, why, and what to do."""
    console.print(
        f"[{_STYLE[result.signal]}] {result.signal} [/] {escape(result.label)} "
        f"[dim]·[/] {_what_happened(result, task)}"
    )
    for reason in result.reasons:
        console.print(f"    {escape(reason)}")
    if result.rule:
        console.print(f"    [dim]rule: {escape(result.rule)}[/]")
    status = result.status
    if status is not None and not status.live:
        console.print(
            "    [yellow]offline: verdict from the last known state at "
            f"{status.checked_at:%Y-%m-%d %H:%M} UTC[/]"
        )
    if result.signal is not Signal.OK:
        console.print(f"    [bold]→ {ADVICE[result.signal]}[/]")


def _what_happened(result: ScanResult, task: Task) -> str:
    if result.outcome is Outcome.CHECKED:
        return "checked"
    if result.outcome is Outcome.NOT_SENT:
        return "[red]not " + _DONE[task.mode] + "[/]"
    if result.outcome is Outcome.REFUSED:
        return "[red]refused by the server[/]"
    if result.outcome is Outcome.QUEUED:
        return "[yellow]queued in the outbox[/]"
    done = _DONE[task.mode]
    if result.units is not None and (result.units != 1 or result.label.startswith("SSCC")):
        return f"{done}: {result.units} unit{'s' if result.units != 1 else ''} moved"
    return done


def _show_unreadable(exc: InvalidInput) -> None:
    console.print(f"[{_STYLE[Signal.REFUSED]}] UNREADABLE [/] {escape(exc.message)}")
    console.print(f"    [dim]rule: {escape(exc.rule)}[/]")


def _closing_line(tally: Tally, outbox: Outbox) -> None:
    counts = outbox.counts()
    seen = ", ".join(f"{n} {signal}" for signal, n in tally.shown.items()) or "no scans"
    if tally.unreadable:
        seen += f", {tally.unreadable} unreadable"
    console.print(
        f"{seen}. Outbox: {counts[Status.SENT]} sent, {counts[Status.PENDING]} waiting, "
        f"{counts[Status.REFUSED]} refused."
    )
    if counts[Status.PENDING]:
        console.print(
            "[yellow]Scans still waiting are sent by the next scan session, or now with "
            "`medtrace scan send`.[/]"
        )


# --- the outbox -------------------------------------------------------------------------------


@scan_app.command("status")
def status(
    outbox: OutboxOption = None,
    limit: Annotated[int, typer.Option(min=1, help="Entries listed per status.")] = 20,
) -> None:
    """Show the outbox: how many scans wait, were sent, or were refused and why."""
    box = Outbox(_outbox_path(outbox))
    try:
        counts = box.counts()
        oldest = box.oldest_pending()
        console.print(
            f"[green]{counts[Status.SENT]} sent[/], [yellow]{counts[Status.PENDING]} waiting[/]"
            + (f" (oldest scanned {oldest} UTC)" if oldest else "")
            + f", [red]{counts[Status.REFUSED]} refused[/]"
        )
        refused = box.entries(Status.REFUSED, limit)
        if refused:
            table = Table(title="Refused by the server (kept; fix and scan again)")
            for column in ("scanned", "event", "item", "rule", "reason"):
                table.add_column(column)
            for entry in refused:
                event = entry.envelope["event"]
                table.add_row(
                    entry.created_at,
                    event["type"],
                    _item(event),
                    entry.rule or "",
                    entry.message or "",
                )
            console.print(table)
        waiting = box.entries(Status.PENDING, limit)
        if waiting:
            table = Table(title="Waiting to be sent")
            for column in ("scanned", "event", "item"):
                table.add_column(column)
            for entry in waiting:
                event = entry.envelope["event"]
                table.add_row(entry.created_at, event["type"], _item(event))
            console.print(table)
    finally:
        box.close()


def _item(event: dict[str, object]) -> str:
    if "sscc" in event:
        return f"SSCC {event['sscc']}"
    return f"{event.get('gtin')} / {event.get('serial')}"


@scan_app.command("send")
def send(
    token: Annotated[
        str, typer.Option(envvar="MEDTRACE_TOKEN", help="The participant's API token.")
    ],
    url: UrlOption = None,
    outbox: OutboxOption = None,
    give_up_after: Annotated[
        float, typer.Option(min=0, help="Seconds to keep retrying an unreachable server.")
    ] = 60.0,
) -> None:
    """Send every scan waiting in the outbox now, retrying an unreachable server."""
    box = Outbox(_outbox_path(outbox))
    started = dt.datetime.now(dt.UTC)
    try:
        with CaptureClient(url or get_settings().public_url, token) as client:
            done = forward_until_settled(
                box,
                client,
                give_up_after=give_up_after,
                on_retry=lambda exc: err_console.print(f"[yellow]retrying[/] {exc}"),
            )
    finally:
        counts = box.counts()
        box.close()
    seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    console.print(
        f"[green]{done.sent} sent[/], [red]{done.refused} refused[/] in {seconds:.1f} s; "
        f"{counts[Status.PENDING]} waiting"
    )
    if done.refused:
        console.print("See why with `medtrace scan status`.")


def install(app: typer.Typer) -> None:
    """Add ``medtrace scan`` to the command line."""
    app.add_typer(scan_app, name="scan")
