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
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from medtrace import ledger
from medtrace.documents import DocumentStore, check_pdf
from medtrace.errors import Conflict, CustodyViolation, InvalidInput, NotFound
from medtrace.models import Participant, Role, utcnow
from medtrace.models.lots import LotDocument, LotRecord, Product, ProductColdChain
from medtrace.protocol.envelope import event_id, leaf_bytes
from medtrace.protocol.identifiers import in_company_prefix
from medtrace.protocol.keys import b64
from medtrace.schemas.capture import EnvelopeIn
from medtrace.schemas.lots import (
    ColdChainLimitsIn,
    DocumentPublic,
    LotPublic,
    LotRecordEvent,
    LotVersionPublic,
    ProductInfo,
)
from medtrace.schemas.participants import ParticipantPublic
from medtrace.schemas.verify import VerifyDocument, VerifyLotRecord
from medtrace.services.signed import check_signed
from medtrace.store import participants as participant_store


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
            ledger.begin_append(conn)
            leaf_index = ledger.append_leaves(conn, [leaf_bytes(envelope.model_dump())])
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
    record = check_signed(
        session=session,
        participant=participant,
        envelope=envelope,
        model=LotRecordEvent,
        rule_prefix="lot",
    )
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
        check_pdf(upload.filename, upload.data)
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
    for name, value in record.product.model_dump(exclude={"cold_chain"}).items():
        setattr(product, name, value)
    session.add(product)
    limits = session.get(ProductColdChain, record.gtin) or ProductColdChain(gtin=record.gtin)
    given = record.product.cold_chain or ColdChainLimitsIn()
    for name, value in given.model_dump().items():
        setattr(limits, name, value)
    limits.updated_at = utcnow()
    session.add(limits)
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
    rows = session.exec(_LOT_RECORD_VERSIONS, params={"gtin": gtin, "lot": lot}).all()
    if not rows:
        raise NotFound(f"lot {lot} of GTIN {gtin} has no record", rule="lot.unknown")
    product = session.get(Product, gtin)
    info = None if product is None else ProductInfo.model_validate(product, from_attributes=True)
    limits = session.get(ProductColdChain, gtin)
    if info is not None and limits is not None:
        given = ColdChainLimitsIn.model_validate(limits, from_attributes=True)
        if any(value is not None for value in given.model_dump().values()):
            info = info.model_copy(update={"cold_chain": given})
    return LotPublic(
        gtin=gtin,
        lot=lot,
        product=info,
        versions=[_version_public(session, row, base_url) for row in rows],
    )


#: Built once (every verify runs it): building a statement costs more than running it.
_LOT_RECORD_VERSIONS = (
    select(LotRecord)
    .where(col(LotRecord.gtin) == bindparam("gtin"), col(LotRecord.lot) == bindparam("lot"))
    .order_by(col(LotRecord.version))
)


def provable_lot_records(
    *, session: Session, gtin: str, lot: str, checkpoint_size: int, base_url: str
) -> list[VerifyLotRecord]:
    """Every version of a lot's record with its leaf and inclusion proof, oldest first.

    The readable fields, documents included, are read from the signed leaf, so they are
    exactly what the manufacturer's station signed; a reader hashes each downloaded file and
    compares it with the ``sha256`` here.
    """
    rows = session.exec(_LOT_RECORD_VERSIONS, params={"gtin": gtin, "lot": lot}).all()
    if not rows:
        return []
    conn = session.connection()
    indexes = [row.leaf_index for row in rows]
    leaves = ledger.leaves_at(conn, indexes)
    proofs = ledger.inclusion_proofs_at(
        conn, [i for i in indexes if i < checkpoint_size], checkpoint_size
    )
    return [
        _provable_record(session, row, leaves[row.leaf_index], proofs.get(row.leaf_index), base_url)
        for row in rows
    ]


def _provable_record(
    session: Session, row: LotRecord, leaf: bytes, proof: list[bytes] | None, base_url: str
) -> VerifyLotRecord:
    signed = json.loads(leaf)["event"]
    maker = participant_store.get_participant_by_gln(session=session, gln=signed["gln"])
    return VerifyLotRecord(
        version=signed["version"],
        leaf_index=row.leaf_index,
        leaf=b64(leaf),
        inclusion_proof=None if proof is None else [h.hex() for h in proof],
        event_id=row.event_id,
        event_time=signed["event_time"],
        gln=signed["gln"],
        station_id=signed["station_id"],
        participant=None
        if maker is None
        else ParticipantPublic.model_validate(maker, from_attributes=True),
        documents=[
            VerifyDocument(**document, url=f"{base_url}/api/v1/documents/{document['sha256']}")
            for document in signed["documents"]
        ],
    )
