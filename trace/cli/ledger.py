"""``medtrace audit`` and ``medtrace witness``: checking the log from outside.

``audit`` rebuilds the log's tree from every leaf (from the database or from a log's public
HTTP interface) and checks it against the stored hashes and the signed checkpoints
(``medtrace.ledger.audit``), plus the station signature inside every custody-event leaf.
From the database it then checks every derived row (events, units, readings, alerts, recalls)
against the leaf it was written from (``medtrace.services.audit``): the log proves the
leaves, and the rows are what the verify page and the rules read.

``witness`` runs a c2sp.org/tlog-witness service with its own Ed25519 key and its own durable
state: the log posts each checkpoint there and stores the cosignature it answers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from rich.markup import escape
from sqlalchemy import Engine, select

from medtrace import ledger
from medtrace.api.limits import BodyLimit
from medtrace.config import Settings, get_settings
from medtrace.errors import MedtraceError
from medtrace.ledger import (
    MAX_REQUEST_BYTES,
    SIZE_CONTENT_TYPE,
    TILE_WIDTH,
    CheckpointError,
    Cosigner,
    EntryTooLarge,
    Finding,
    NoteSigner,
    NoteVerifier,
    Witness,
    WitnessRefusal,
    audit,
)
from medtrace.protocol.envelope import canonical_json
from medtrace.protocol.keys import b64decode_canonical, read_key_file
from medtrace.terminal import console, create_key_file, err_console, progress_bar

__all__ = ["envelope_problem", "install", "serve_witness"]


witness_app = typer.Typer(
    help="Run a witness: cosign the log's checkpoints (c2sp.org/tlog-witness).",
    no_args_is_help=True,
)

_MAX_FINDINGS_SHOWN = 20


def install(app: typer.Typer) -> None:
    """Mount ``audit`` and ``witness`` on the ``medtrace`` command."""
    app.command("audit")(audit_command)
    app.add_typer(witness_app, name="witness")


# The leaf format -----------------------------------------------------------------------------


def _is_gln(value: object) -> bool:
    return isinstance(value, str) and len(value) == 13 and value.isascii() and value.isdigit()


def envelope_problem(
    data: bytes, station_keys: Callable[[str], Sequence[bytes] | None]
) -> str | None:
    """What is wrong with a custody-event leaf, or None; the audit's one view into a leaf.

    A custody leaf is the RFC 8785 JSON of ``{"event", "signature", "station_id"}``, with
    ``captured_by`` (a GLN) when the station's participant captured for a principal under a
    capture grant (see ``medtrace.protocol.envelope``): it must be canonical, and the
    station's signature must verify with one of the station's registered keys (a station
    keeps every key it had, so an event signed before a rotation or a revocation still
    verifies). An alert's leaf,
    ``{"alert": {...}}`` (see ``medtrace.services.alerts.alert_leaf``), must be canonical.
    Leaves of another kind (sensor
    readings, events captured with a participant's token) name no station and are left to
    their own checks: None.
    """
    try:
        envelope = json.loads(data)
    except ValueError:
        return "not JSON"
    if isinstance(envelope, dict) and "alert" in envelope:
        return _alert_leaf_problem(envelope, data)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("station_id"), str):
        return None  # another kind of leaf (a sensor reading, a token-captured event)
    captured_by = envelope.get("captured_by")
    if set(envelope) - {"captured_by"} != {"event", "signature", "station_id"}:
        return "a station envelope must have exactly event, signature, station_id (and captured_by)"
    if captured_by is not None and not _is_gln(captured_by):
        return "captured_by is not a GLN"
    try:
        if canonical_json(envelope) != data:
            return "not RFC 8785 canonical JSON"
    except MedtraceError as exc:
        return exc.message
    station_id = envelope["station_id"]
    if not isinstance(envelope["signature"], str):
        return "the signature is not a base64 string"
    keys = station_keys(station_id)
    if not keys:
        return f"station {station_id!r} is not registered"
    # The leaf is canonical, so the signed bytes (the event's canonical JSON) are the text
    # between '"event":' (after the captured_by GLN, if any) and the envelope's own
    # ',"signature":"' (the last one: a quote inside a string is escaped), which spares
    # canonicalising the event a second time.
    opening = (
        b'{"event":'
        if captured_by is None
        else b'{"captured_by":"%s","event":' % (captured_by.encode())
    )
    signed = data[len(opening) : data.rindex(b',"signature":"')]
    if not any(_verifies(key, envelope["signature"], signed) for key in keys):
        return f"the signature of station {station_id!r} does not verify"
    return None


def _alert_leaf_problem(leaf: dict[str, object], data: bytes) -> str | None:
    if set(leaf) != {"alert"} or not isinstance(leaf["alert"], dict):
        return "an alert leaf must be exactly {'alert': {...}}"
    try:
        return None if canonical_json(leaf) == data else "not RFC 8785 canonical JSON"
    except MedtraceError as exc:
        return exc.message


def _verifies(public_key: bytes, signature: str, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            b64decode_canonical(signature), message
        )
    except (InvalidSignature, ValueError):
        return False
    return True


# Audit sources -------------------------------------------------------------------------------


class DatabaseSource:
    """The log as its own database holds it (stored leaf hashes and tiles included)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def checkpoint_notes(self) -> Iterator[str]:
        after = -1
        while True:
            with self._engine.connect() as conn:
                page = ledger.checkpoints(conn, after=after, limit=1000)
            if not page:
                return
            yield from (c.note for c in page)
            after = page[-1].size

    def leaves(self, start: int, end: int) -> Iterable[tuple[int, bytes, bytes | None]]:
        table = ledger.leaves_table
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(table.c.idx, table.c.data, table.c.leaf_hash)
                .where(table.c.idx >= start, table.c.idx < end)
                .order_by(table.c.idx)
            ).all()
        return [(int(i), bytes(d), bytes(h)) for i, d, h in rows]

    def stored_tiles(
        self, wanted: Mapping[tuple[int, int], int]
    ) -> Mapping[tuple[int, int], tuple[bytes, bytes | None]]:
        with self._engine.connect() as conn:
            return ledger.read_stored_tiles(conn, wanted)

    def entry_bundle(self, index: int, width: int) -> bytes:
        """Entry bundle ``index`` as the log serves it; ``EntryTooLarge`` naming a leaf too
        long for it, ``LookupError`` when its leaves are not all stored."""
        with self._engine.connect() as conn:
            bundle = ledger.entry_bundle(conn, index, width)
        if bundle is None:
            raise LookupError("its leaves are not all stored")
        return bundle

    def station_keys(self) -> dict[str, list[bytes]]:
        """Every key of every station, newest first."""
        from medtrace.models import StationKey

        table = StationKey.__table__  # type: ignore[attr-defined]
        keys: dict[str, list[bytes]] = {}
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(table.c.station_id, table.c.public_key).order_by(table.c.id.desc())
            )
            for station_id, key in rows:
                keys.setdefault(str(station_id), []).append(bytes(key))
        return keys


