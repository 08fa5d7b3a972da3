"""Lot records and their documents.

``POST /api/v1/lots`` takes a multipart form: ``envelope`` (the signed ``lot_record``
envelope, JSON) and ``documents`` (the PDF files it names). Lots and documents are public:
a patient or pharmacist who scans a pack may read its batch's inspection report, and check
the file against the hash on the ledger.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile, status
from pydantic import ValidationError

from medtrace.api.deps import CurrentParticipant, SessionDep, SettingsDep
from medtrace.config import Settings
from medtrace.documents import DiskDocumentStore, DocumentStore
from medtrace.errors import InvalidInput, NotFound
from medtrace.schemas.capture import EnvelopeIn
from medtrace.schemas.lots import LotPublic, LotVersionPublic
from medtrace.services import lots

router = APIRouter(prefix="/api/v1", tags=["lots"])


def get_document_store(settings: SettingsDep) -> DocumentStore:
    """The configured document store (files on disk under the data directory)."""
    return DiskDocumentStore(settings.resolved_document_dir)


DocumentsDep = Annotated[DocumentStore, Depends(get_document_store)]


async def _read(upload: UploadFile, settings: Settings) -> lots.Upload:
    data = await upload.read(settings.lots.max_document_bytes + 1)
    return lots.Upload(filename=upload.filename or "document", data=data)


@router.post("/lots", response_model=LotVersionPublic, status_code=status.HTTP_201_CREATED)
async def register_lot(
    participant: CurrentParticipant,
    session: SessionDep,
    settings: SettingsDep,
    store: DocumentsDep,
    envelope: Annotated[str, Form(description="The signed lot_record envelope (JSON)")],
    documents: Annotated[list[UploadFile], File(description="The PDFs it names")] = [],  # noqa: B006
) -> LotVersionPublic:
    """Register a lot (version 1) or amend it (the next version), with its documents."""
    try:
        signed = EnvelopeIn.model_validate_json(envelope)
    except ValidationError as exc:
        raise InvalidInput(f"envelope: {exc.errors()[0]['msg']}", rule="lot.invalid") from exc
    uploads = [await _read(upload, settings) for upload in documents]
    return lots.register_lot(
        session=session,
        documents=store,
        participant=participant,
        envelope=signed,
        uploads=uploads,
        max_document_bytes=settings.lots.max_document_bytes,
        base_url=settings.public_url,
    )


@router.get("/lots/{gtin}/{lot}", response_model=LotPublic)
def read_lot(gtin: str, lot: str, session: SessionDep, settings: SettingsDep) -> LotPublic:
    """A lot's product and every version of its record, with document links."""
    return lots.get_lot(session=session, gtin=gtin, lot=lot, base_url=settings.public_url)


@router.get("/documents/{sha256}", response_class=Response)
def read_document(sha256: str, store: DocumentsDep) -> Response:
    """A document by its SHA-256; the same hash never names other bytes, so it is cached.
    It is a download (``Content-Disposition: attachment``), never shown in this origin."""
    data = store.get(sha256)
    if data is None:
        raise NotFound(f"no document {sha256}", rule="document.unknown")
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Cache-Control": "public, max-age=31536000, immutable",
            "Content-Disposition": f'attachment; filename="{sha256}.pdf"',
        },
    )
