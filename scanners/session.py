"""A scanning session at a station: each code read becomes a verdict, and a signed event.

One :class:`Task` holds for the whole session (receive, ship to a GLN, store at a place,
dispense, verify, pack into a case, ...). For each code, :meth:`ScanSession.scan`:

1. turns the code into what an event names (a unit's GTIN + serial, or a case's SSCC; a China
   drug code is looked up on the server, which knows the product it was registered for);
2. asks the server what it knows of a unit or a case (the public verify answer: ``/01/…``,
   ``/00/{sscc}``, ``/cn/…``), or falls back on the last known answer when offline, saying so;
3. in verify mode stops there; in dispense mode refuses, before signing anything, whatever
   is not OK (verify-before-dispense);
4. signs the event, stores it in the outbox (durable before anything is shown as done), asks
   the sender for a pass and waits a moment for the server's answer: done (with the units a
   case or pallet moved), refused (with the rule), or queued (offline, or slow).

The session talks only to the HTTP API and its own SQLite file, never to a database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from medtrace.errors import InvalidInput
from medtrace.protocol.identifiers import (
    ChinaDrugCode,
    Code,
    GS1Data,
    HIBCData,
    digital_link_path,
)
from medtrace.protocol.verdicts import UNCHECKED, Signal, signal_of_rule, signal_of_verdict

from .client import CaptureClient
from .errors import CaptureRefused, ServerUnreachable
from .last_known import LastKnown, UnitStatus
from .outbox import Entry, Outbox, Status
from .sender import Sender
from .station import Station, Target


class Mode(StrEnum):
    """What the station does with every code scanned in a session."""

    RECEIVE = "receive"
    SHIP = "ship"
    STORE = "store"
    DISPENSE = "dispense"
    VERIFY = "verify"
    PACK = "pack"
    UNPACK = "unpack"
    RETURN = "return"
    DESTROY = "destroy"


class Outcome(StrEnum):
    """What became of the scan's action."""

    DONE = "done"
    """The server recorded the event (or had recorded it before)."""
    REFUSED = "refused"
    """The server refused it (the rule is shown); kept in the outbox as refused."""
    QUEUED = "queued"
    """Stored in the outbox; the server has not answered yet (offline or slow)."""
    NOT_SENT = "not sent"
    """The station refused to act (verify-before-dispense); nothing was signed."""
    CHECKED = "checked"
    """Verify mode: nothing to sign."""


@dataclass(frozen=True)
class Task:
    """The session's action and its arguments; checked once, before the first scan."""

    mode: Mode
    to: str | None = None
    """ship, return: the destination GLN."""
    at: str | None = None
    """store: the place inside the site (a fridge's GLN); None stores at the site itself."""
    into: str | None = None
    """pack: the SSCC of the case or pallet the scanned items go into."""

    def __post_init__(self) -> None:
        needs_to = self.mode in (Mode.SHIP, Mode.RETURN)
        if needs_to != (self.to is not None):
            raise ValueError("--to GLN is needed for ship and return, and only for them")
        if (self.mode is Mode.PACK) != (self.into is not None):
            raise ValueError("--into SSCC is needed for pack, and only for it")
        if self.at is not None and self.mode is not Mode.STORE:
            raise ValueError("--at GLN belongs to store")

    def sign(self, station: Station, target: Target) -> dict[str, Any]:
        """The signed event of this task about ``target``."""
        if self.mode is Mode.PACK:
            assert self.into is not None
            return station.sign("pack", {"sscc": self.into}, children=[target])
        if self.mode is Mode.STORE:
            return station.sign("store", target, location_gln=self.at)
        return station.sign(self.mode.value, target, destination_gln=self.to)


@dataclass(frozen=True)
class ScanResult:
    """Everything a station shows for one scan."""

    label: str
    """The scanned item as a person reads it: GTIN and serial, or SSCC."""
    signal: Signal
    outcome: Outcome
    reasons: list[str] = field(default_factory=list)
    rule: str | None = None
    units: int | None = None
    """Units the event moved, per the server (a case or pallet moves all inside it)."""
    status: UnitStatus | None = None
    """What the verdict rests on; ``status.live`` is False for an offline, last known one."""


_DISPENSABLE_STATES = frozenset({"received", "stored"})