def _refusal(response: httpx.Response) -> dict[str, Any]:
    """The ``detail`` of a refusal in medtrace's shape, or the start of the body as its
    message."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        detail = None
    if not isinstance(detail, dict):
        return {"rule": None, "message": response.text[:200]}
    return detail


class HttpSource:
    """The log as anyone sees it: the public HTTP interface and the tiles."""

    def __init__(self, url: str) -> None:
        self._client = httpx.Client(base_url=url.rstrip("/"), timeout=30)
        self._keys: dict[str, list[bytes]] = {}

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, **params: Any) -> httpx.Response:
        response = self._client.get(path, params=params)
        response.raise_for_status()
        return response

    def public_key(self) -> str:
        vkey: str = self._get("/api/v1/ledger/public-key").json()["vkey"]
        return vkey

    def checkpoint_notes(self) -> Iterator[str]:
        after = -1
        while True:
            page = self._get("/api/v1/ledger/checkpoints", after=after).json()
            if not page:
                return
            yield from (str(c["note"]) for c in page)
            after = int(page[-1]["size"])

    def leaves(self, start: int, end: int) -> Iterable[tuple[int, bytes, bytes | None]]:
        out: list[tuple[int, bytes, bytes | None]] = []
        for first in range(start, end, 1000):
            page = self._get("/api/v1/ledger/leaves", start=first, end=min(first + 1000, end))
            out.extend(
                (int(leaf["index"]), b64decode_canonical(leaf["data"]), None)
                for leaf in page.json()
            )
        return out

    def stored_tiles(
        self, wanted: Mapping[tuple[int, int], int]
    ) -> Mapping[tuple[int, int], tuple[bytes, bytes | None]]:
        from medtrace.services.log import format_tile_index

        found: dict[tuple[int, int], tuple[bytes, bytes | None]] = {}
        for (level, index), width in wanted.items():
            suffix = "" if width == TILE_WIDTH else f".p/{width}"
            response = self._client.get(f"/log/tile/{level}/{format_tile_index(index)}{suffix}")
            if response.status_code == 200:
                found[(level, index)] = (response.content, None)
        return found

    def entry_bundle(self, index: int, width: int) -> bytes:
        """Entry bundle ``index`` from ``/log/tile/entries/``: ``EntryTooLarge`` when the log
        says a leaf in it is too long (``ledger.entry_too_large``), ``LookupError`` naming
        any other answer (its status, and the refusal's rule and message)."""
        from medtrace.services.log import format_tile_index

        suffix = "" if width == TILE_WIDTH else f".p/{width}"
        response = self._client.get(f"/log/tile/entries/{format_tile_index(index)}{suffix}")
        if response.status_code == 200:
            return response.content
        detail = _refusal(response)
        if detail.get("rule") == "ledger.entry_too_large":
            raise EntryTooLarge(int(detail["leaf_index"]), int(detail["leaf_bytes"]))
        raise LookupError(
            f"HTTP {response.status_code}: {detail.get('rule')}: {detail.get('message')}"
        )

    def station_keys(self, station_id: str) -> list[bytes]:
        """Every key the station published (empty if it is unknown)."""
        if station_id not in self._keys:
            response = self._client.get(f"/api/v1/stations/{station_id}")
            self._keys[station_id] = (
                [b64decode_canonical(key["public_key"]) for key in response.json()["keys"]]
                if response.status_code == 200
                else []
            )
        return self._keys[station_id]


# medtrace audit ------------------------------------------------------------------------------


def audit_command(
    url: Annotated[
        str | None,
        typer.Option(help="Audit a log over HTTP (its public interface) instead of the database."),
    ] = None,
    log_key: Annotated[
        str | None,
        typer.Option(
            help="The log's C2SP verifier key to trust (default: the local log key, or the "
            "one the URL publishes, which proves less)."
        ),
    ] = None,
    signatures: Annotated[
        bool, typer.Option(help="Check the station signature inside every custody leaf.")
    ] = True,
    derived: Annotated[
        bool,
        typer.Option(
            help="Check every derived row (events, units, readings, alerts, recalls) against "
            "its leaf (database only)."
        ),
    ] = True,
) -> None:
    """Re-read every leaf, rebuild the tree and check it against every signed checkpoint,
    then every derived row against its leaf.

    Exits 1 naming the first bad leaf index and what is wrong with it, and every derived row
    (table, key, column, stored value, value from the leaf) that differs.
    """
    from medtrace.db import create_db_engine

    http: HttpSource | None = None
    engine: Engine | None = None
    try:
        if url is not None:
            http = HttpSource(url)
            source: DatabaseSource | HttpSource = http
            vkey = log_key or http.public_key()
            station_keys: Callable[[str], Sequence[bytes] | None] = http.station_keys
        else:
            settings = get_settings()
            engine = create_db_engine(settings.resolved_database_url)
            database = DatabaseSource(engine)
            source = database
            key_path = settings.resolved_log_key_path
            if log_key is None and not key_path.exists():
                err_console.print(f"[red]error[/] no log key at {key_path}; pass --log-key")
                raise typer.Exit(code=2)
            vkey = log_key or NoteSigner(settings.ledger.origin, read_key_file(key_path)).vkey
            station_keys = database.station_keys().get
        verifier = NoteVerifier.from_vkey(vkey)
        findings = _run_audit(source, verifier, station_keys if signatures else None)
    except (httpx.HTTPError, CheckpointError) as exc:
        err_console.print(f"[red]error[/] {exc}")
        raise typer.Exit(code=2) from exc
    finally:
        if http is not None:
            http.close()
    rows_checked = engine is not None and derived
    rows_wrong = _run_derived_audit(engine) if engine is not None and derived else 0
    if not findings and not rows_wrong:
        checked = ", and every derived row agrees with its leaf" if rows_checked else ""
        console.print(
            f"[green]OK[/] every leaf, hash, checkpoint and signature checks out{checked}"
        )
        return
    if findings:
        first = next((f for f in findings if f.index >= 0), findings[0])
        where = f"first bad index {first.index}" if first.index >= 0 else "no leaf index"
        err_console.print(f"[red]AUDIT FAILED[/] {len(findings)} finding(s); {where}: {first.what}")
        for finding in findings[:_MAX_FINDINGS_SHOWN]:
            err_console.print(f"  {finding.what}")
    raise typer.Exit(code=1)


def _run_audit(
    source: DatabaseSource | HttpSource,
    verifier: NoteVerifier,
    station_keys: Callable[[str], Sequence[bytes] | None] | None,
) -> list[Finding]:
    check = None
    if station_keys is not None:
        lookup = station_keys

        def check(_index: int, data: bytes) -> str | None:
            return envelope_problem(data, lookup)

    with progress_bar("auditing") as progress:
        task = progress.add_task("leaves", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return audit(source, verifier, check_leaf=check, progress=advance, entries=source)


def _run_derived_audit(engine: Engine) -> int:
    """Check every derived row against its leaf, printing each mismatch as it is found (the
    first ``_MAX_FINDINGS_SHOWN``, stored values escaped: they are anyone's text); return
    how many there are."""
    from medtrace.services.audit import audit_derived, count_derived

    wrong = 0
    with progress_bar("derived rows") as progress:
        task = progress.add_task("rows", total=count_derived(engine))
        for mismatch in audit_derived(engine, progress=lambda n: progress.advance(task, n)):
            wrong += 1
            if wrong <= _MAX_FINDINGS_SHOWN:
                progress.console.print(f"[red]MISMATCH[/] {escape(str(mismatch))}")
    if wrong:
        err_console.print(
            f"[red]AUDIT FAILED[/] {wrong} derived value(s) differ from their leaves"
            + (f" ({_MAX_FINDINGS_SHOWN} shown)" if wrong > _MAX_FINDINGS_SHOWN else "")
        )
    return wrong


# medtrace witness ----------------------------------------------------------------------------


def witness_asgi(witness: Witness) -> FastAPI:
    """The witness's HTTP service: ``POST /add-checkpoint`` (c2sp.org/tlog-witness); a body
    over ``MAX_REQUEST_BYTES`` is refused with 413 while it streams, unread."""

    async def add_checkpoint(request: Request) -> PlainTextResponse:
        body = await request.body()
        try:
            text = body.decode()
        except UnicodeDecodeError:
            return PlainTextResponse("the body is not UTF-8\n", status_code=400)
        try:
            line = witness.add_checkpoint(text)
        except WitnessRefusal as refusal:
            if refusal.size is not None:
                return PlainTextResponse(
                    f"{refusal.size}\n", status_code=409, media_type=SIZE_CONTENT_TYPE
                )
            return PlainTextResponse(f"{refusal.message}\n", status_code=refusal.status)
        return PlainTextResponse(line)

    app = FastAPI(title="medtrace witness", openapi_url=None)
    app.add_middleware(BodyLimit, max_bytes=MAX_REQUEST_BYTES)
    app.post("/add-checkpoint", response_class=PlainTextResponse)(add_checkpoint)
    return app


@witness_app.command("keygen")
def witness_keygen(
    name: Annotated[str, typer.Option(help="The witness's name, e.g. witness.example.org/w1.")],
    key_file: Annotated[Path, typer.Option(help="Key file to write (mode 0600).")],
) -> None:
    """Create the witness's Ed25519 key and print its verifier key for the log's settings."""
    key = create_key_file(key_file)
    console.print(f"witness key: {Cosigner(name, key).vkey}")


@witness_app.command("serve")
def witness_serve(
    name: Annotated[str, typer.Option(help="The witness's name (its key name).")],
    key_file: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="The witness's key file.")
    ],
    state: Annotated[Path, typer.Option(help="The witness's state file (SQLite).")],
    log_key: Annotated[
        list[str], typer.Option(help="A log's C2SP verifier key to witness (repeatable).")
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
) -> None:
    """Serve c2sp.org/tlog-witness add-checkpoint for the given logs.

    The same as ``medtrace serve --role witness``, with options over the settings.
    """
    settings = get_settings()
    witness = settings.witness.model_copy(
        update={"name": name, "key_path": key_file, "state_path": state, "log_keys": log_key}
    )
    settings = settings.model_copy(update={"witness": witness})
    serve_witness(settings, host=host, port=port)


def serve_witness(settings: Settings, *, host: str, port: int) -> None:
    """Run the witness role (``medtrace.roles.open_witness``) over HTTP until stopped."""
    import uvicorn

    from medtrace.roles import open_witness

    try:
        witness = open_witness(settings)
    except (ValueError, CheckpointError) as exc:
        err_console.print(f"[red]error[/] {exc}")
        raise typer.Exit(code=1) from exc
    console.print(f"witness key: {witness.cosigner.vkey}")
    uvicorn.run(witness_asgi(witness), host=host, port=port, log_level="warning")
