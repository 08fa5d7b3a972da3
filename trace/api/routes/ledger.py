"""The log: checkpoints, public key, leaves and proofs (RFC 9162, C2SP checkpoint).

Proofs are for a fixed tree size, so they never change: they are served with long-lived
cache headers. The checkpoint moves, so it is not cached.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import PlainTextResponse

from medtrace.api.deps import SessionDep, SettingsDep, SignerDep
from medtrace.bounds import MAX_BIGINT, BigInt
from medtrace.ledger import CosignatureVerifier
from medtrace.schemas.ledger import CheckpointPublic, LeafPublic, PublicKeyPublic
from medtrace.services import log

router = APIRouter(prefix="/api/v1/ledger", tags=["ledger"])

IMMUTABLE = "public, max-age=31536000, immutable"


@router.get("/checkpoint", response_class=PlainTextResponse)
def read_checkpoint(
    session: SessionDep,
    settings: SettingsDep,
    witnessed: Annotated[
        bool, Query(description="The latest one that meets the witness policy (k of n)")
    ] = False,
) -> PlainTextResponse:
    """The latest checkpoint, a C2SP signed note with its cosignatures (``text/plain``)."""
    if witnessed:
        stored = log.witnessed_checkpoint(
            session=session,
            witnesses=[CosignatureVerifier.from_vkey(k) for k in settings.ledger.witness_keys],
            quorum=settings.ledger.witness_quorum,
        )
    else:
        stored = log.latest_checkpoint(session=session)
    return PlainTextResponse(stored.note, headers={"Cache-Control": "no-cache"})


@router.get("/checkpoints", response_model=list[CheckpointPublic])
def read_checkpoints(
    session: SessionDep, after: Annotated[int, Query(ge=-1, le=MAX_BIGINT)] = -1
) -> list[CheckpointPublic]:
    """The history: stored checkpoints with ``size > after``, oldest first, 1 000 a page."""
    return log.checkpoints(session=session, after=after)


@router.get("/public-key", response_model=PublicKeyPublic)
def read_public_key(signer: SignerDep) -> PublicKeyPublic:
    """The key that signs checkpoints, raw and as a C2SP verifier key."""
    return log.public_key(signer)


@router.get("/leaves", response_model=list[LeafPublic])
def read_leaves(
    session: SessionDep, start: Annotated[BigInt, Query()], end: Annotated[BigInt, Query()]
) -> list[LeafPublic]:
    """Leaves ``start <= index < end`` (base64), up to 1 000 per request."""
    return log.leaves(session=session, start=start, end=end)


@router.get("/proof/inclusion", response_model=list[str])
def read_inclusion_proof(
    session: SessionDep,
    response: Response,
    index: Annotated[BigInt, Query()],
    size: Annotated[BigInt, Query()],
) -> list[str]:
    """Inclusion proof (hex hashes) of leaf ``index`` in the signed tree of ``size``."""
    proof = log.inclusion_proof(session=session, index=index, size=size)
    response.headers["Cache-Control"] = IMMUTABLE
    return proof


@router.get("/proof/consistency", response_model=list[str])
def read_consistency_proof(
    session: SessionDep,
    response: Response,
    size1: Annotated[BigInt, Query(alias="from")],
    size2: Annotated[BigInt, Query(alias="to")],
) -> list[str]:
    """Consistency proof (hex hashes) between the signed trees of sizes ``from`` and ``to``."""
    proof = log.consistency_proof(session=session, size1=size1, size2=size2)
    response.headers["Cache-Control"] = IMMUTABLE
    return proof