class ScanSession:
    """Scans at one station for one task, until closed."""

    def __init__(
        self,
        *,
        station: Station,
        task: Task,
        outbox: Outbox,
        last_known: LastKnown,
        lookups: CaptureClient,
        sender: Sender,
        ack_wait: float = 3.0,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    ) -> None:
        self.station, self.task, self.outbox = station, task, outbox
        self._last_known, self._lookups, self._sender = last_known, lookups, sender
        self._ack_wait = ack_wait
        self._today = today

    def scan(self, code: Code) -> ScanResult:
        """Handle one code. Raises ``InvalidInput`` for a code that names nothing a station
        can move (no serial, a HIBC code, a China code never seen while offline)."""
        try:
            target, status = self._identify(code)
        except CaptureRefused as exc:  # the server refused even to look the code up
            rule = exc.rule
            return ScanResult(
                _code_label(code), signal_of_rule(rule), Outcome.REFUSED, [exc.message], rule=rule
            )
        if status is not None:
            signal, reasons = signal_of_verdict(status.verdict), status.reasons
        else:
            signal, reasons = Signal.OK, []
        label = _label(target) if target else f"China drug code {code}"
        if self.task.mode is Mode.VERIFY:
            return ScanResult(label, signal, Outcome.CHECKED, reasons, status=status)
        if target is None:  # a China drug code no product was registered for
            return ScanResult(label, signal, Outcome.NOT_SENT, reasons, status=status)
        if self.task.mode is Mode.DISPENSE:
            refusal = self._before_dispense(signal, reasons, status)
            if refusal is not None:
                return ScanResult(label, *refusal, status=status)
        return self._act(label, target, signal, reasons, status)

    # --- 1 and 2: what the code names, and what is known of it ---------------------------

    def _identify(self, code: Code) -> tuple[Target | None, UnitStatus | None]:
        if isinstance(code, GS1Data) and code.sscc is not None:
            sscc = code.sscc  # bound here: the lambda outlives the narrowing of ``code``
            target = {"sscc": sscc}
            return target, self._status(
                _key(target), lambda: self._lookups.verify_container(sscc), None
            )
        if isinstance(code, GS1Data):
            gtin, serial = code.unit_key()
            target = {"gtin": gtin, "serial": serial}
            status = self._status(
                _key(target),
                lambda: self._lookups.verify(gtin, serial, lot=code.lot, expiry=code.expiry),
                code.expiry,
            )
            return target, status
        if isinstance(code, ChinaDrugCode):
            return self._identify_cn(code)
        assert isinstance(code, HIBCData)
        raise InvalidInput(
            f"HIBC code of labeler {code.labeler}, product {code.product}: medtrace tracks "
            "units by their GS1 code (GTIN + serial) or China drug code; scan that one",
            rule="scan.not_traceable",
        )

    def _identify_cn(self, code: ChinaDrugCode) -> tuple[Target | None, UnitStatus]:
        """A China drug code names a unit recorded under its product's GTIN with the whole
        code as serial; only the server knows that GTIN, so offline only a code seen before
        (and remembered with its GTIN) can be moved."""
        status = self._status(f"/cn/{code.code}", lambda: self._lookups.verify_cn(code.code), None)
        if status.gtin is None:
            if not status.live:
                raise InvalidInput(
                    f"China drug code {code.code} was never seen at this station and the "
                    "server is unreachable: scan it again once online",
                    rule="scan.offline_unknown_code",
                )
            return None, status
        return {"gtin": status.gtin, "serial": code.code}, status

    def _status(
        self,
        key: str,
        ask: Callable[[], dict[str, Any]],
        printed_expiry: dt.date | None,
    ) -> UnitStatus:
        """The server's answer now, or the last known one offline (re-read for today; a
        unit never seen keeps the expiry printed on its pack, so that much is still
        checked)."""
        if self._sender.offline:
            self._sender.request()  # have the sender try the server again soon
        else:
            try:
                status = UnitStatus.from_answer(ask(), self._now())
                self._last_known.remember(key, status)
                return status
            except ServerUnreachable:
                pass  # fall back on what was known
        known = self._last_known.lookup(key) or UnitStatus(
            UNCHECKED,
            ["offline, and never seen at this station: checked once the scan is sent"],
            None,
            None,
            printed_expiry,
            self._now(),
            live=False,
        )
        return known.as_of(self._today())

    # --- 3: verify before dispense ---------------------------------------------------------

    def _before_dispense(
        self, signal: Signal, reasons: list[str], status: UnitStatus | None
    ) -> tuple[Signal, Outcome, list[str]] | None:
        if signal is not Signal.OK:
            return signal, Outcome.NOT_SENT, [*reasons, "verify-before-dispense: not dispensed"]
        assert status is not None
        if status.holder_gln != self.station.gln or status.state not in _DISPENSABLE_STATES:
            where = f"held by {status.holder_gln}" if status.holder_gln else "not held"
            return (
                Signal.NOT_FOR_THIS_PLACE,
                Outcome.NOT_SENT,
                [f"{where}, {status.state}: not in this pharmacy's stock"],
            )
        return None

    # --- 4: sign, store, send ---------------------------------------------------------------

    def _act(
        self,
        label: str,
        target: Target,
        signal: Signal,
        reasons: list[str],
        status: UnitStatus | None,
    ) -> ScanResult:
        entry = self.outbox.add(self.task.sign(self.station, target))
        self._sender.wait(self._sender.request(), self._ack_wait)
        settled = self.outbox.get(entry.event_id)
        assert settled is not None
        return _settled(label, signal, reasons, status, settled, self._sender)

    def _now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


def _settled(
    label: str,
    signal: Signal,
    reasons: list[str],
    status: UnitStatus | None,
    entry: Entry,
    sender: Sender,
) -> ScanResult:
    if entry.status is Status.SENT:
        return ScanResult(label, signal, Outcome.DONE, reasons, units=entry.units, status=status)
    if entry.status is Status.REFUSED:
        return ScanResult(
            label,
            signal_of_rule(entry.rule or ""),
            Outcome.REFUSED,
            [entry.message or ""],
            rule=entry.rule,
            status=status,
        )
    why = sender.problem.diagnostics() if sender.problem else "the server has not answered yet"
    return ScanResult(label, signal, Outcome.QUEUED, [*reasons, why], status=status)


def _key(target: Target) -> str:
    if "sscc" in target:
        return f"/00/{target['sscc']}"
    return digital_link_path(target["gtin"], target["serial"])


def _label(target: Target) -> str:
    if "sscc" in target:
        return f"SSCC {target['sscc']}"
    return f"GTIN {target['gtin']} serial {target['serial']}"


def _code_label(code: Code) -> str:
    """A code as a person reads it, before the server has said what it names (a HIBC code
    is refused before any lookup)."""
    if isinstance(code, ChinaDrugCode):
        return f"China drug code {code.code}"
    assert isinstance(code, GS1Data)
    return code.hri()
