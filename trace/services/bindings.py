"""Sensor bindings and grants: where a participant's sensor measured, and who may bind one.

A binding says a sensor measured at a place (a GLN) or with a shipment (an SSCC) from a time
on. Its owner may bind it where it holds the unit (its site, a place its store events named,
a shipment it ships or receives) or where the holder granted it; the history of a unit judges
the bindings again when it is read (``medtrace.services.temperature``).
"""

from __future__ import annotations

import datetime as dt

from biip import ParseError
from biip.sscc import Sscc
from sqlmodel import Session

from medtrace.errors import Forbidden, InvalidInput, NotFound
from medtrace.models import Participant, Role, as_utc, utcnow
from medtrace.models.iot import BindingKind, Sensor, SensorBinding, SensorGrant
from medtrace.protocol.identifiers import parse_gln
from medtrace.schemas.sensors import BindingCreate, BindingPublic, GrantCreate, GrantPublic
from medtrace.services.devices import SENSORS, get_device, own_device
from medtrace.store import grant_rows
from medtrace.store import participants as participant_store
from medtrace.store import readings as reading_store

#: How far ahead of the server's clock a binding may start (a logger's clock runs ahead).
CLOCK_SKEW = dt.timedelta(minutes=5)


# --- bindings -------------------------------------------------------------------------------


def _binding_public(binding: SensorBinding) -> BindingPublic:
    assert binding.id is not None
    return BindingPublic(
        id=binding.id,
        sensor_id=binding.sensor_id,
        kind=binding.kind,
        target=binding.target,
        valid_from=as_utc(binding.valid_from),
        valid_to=None if binding.valid_to is None else as_utc(binding.valid_to),
    )


def _binding_target(kind: BindingKind, target: str) -> str:
    if kind is BindingKind.PLACE:
        return parse_gln(target)
    try:
        return Sscc.parse(target).value
    except ParseError as exc:
        raise InvalidInput(f"SSCC {target!r}: {exc}", rule="gs1.sscc_format") from exc


def _aware(moment: dt.datetime, name: str) -> dt.datetime:
    """``moment`` in UTC; a naive time, or one whose offset moves it out of the years a
    datetime holds (year 1 at +05:00), is refused."""
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} needs a time zone (e.g. Z)", rule="binding.naive_time")
    try:
        return moment.astimezone(dt.UTC)
    except OverflowError as exc:
        raise InvalidInput(
            f"{name} {moment.isoformat()} is out of range", rule="binding.time_out_of_range"
        ) from exc


def _check_start(
    sensor: Sensor, start: dt.datetime, now: dt.datetime, backdate: dt.timedelta
) -> None:
    """A binding starts no earlier than its sensor's registration (it measured nothing for
    anyone before), nor than ``backdate`` ago (the replay window: readings older than that
    could have been collected anywhere), nor ahead of the clock by more than ``CLOCK_SKEW``."""
    if start < as_utc(sensor.created_at):
        raise InvalidInput(
            f"valid_from {start.isoformat()} precedes the registration of sensor "
            f"{sensor.sensor_id!r} ({as_utc(sensor.created_at).isoformat()})",
            rule="binding.before_registration",
        )
    if start < now - backdate:
        raise InvalidInput(
            f"valid_from may be at most {backdate} in the past", rule="binding.too_old"
        )
    if start > now + CLOCK_SKEW:
        raise InvalidInput("valid_from is in the future", rule="binding.in_future")


def _holds(session: Session, participant: Participant, kind: BindingKind, target: str) -> bool:
    """Whether ``participant`` holds the place (its GLN, or a place inside its site its own
    store events named) or is a party to the shipment: it allocated the SSCC (its GS1 company
    prefix follows the extension digit: a logger goes on a pallet before it leaves), shipped
    it, is its destination or holds it. medtrace records no carrier, so a carrier's logger
    needs a grant."""
    if kind is BindingKind.PLACE:
        return target == participant.gln or reading_store.stores_at(
            session=session, gln=participant.gln, location=target
        )
    prefix = participant.company_prefix
    return bool(prefix and target[1:].startswith(prefix)) or participant.gln in (
        reading_store.shipment_parties(session=session, sscc=target)
    )


def may_bind(session: Session, participant: Participant, kind: BindingKind, target: str) -> bool:
    """Whether ``participant``'s sensors may be bound to the target now: it holds it
    (``_holds``) or holds a grant not revoked from who does."""
    assert participant.id is not None
    return _holds(session, participant, kind, target) or reading_store.has_active_grant(
        session=session, grantee_id=participant.id, kind=kind, target=target
    )


def _check_may_bind(
    session: Session, participant: Participant, kind: BindingKind, target: str
) -> None:
    if may_bind(session, participant, kind, target):
        return
    raise Forbidden(
        f"{participant.gln} neither holds {kind} {target} nor has its holder's grant",
        rule="sensor.binding_not_authorised",
    )


