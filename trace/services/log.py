"""Read access to the ledger for the API: checkpoints, leaves, proofs and tiles.

Every request is checked against the latest signed checkpoint before the ledger is asked, so
a proof past the tree size, a negative index or ``from > to`` is an ``InvalidInput`` with the
reason, never a server error. Tiles follow c2sp.org/tlog-tiles.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel import Session

from medtrace import ledger
from medtrace.bounds import MAX_BIGINT
from medtrace.errors import InvalidInput, NotFound
from medtrace.ledger import (
    TILE_WIDTH,
    CosignatureVerifier,
    EntryTooLarge,
    NoteSigner,
    count_cosignatures,
)
from medtrace.protocol.keys import b64
from medtrace.schemas.ledger import CheckpointPublic, LeafPublic, PublicKeyPublic

MAX_LEAVES_PER_PAGE = 1_000
MAX_CHECKPOINTS_PER_PAGE = 1_000
_WITNESSED_SCAN = 100
"""How many recent checkpoints are searched for one that meets the witness policy."""

_MAX_TILE_LEVEL = 63
#: The largest tile index whose leaves a BIGINT leaf index can number: a larger one is
#: refused before it reaches the store (where it would overflow the column's type).
_MAX_TILE_INDEX = MAX_BIGINT // TILE_WIDTH
_GROUPS = -(-len(str(_MAX_TILE_INDEX)) // 3)  # groups of three digits it takes
_TILE_INDEX = re.compile(rf"(?:x\d{{3}}/){{0,{_GROUPS - 1}}}\d{{3}}")


def public_key(signer: NoteSigner) -> PublicKeyPublic:
    """The log's public key in raw and C2SP verifier-key forms."""
    return PublicKeyPublic(
        key_name=signer.name, public_key=b64(signer.public_key_raw), vkey=signer.vkey
    )


@dataclass(frozen=True)
class LedgerStatus:
    """How far the log's integration has come, for monitoring.

    ``lag_seconds`` is how long leaves have waited for the sequencer: the age of the latest
    checkpoint while leaves beyond it exist, 0 once every leaf is integrated (leaves carry no
    time of their own, so this is an upper bound of the oldest one's wait).
    """

    leaves: int
    checkpoint_size: int
    lag_seconds: float

    @property
    def lag_leaves(self) -> int:
        """Leaves captured but not yet covered by a signed checkpoint."""
        return self.leaves - self.checkpoint_size


def ledger_status(*, session: Session, now: dt.datetime) -> LedgerStatus:
    """The log's size, its latest checkpoint's size and the integration lag at ``now``."""
    conn = session.connection()
    leaves = ledger.committed_size(conn)
    latest = ledger.latest_checkpoint_time(conn)
    if latest is None:
        return LedgerStatus(leaves=leaves, checkpoint_size=0, lag_seconds=0.0)
    size, signed_at = latest
    lag = max((now - signed_at).total_seconds(), 0.0) if leaves > size else 0.0
    return LedgerStatus(leaves=leaves, checkpoint_size=size, lag_seconds=lag)


def latest_checkpoint(*, session: Session) -> ledger.StoredCheckpoint:
    """The latest signed checkpoint; ``NotFound`` before the first integration."""
    checkpoint = ledger.latest_checkpoint(session.connection())
    if checkpoint is None:
        raise NotFound("the log has no checkpoint yet", rule="ledger.no_checkpoint")
    return checkpoint


def witnessed_checkpoint(
    *, session: Session, witnesses: Sequence[CosignatureVerifier], quorum: int
) -> ledger.StoredCheckpoint:
    """The latest checkpoint cosigned by at least ``quorum`` of ``witnesses`` (k of n).

    With a quorum of 0 that is the latest checkpoint. ``NotFound`` if none of the recent ones
    meets the policy.
    """
    if quorum <= 0:
        return latest_checkpoint(session=session)
    recent = ledger.recent_checkpoints(session.connection(), limit=_WITNESSED_SCAN)
    for stored in recent:
        if count_cosignatures(stored.note, witnesses) >= quorum:
            return stored
    raise NotFound(
        f"no recent checkpoint is cosigned by {quorum} of the {len(witnesses)} witnesses",
        rule="ledger.not_witnessed",
    )


def checkpoints(*, session: Session, after: int) -> list[CheckpointPublic]:
    """The stored checkpoints with ``size > after``, oldest first, a page at a time."""
    rows = ledger.checkpoints(session.connection(), after=after, limit=MAX_CHECKPOINTS_PER_PAGE)
    return [CheckpointPublic(size=c.size, note=c.note) for c in rows]


