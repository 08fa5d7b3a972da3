"""The log as C2SP tlog-tiles under ``/log``: checkpoint, hash tiles and entry bundles.

``/log/checkpoint``, ``/log/tile/<L>/<N>[.p/<W>]`` and ``/log/tile/entries/<N>[.p/<W>]``, so
that a mirror or a CDN can serve the log as static files and any tlog-tiles client can read
it. A full tile never changes and a partial one is a prefix of the full one, so both are
served as immutable; the checkpoint moves and is not cached. With a witness policy in the
settings, ``/log/checkpoint`` is the latest checkpoint that meets it.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from medtrace.api.deps import SessionDep, SettingsDep
from medtrace.ledger import CosignatureVerifier
from medtrace.services import log

router = APIRouter(prefix="/log", tags=["tiles"])

IMMUTABLE = "public, max-age=31536000, immutable"
PARTIAL = "public, max-age=86400"


def _binary(content: bytes, full: bool) -> Response:
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Cache-Control": IMMUTABLE if full else PARTIAL},
    )


@router.get("/checkpoint", response_class=PlainTextResponse)
def read_checkpoint(session: SessionDep, settings: SettingsDep) -> PlainTextResponse:
    """The checkpoint tile clients start from (c2sp.org/tlog-tiles), ``text/plain``."""
    witnesses = [CosignatureVerifier.from_vkey(k) for k in settings.ledger.witness_keys]
    stored = log.witnessed_checkpoint(
        session=session, witnesses=witnesses, quorum=settings.ledger.witness_quorum
    )
    return PlainTextResponse(stored.note, headers={"Cache-Control": "no-cache"})


@router.get("/tile/entries/{path:path}")
def read_entry_bundle(session: SessionDep, path: str) -> Response:
    """Entry bundle N: each leaf as a big-endian uint16 length and its bytes."""
    return _binary(*log.entry_bundle(session=session, path=path))


@router.get("/tile/{level}/{path:path}")
def read_tile(session: SessionDep, level: int, path: str) -> Response:
    """Hash tile N at level L: up to 256 concatenated SHA-256 hashes."""
    return _binary(*log.tile(session=session, level=level, path=path))