def bind_sensor(
    *,
    session: Session,
    participant: Participant,
    sensor_id: str,
    binding_in: BindingCreate,
    backdate: dt.timedelta,
) -> BindingPublic:
    """Bind one of the participant's sensors to a place or shipment from ``valid_from``
    (default now).

    The participant must hold the place or be a party to the shipment, or have a grant from
    who does (``Forbidden``, ``sensor.binding_not_authorised``); ``valid_from`` is checked by
    ``_check_start``. A sensor measures in one place at a time: a binding still open when a
    later one starts is closed at that start.
    """
    target = _binding_target(binding_in.kind, binding_in.target)
    now = utcnow()
    start = now if binding_in.valid_from is None else _aware(binding_in.valid_from, "valid_from")
    end = None if binding_in.valid_to is None else _aware(binding_in.valid_to, "valid_to")
    if end is not None and end <= start:
        raise InvalidInput("valid_to must be after valid_from", rule="binding.empty_range")
    with session.begin():
        sensor = own_device(session, SENSORS, participant, sensor_id)
        _check_start(sensor, start, now, backdate)
        _check_may_bind(session, participant, binding_in.kind, target)
        for previous in reading_store.open_bindings(session=session, sensor_id=sensor_id):
            if as_utc(previous.valid_from) < start:
                previous.valid_to = start
        binding = reading_store.add_binding(
            session=session,
            binding=SensorBinding(
                sensor_id=sensor_id,
                kind=binding_in.kind,
                target=target,
                valid_from=start,
                valid_to=end,
            ),
        )
        public = _binding_public(binding)
    return public


# --- grants ---------------------------------------------------------------------------------


def _grant_public(grant: SensorGrant, grantor_gln: str, grantee_gln: str) -> GrantPublic:
    assert grant.id is not None
    return GrantPublic(
        id=grant.id,
        grantor=grantor_gln,
        grantee=grantee_gln,
        kind=grant.kind,
        target=grant.target,
        granted_at=as_utc(grant.granted_at),
        revoked_at=None if grant.revoked_at is None else as_utc(grant.revoked_at),
    )


def grant_binding(
    *, session: Session, participant: Participant, grant_in: GrantCreate
) -> GrantPublic:
    """Let ``grant_in.grantee``'s sensors measure at a place or with a shipment the caller
    holds, from now until revoked. ``Forbidden`` (``sensor.grant_not_authorised``) if the
    caller does not hold it, ``NotFound`` for an unknown grantee, ``InvalidInput`` for
    oneself."""
    target = _binding_target(grant_in.kind, grant_in.target)
    grantee_gln = parse_gln(grant_in.grantee)
    if grantee_gln == participant.gln:
        raise InvalidInput("your own sensors need no grant", rule="grant.self")
    assert participant.id is not None
    with session.begin():
        grantee = participant_store.get_participant_by_gln(session=session, gln=grantee_gln)
        if grantee is None or grantee.id is None:
            raise NotFound(f"no participant with GLN {grantee_gln}", rule="participant.unknown")
        if not _holds(session, participant, grant_in.kind, target):
            raise Forbidden(
                f"{participant.gln} does not hold {grant_in.kind} {target}: only who does "
                "may grant it",
                rule="sensor.grant_not_authorised",
            )
        grant = reading_store.add_grant(
            session=session,
            grant=SensorGrant(
                grantor_id=participant.id,
                grantee_id=grantee.id,
                kind=grant_in.kind,
                target=target,
            ),
        )
        public = _grant_public(grant, participant.gln, grantee_gln)
    return public


def revoke_grant(*, session: Session, participant: Participant, grant_id: int) -> GrantPublic:
    """Revoke a grant the caller gave: its grantee's readings stop counting from now (those
    before still count). Revoking a revoked grant changes nothing. ``NotFound``
    (``grant.unknown``), ``Forbidden`` (``grant.not_yours``) for someone else's."""
    with session.begin():
        grant = reading_store.get_grant(session=session, grant_id=grant_id)
        if grant is None:
            raise NotFound(f"no grant {grant_id}", rule="grant.unknown")
        if grant.grantor_id != participant.id:
            raise Forbidden(f"grant {grant_id} is not yours to revoke", rule="grant.not_yours")
        if grant.revoked_at is None:
            grant.revoked_at = utcnow()
            session.add(grant)
            session.flush()
        grantee = participant_store.get_participant(
            session=session, participant_id=grant.grantee_id
        )
        assert grantee is not None
        public = _grant_public(grant, participant.gln, grantee.gln)
    return public


def list_grants(*, session: Session, participant: Participant) -> list[GrantPublic]:
    """The grants the caller gave or received, oldest first (a regulator's: every grant)."""
    owner_id = None if participant.role is Role.REGULATOR else participant.id
    rows = grant_rows.list_grants(SensorGrant, session=session, participant_id=owner_id)
    return [_grant_public(*row) for row in rows]


def list_bindings(*, session: Session, sensor_id: str) -> list[BindingPublic]:
    """A sensor's bindings, oldest first."""
    get_device(session, SENSORS, sensor_id)
    return [
        _binding_public(b)
        for b in reading_store.sensor_bindings(session=session, sensor_id=sensor_id)
    ]