def leaves(*, session: Session, start: int, end: int) -> list[LeafPublic]:
    """Committed leaves ``start <= index < end``, at most ``MAX_LEAVES_PER_PAGE``."""
    if start < 0 or end <= start:
        raise InvalidInput("need 0 <= start < end", rule="ledger.bad_range")
    if end - start > MAX_LEAVES_PER_PAGE:
        raise InvalidInput(
            f"at most {MAX_LEAVES_PER_PAGE} leaves per request", rule="ledger.range_too_large"
        )
    rows = ledger.leaf_data(session.connection(), start, end)
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
    return [h.hex() for h in ledger.inclusion_proof_at(session.connection(), index, size)]


def consistency_proof(*, session: Session, size1: int, size2: int) -> list[str]:
    """Hex consistency proof from the tree of ``size1`` leaves to that of ``size2``."""
    _check_size(session, size2)
    if not 0 < size1 <= size2:
        raise InvalidInput("need 0 < from <= to", rule="ledger.bad_range")
    return [h.hex() for h in ledger.consistency_proof_at(session.connection(), size1, size2)]


def parse_tile_path(path: str) -> tuple[int, int]:
    """Parse ``<N>[.p/<W>]`` of a c2sp.org/tlog-tiles path into (index, width).

    N is written in groups of three digits, every group but the last prefixed with ``x``
    (1234067 is ``x001/x234/067``), canonically; W is 1 to 255 for a partial tile, and a full
    tile has width 256.
    """
    width = TILE_WIDTH
    if ".p/" in path:
        path, _, width_text = path.partition(".p/")
        if not width_text.isascii() or not width_text.isdigit() or width_text.startswith("0"):
            raise InvalidInput("a partial tile width is 1 to 255", rule="ledger.bad_tile")
        width = int(width_text)
        if not 0 < width < TILE_WIDTH:
            raise InvalidInput("a partial tile width is 1 to 255", rule="ledger.bad_tile")
    if not path.isascii() or not _TILE_INDEX.fullmatch(path):
        raise InvalidInput(f"malformed tile index {path!r}", rule="ledger.bad_tile")
    index = int(path.replace("x", "").replace("/", ""))
    if index > _MAX_TILE_INDEX:
        raise InvalidInput(f"tile index {index} is beyond any log", rule="ledger.bad_tile")
    if format_tile_index(index) != path:
        raise InvalidInput(f"tile index {path!r} is not canonical", rule="ledger.bad_tile")
    return index, width


def format_tile_index(index: int) -> str:
    """The c2sp.org/tlog-tiles path form of a tile index (see ``parse_tile_path``)."""
    digits = f"{index:03d}"
    digits = digits.zfill(-(-len(digits) // 3) * 3)
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def tile(*, session: Session, level: int, path: str) -> tuple[bytes, bool]:
    """A hash tile's bytes and whether it is full; ``NotFound`` beyond the stored tree."""
    if not 0 <= level <= _MAX_TILE_LEVEL:
        raise InvalidInput(f"tile level {level} is not in 0..63", rule="ledger.bad_tile")
    index, width = parse_tile_path(path)
    blob = ledger.read_tile(session.connection(), level, index, width)
    if blob is None:
        raise NotFound("the tree has no such tile yet", rule="ledger.no_tile")
    return blob, width == TILE_WIDTH


def entry_bundle(*, session: Session, path: str) -> tuple[bytes, bool]:
    """An entry bundle's bytes and whether it is full; ``NotFound`` beyond the stored tree,
    and ``NotFound`` (``ledger.entry_too_large``, naming the leaf) for a bundle holding a leaf
    stored before capture bounded leaves to a tlog-tiles entry: that leaf is still served
    by ``/api/v1/ledger/leaves`` and provable by its hash."""
    index, width = parse_tile_path(path)
    conn = session.connection()
    if index * TILE_WIDTH + width > ledger.integrated_size(conn):
        raise NotFound("the tree has no such entry bundle yet", rule="ledger.no_tile")
    try:
        bundle = ledger.entry_bundle(conn, index, width)
    except EntryTooLarge as exc:
        raise NotFound(
            f"entry bundle {format_tile_index(index)} cannot be served: {exc}; read that leaf "
            f"at /api/v1/ledger/leaves?start={exc.index}&end={exc.index + 1}",
            rule="ledger.entry_too_large",
            leaf_index=exc.index,
            leaf_bytes=exc.size,
        ) from exc
    if bundle is None:
        raise NotFound("the tree has no such entry bundle yet", rule="ledger.no_tile")
    return bundle, width == TILE_WIDTH
