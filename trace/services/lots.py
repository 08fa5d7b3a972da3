"""Lot records: a manufacturer's signed account of a lot, with its inspection documents.

Registering (version 1) and amending (version n+1) are the same act: the manufacturer's
station signs a ``lot_record`` event naming each document by SHA-256, and uploads the files.
Every check runs before anything is stored: the station and its signature, the company
prefix, the dates, each file (a PDF, within the size limit, exactly the files the record
names) and the version sequence. Then the files are stored by content and the leaf, the
record and its documents commit in one transaction. A retry of the same signed record returns
it unchanged.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from medtrace.documents import DocumentStore
from medtrace.envelope import CanonicalEnvelope, event_id, leaf_bytes
from medtrace.errors import Conflict, CustodyViolation, InvalidInput, NotFound, SignatureRejected
from medtrace.identifiers import in_company_prefix
from medtrace.key_history import check_key_usable, signing_key
from medtrace.ledger import sql as ledger_sql
from medtrace.lot_schemas import (
    DocumentPublic,
    LotPublic,
    LotRecordEvent,
    LotVersionPublic,
    ProductInfo,
)
from medtrace.models import Participant, Role
from medtrace.models.lots import LotDocument, LotRecord, Product
from medtrace.schemas import EnvelopeIn
from medtrace.store import stations as station_store

PDF_MAGIC = b"%PDF-"


@dataclass(frozen=True)
class Upload:
    """A file as received: its name and bytes."""

    filename: str
    data: bytes


def register_lot(
    *,
    session: Session,
    documents: DocumentStore,
    participant: Participant,
    envelope: EnvelopeIn,
    uploads: Sequence[Upload],
    max_document_bytes: int,
    base_url: str,
) -> LotVersionPublic:
    """Record a signed lot record and its documents; all or nothing."""
    record = _check_record(session, participant, envelope)
    eid = event_id(envelope.event)
    known = session.exec(select(LotRecord).where(col(LotRecord.event_id) == eid)).first()
    if known is not None:
        return _version_public(session, known, base_url)
    _check_uploads(record, uploads, max_document_bytes)
    _check_version(session, record)
    session.rollback()  # reads end here; the write below is one transaction of its own
    for upload in uploads:
        documents.put(upload.data)
    try:
        with session.begin():
            conn = session.connection()
            ledger_sql.begin_append(conn)
            leaf_index = ledger_sql.append_leaves(conn, [leaf_bytes(envelope.model_dump())])
            row = _write(session, participant, record, eid, leaf_index)
    except IntegrityError as exc:
        raise Conflict(
            "another version of this lot was recorded at the same moment; retry",
            rule="store.conflict",
        ) from exc
    return _version_public(session, row, base_url)


def _check_record(
    session: Session, participant: Participant, envelope: EnvelopeIn
) -> LotRecordEvent:
    station = station_store.get_station(session=session, station_id=envelope.station_id)
    if station is None or station.participant_id != participant.id or not station.active:
        raise SignatureRejected(
            f"station {envelope.station_id!r} is not an active station of {participant.gln}",
            rule="station.unknown" if station is None else "station.not_yours",
        )
    keys = station_store.get_station_keys(session=session, station_ids=[station.station_id])
    key = signing_key(keys[station.station_id], CanonicalEnvelope.of(envelope.model_dump()).verify)
    try:
        record = LotRecordEvent.model_validate(envelope.event)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "event"
        raise InvalidInput(f"event.{where}: {first['msg']}", rule="lot.invalid") from exc
    check_key_usable(key, owner="station", name=station.station_id, signed_at=record.event_time)
    if record.station_id != envelope.station_id or record.gln != participant.gln:
        raise InvalidInput("the record's station or GLN is not the sender's", rule="lot.sender")
    if participant.role is not Role.MANUFACTURER:
        raise CustodyViolation("only a manufacturer records lots", rule="lot.not_a_manufacturer")
    if not (
        participant.company_prefix and in_company_prefix(record.gtin, participant.company_prefix)
    ):
        raise CustodyViolation(
            f"GTIN {record.gtin} is outside company prefix {participant.company_prefix}",
            rule="lot.outside_company_prefix",
        )
    if record.expiry < record.production_date:
        raise InvalidInput(
            f"expiry {record.expiry} is before production {record.production_date}",
            rule="lot.expiry_before_production",
        )
    return record


def _check_uploads(record: LotRecordEvent, uploads: Sequence[Upload], limit: int) -> None:
    for upload in uploads:
        if len(upload.data) > limit:
            raise InvalidInput(
                f"{upload.filename} is {len(upload.data)} bytes; the limit is {limit}",
                rule="document.too_large",
            )
        if not upload.data.startswith(PDF_MAGIC):
            raise InvalidInput(f"{upload.filename} is not a PDF", rule="document.not_pdf")
    sent = Counter((hashlib.sha256(u.data).hexdigest(), len(u.data)) for u in uploads)
    named = Counter((d.sha256, d.size) for d in record.documents)
    if sent != named:
        raise InvalidInput(
            "the uploaded files are not exactly the documents the signed record names "
            "(compare their SHA-256 and sizes)",
            rule="document.mismatch",
        )


def _check_version(session: Session, record: LotRecordEvent) -> None:
    latest = session.exec(
        select(func.max(LotRecord.version)).where(
            col(LotRecord.gtin) == record.gtin, col(LotRecord.lot) == record.lot
        )
    ).one()
    expected = (latest or 0) + 1
    if record.version == expected:
        return
    if record.version == 1:
        raise Conflict(f"lot {record.lot} is already registered", rule="lot.already_registered")
    raise Conflict(
        f"version {record.version} of lot {record.lot}: the next version is {expected}",
        rule="lot.bad_version",
    )


def _write(
    session: Session, participant: Participant, record: LotRecordEvent, eid: str, leaf_index: int
) -> LotRecord:
    assert participant.id is not None
    row = LotRecord(
        gtin=record.gtin,
        lot=record.lot,
        version=record.version,
        production_date=record.production_date,
        expiry=record.expiry,
        quantity=record.quantity,
        event_id=eid,
        leaf_index=leaf_index,
        station_id=record.station_id,
    )
    session.add(row)
    session.flush()
    assert row.id is not None
    session.add_all(
        LotDocument(
            lot_record_id=row.id, kind=d.kind, filename=d.filename, sha256=d.sha256, size=d.size
        )
        for d in record.documents
    )
    product = session.get(Product, record.gtin) or Product(
        gtin=record.gtin, participant_id=participant.id, name_en=record.product.name_en
    )
    for name, value in record.product.model_dump().items():
        setattr(product, name, value)
    session.add(product)
    return row


def _version_public(session: Session, row: LotRecord, base_url: str) -> LotVersionPublic:
    docs = session.exec(select(LotDocument).where(col(LotDocument.lot_record_id) == row.id)).all()
    return LotVersionPublic(
        version=row.version,
        production_date=row.production_date,
        expiry=row.expiry,
        quantity=row.quantity,
        event_id=row.event_id,
        leaf_index=row.leaf_index,
        station_id=row.station_id,
        recorded_at=row.recorded_at,
        documents=[
            DocumentPublic.model_validate(
                {
                    "kind": d.kind,
                    "filename": d.filename,
                    "sha256": d.sha256,
                    "size": d.size,
                    "url": f"{base_url}/api/v1/documents/{d.sha256}",
                }
            )
            for d in docs
        ],
    )


def get_lot(*, session: Session, gtin: str, lot: str, base_url: str) -> LotPublic:
    """A lot's product and the history of its record; ``NotFound`` if never recorded."""
    rows = session.exec(
        select(LotRecord)
        .where(col(LotRecord.gtin) == gtin, col(LotRecord.lot) == lot)
        .order_by(col(LotRecord.version))
    ).all()
    if not rows:
        raise NotFound(f"lot {lot} of GTIN {gtin} has no record", rule="lot.unknown")
    product = session.get(Product, gtin)
    info = None if product is None else ProductInfo.model_validate(product, from_attributes=True)
    return LotPublic(
        gtin=gtin,
        lot=lot,
        product=info,
        versions=[_version_public(session, row, base_url) for row in rows],
    )
