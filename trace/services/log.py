"""Read access to the ledger for the API: checkpoints, leaves and proofs.

Every request is checked against the latest signed checkpoint before the ledger is asked, so
a proof past the tree size, a negative index or ``from > to`` is an ``InvalidInput`` with the
reason, never a server error.
"""

from __future__ import annotations

from sqlmodel import Session

from medtrace.errors import InvalidInput, NotFound
from medtrace.keys import b64
from medtrace.ledger import NoteSigner
from medtrace.ledger import sql as ledger_sql
from medtrace.schemas import LeafPublic, PublicKeyPublic

MAX_LEAVES_PER_PAGE = 1_000


def public_key(signer: NoteSigner) -> PublicKeyPublic:
    """The log's public key in raw and C2SP verifier-key forms."""
    return PublicKeyPublic(
        key_name=signer.name, public_key=b64(signer.public_key_raw), vkey=signer.vkey
    )


def latest_checkpoint(*, session: Session) -> ledger_sql.StoredCheckpoint:
    """The latest signed checkpoint; ``NotFound`` before the first integration."""
    checkpoint = ledger_sql.latest_checkpoint(session.connection())
    if checkpoint is None:
        raise NotFound("the log has no checkpoint yet", rule="ledger.no_checkpoint")
    return checkpoint


def leaves(*, session: Session, start: int, end: int) -> list[LeafPublic]:
    """Committed leaves ``start <= index < end``, at most ``MAX_LEAVES_PER_PAGE``."""
    if start < 0 or end <= start:
        raise InvalidInput("need 0 <= start < end", rule="ledger.bad_range")
    if end - start > MAX_LEAVES_PER_PAGE:
        raise InvalidInput(
            f"at most {MAX_LEAVES_PER_PAGE} leaves per request", rule="ledger.range_too_large"
        )
    rows = ledger_sql.leaf_data(session.connection(), start, end)
    return [LeafPublic(index=index, data=b64(data)) for index, data in rows]


def _check_size(session: Session, size: int) -> None:
    latest = latest_checkpoint(session=session).size
    if not 0 < size <= latest:
        raise InvalidInput(
            f"size {size} is not a signed tree size (the latest checkpoint has size {latest})",
            rule="ledger.bad_size",
        )


def inclusion_proof(*, session: Session, index: int, size: int) -> list[str]:
    """Hex inclusion proof of leaf ``index`` in the signed tree of ``size`` leaves."""
    _check_size(session, size)
    if not 0 <= index < size:
        raise InvalidInput(f"need 0 <= index < size ({size})", rule="ledger.bad_index")
    return [h.hex() for h in ledger_sql.inclusion_proof_at(session.connection(), index, size)]


def consistency_proof(*, session: Session, size1: int, size2: int) -> list[str]:
    """Hex consistency proof from the tree of ``size1`` leaves to that of ``size2``."""
    _check_size(session, size2)
    if not 0 < size1 <= size2:
        raise InvalidInput("need 0 < from <= to", rule="ledger.bad_range")
    return [h.hex() for h in ledger_sql.consistency_proof_at(session.connection(), size1, size2)]
