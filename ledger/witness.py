"""Witnesses: cosignatures (c2sp.org/tlog-cosignature) and the witness protocol
(c2sp.org/tlog-witness).

A witness is run by another organisation with its own Ed25519 key. The log posts each new
checkpoint to it with a consistency proof from the last checkpoint the witness cosigned; the
witness checks the log's signature and the proof against its own durable record, and answers
a ``cosignature/v1`` signature line. It refuses a checkpoint that does not extend what it saw
(a fork or a rewrite), so a log cannot show two histories to two audiences without one of
its witnesses noticing.

* ``Cosigner`` / ``CosignatureVerifier``: the Ed25519 cosignature, key ID type 0x04, over
  ``cosignature/v1\\ntime <t>\\n`` followed by the checkpoint's note text.
* ``Witness``: the add-checkpoint checks in the order the spec gives, with its status codes,
  on a ``WitnessState`` kept in a small SQLite file (check and update in one transaction).
* ``WitnessClient``: the log's side: posts, learns the witness's size from a 409, retries.
* ``count_cosignatures``: how many trusted witnesses cosigned a note (the k-of-n policy).
"""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .checkpoint import Checkpoint, open_checkpoint, parse_tree_size
from .errors import CheckpointError, LedgerError
from .note import NoteVerifier, signatures
from .proofs import verify_consistency

__all__ = [
    "MAX_REQUEST_BYTES",
    "SIZE_CONTENT_TYPE",
    "CosignatureVerifier",
    "Cosigner",
    "Witness",
    "WitnessClient",
    "WitnessRefusal",
    "WitnessState",
    "count_cosignatures",
    "parse_add_checkpoint",
    "witness_clients",
]

_ALG_COSIGNATURE_V1 = b"\x04"
_SIGNATURE_PREFIX = "\u2014 "
_MAX_PROOF_LINES = 63
MAX_REQUEST_BYTES = 64 * 1024
"""Largest add-checkpoint body the witness reads: an ``old`` line, at most 63 proof hashes
(about 45 bytes each) and a checkpoint note with its signatures fit many times over."""
SIZE_CONTENT_TYPE = "text/x.tlog.size"
"""Content type of a 409 answer carrying the witness's latest size (c2sp.org/tlog-witness)."""


def cosignature_key_id(name: str, public_key_raw: bytes) -> bytes:
    """SHA-256(name || 0x0A || 0x04 || key)[:4], the key ID of a cosignature/v1 key."""
    return hashlib.sha256(name.encode() + b"\n" + _ALG_COSIGNATURE_V1 + public_key_raw).digest()[:4]


def _signed_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


class Cosigner:
    """Signs checkpoints as a witness (c2sp.org/tlog-cosignature, Ed25519)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        """Raise ``ValueError`` if ``name`` is not a valid key name."""
        if not name or "+" in name or any(c.isspace() for c in name):
            raise ValueError(f"invalid witness name {name!r}")
        self.name = name
        self._key = private_key
        self.public_key_raw = private_key.public_key().public_bytes_raw()
        self.key_id = cosignature_key_id(name, self.public_key_raw)

    @property
    def vkey(self) -> str:
        """The witness's verifier key, ``<name>+<key id>+base64(0x04 || public key)``."""
        key = base64.b64encode(_ALG_COSIGNATURE_V1 + self.public_key_raw).decode()
        return f"{self.name}+{self.key_id.hex()}+{key}"

    def cosign(self, text: str, timestamp: int | None = None) -> str:
        """The cosignature line (with its newline) over a checkpoint's note text."""
        when = int(time.time()) if timestamp is None else timestamp
        signature = self._key.sign(_signed_message(text, when))
        blob = self.key_id + when.to_bytes(8, "big") + signature
        return f"{_SIGNATURE_PREFIX}{self.name} {base64.b64encode(blob).decode()}\n"


class CosignatureVerifier:
    """Checks one witness's cosignatures in a signed note."""

    def __init__(self, name: str, public_key_raw: bytes) -> None:
        self.name = name
        self._key = Ed25519PublicKey.from_public_bytes(public_key_raw)
        self.key_id = cosignature_key_id(name, public_key_raw)

    @classmethod
    def from_vkey(cls, vkey: str) -> CosignatureVerifier:
        """Parse ``<name>+<hex key id>+base64(0x04 || key)``.

        Raises:
            CheckpointError: if the key is malformed, not a cosignature/v1 key, or its key ID
                does not match.
        """
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise CheckpointError("malformed witness key: expected <name>+<key id>+<key>")
        name, id_hex, key_b64 = parts
        try:
            key = base64.b64decode(key_b64, validate=True)
            wanted_id = bytes.fromhex(id_hex)
        except ValueError as exc:
            raise CheckpointError("malformed witness key: bad key id or base64") from exc
        if key[:1] != _ALG_COSIGNATURE_V1 or len(key) != 33:
            raise CheckpointError("witness key is not an Ed25519 cosignature/v1 key (type 0x04)")
        verifier = cls(name, key[1:])
        if verifier.key_id != wanted_id:
            raise CheckpointError("malformed witness key: the key id does not match")
        return verifier

    def verified_line(self, note: str) -> str | None:
        """This witness's valid cosignature line in ``note`` (with a newline), or None."""
        text = note[: note.rfind("\n\n") + 1]
        for name, blob in signatures(note):
            if name != self.name or blob[:4] != self.key_id or len(blob) != 4 + 8 + 64:
                continue
            timestamp = int.from_bytes(blob[4:12], "big")
            try:
                self._key.verify(blob[12:], _signed_message(text, timestamp))
            except InvalidSignature:
                continue
            return f"{_SIGNATURE_PREFIX}{name} {base64.b64encode(blob).decode()}\n"
        return None


def count_cosignatures(note: str, witnesses: Sequence[CosignatureVerifier]) -> int:
    """How many of ``witnesses`` validly cosigned ``note`` (for a k-of-n policy)."""
    return sum(1 for w in witnesses if w.verified_line(note) is not None)


class WitnessRefusal(LedgerError):
    """The witness refuses a checkpoint; ``status`` is the c2sp.org/tlog-witness HTTP status.

    ``size`` is the witness's latest cosigned size for a 409 about the old size.
    """

    def __init__(self, status: int, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.size = size


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed add-checkpoint request body."""

    old_size: int
    proof: list[bytes]
    note: str


def parse_add_checkpoint(body: str) -> AddCheckpoint:
    """Parse ``old <size>``, proof lines, a blank line, then the checkpoint note.

    Raises:
        WitnessRefusal: 400 for a malformed body.
    """
    head, sep, note = body.partition("\n\n")
    lines = head.split("\n")
    if not sep or not lines[0].startswith("old "):
        raise WitnessRefusal(400, "the body must start with an 'old <size>' line")
    try:
        old_size = parse_tree_size(lines[0][4:])
    except CheckpointError as exc:
        raise WitnessRefusal(400, f"the old {exc}") from exc
    if len(lines) - 1 > _MAX_PROOF_LINES:
        raise WitnessRefusal(400, f"more than {_MAX_PROOF_LINES} consistency proof lines")
    proof: list[bytes] = []
    for line in lines[1:]:
        try:
            proof.append(base64.b64decode(line, validate=True))
        except ValueError as exc:
            raise WitnessRefusal(400, "a consistency proof line is not base64") from exc
    return AddCheckpoint(old_size, proof, note)


class WitnessState:
    """The witness's durable record: per log origin, the latest cosigned size and root.

    A small SQLite file in WAL mode with ``synchronous=FULL``: a record is on disk before the
    cosignature leaves. ``advance`` checks and moves the record in one write transaction, so
    two concurrent requests can never roll the record back.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS logs (origin TEXT PRIMARY KEY, size INTEGER NOT NULL,"
                " root BLOB NOT NULL, note TEXT NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def latest(self, origin: str) -> tuple[int, bytes] | None:
        """The latest cosigned (size, root) of a log, or None if it never cosigned one."""
        with self._connect() as db:
            row = db.execute("SELECT size, root FROM logs WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def advance(
        self,
        origin: str,
        old_size: int,
        check: Callable[[tuple[int, bytes] | None], None],
        new: Checkpoint,
        note: str,
    ) -> None:
        """Run ``check`` on the current record and store ``new``, atomically.

        Raises:
            WitnessRefusal: 409 if the record is not at ``old_size``, or what ``check`` raises.
        """
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT size, root FROM logs WHERE origin = ?", (origin,)).fetchone()
            current = None if row is None else (int(row[0]), bytes(row[1]))
            if (current[0] if current else 0) != old_size:
                raise WitnessRefusal(
                    409, "the old size is not the witness's latest", current[0] if current else 0
                )
            check(current)
            db.execute(
                "INSERT INTO logs VALUES (?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET"
                " size = excluded.size, root = excluded.root, note = excluded.note",
                (origin, new.size, new.root_hash, note),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()


class Witness:
    """Checks add-checkpoint requests and cosigns (c2sp.org/tlog-witness)."""

    def __init__(
        self, cosigner: Cosigner, state: WitnessState, logs: Sequence[NoteVerifier]
    ) -> None:
        self.cosigner = cosigner
        self._state = state
        self._logs = {log.name: log for log in logs}

    def add_checkpoint(self, body: str) -> str:
        """Answer one add-checkpoint request body with the cosignature line.

        Raises:
            WitnessRefusal: 400 malformed, 404 unknown origin, 403 no valid log signature,
                409 old size is stale (with the witness's size) or same size with another
                root (a fork), 422 consistency proof does not verify.
        """
        request = parse_add_checkpoint(body)
        origin = request.note.split("\n", 1)[0]
        verifier = self._logs.get(origin)
        if verifier is None:
            raise WitnessRefusal(404, f"unknown log origin {origin!r}")
        try:
            checkpoint = open_checkpoint(request.note, verifier)
        except CheckpointError as exc:
            raise WitnessRefusal(403, f"the checkpoint is not signed by the log: {exc}") from exc
        if request.old_size > checkpoint.size:
            raise WitnessRefusal(400, "the old size is larger than the checkpoint size")
        if request.old_size == 0 and request.proof:
            raise WitnessRefusal(400, "the proof must be empty from size 0")

        def check(current: tuple[int, bytes] | None) -> None:
            if current is None or request.old_size == 0:
                return
            size, root = current
            if size == checkpoint.size:
                if root != checkpoint.root_hash:
                    raise WitnessRefusal(409, "same size, another root: the log forked")
                return
            if not verify_consistency(
                size, checkpoint.size, root, checkpoint.root_hash, request.proof
            ):
                raise WitnessRefusal(
                    422, f"the checkpoint is not consistent with size {size}: a fork or rewrite"
                )

        self._state.advance(origin, request.old_size, check, checkpoint, request.note)
        return self.cosigner.cosign(checkpoint.to_text())


class WitnessClient:
    """The log's side of c2sp.org/tlog-witness for one witness URL."""

    def __init__(self, url: str, verifier: CosignatureVerifier, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.verifier = verifier
        self._timeout = timeout
        self._known_size = 0

    def request_cosignature(
        self, note: str, size: int, proof_from: Callable[[int], list[bytes]]
    ) -> str:
        """Post a checkpoint of ``size``; return the verified cosignature line.

        ``proof_from(old)`` gives the consistency proof from ``old`` to ``size``. A 409 tells
        the witness's real size: the request is repeated once from there.

        Raises:
            WitnessRefusal: the witness refused (with its status), or answered no valid line.
            httpx.HTTPError: the witness could not be reached.
        """
        for _ in range(2):
            old = self._known_size if 0 < self._known_size <= size else 0
            proof = proof_from(old) if 0 < old < size else []
            body = (
                f"old {old}\n"
                + "".join(base64.b64encode(h).decode() + "\n" for h in proof)
                + "\n"
                + note
            )
            response = httpx.post(
                f"{self.url}/add-checkpoint", content=body.encode(), timeout=self._timeout
            )
            if response.status_code == 409 and response.headers.get("content-type", "").startswith(
                SIZE_CONTENT_TYPE
            ):
                self._known_size = int(response.text.strip())
                continue
            if response.status_code != 200:
                raise WitnessRefusal(response.status_code, response.text.strip()[:200])
            line = self.verifier.verified_line(note + response.text)
            if line is None:
                raise WitnessRefusal(502, "the witness answered no valid cosignature")
            self._known_size = size
            return line
        raise WitnessRefusal(409, "the witness's size keeps moving")


def witness_clients(urls: Sequence[str], vkeys: Sequence[str]) -> list[WitnessClient]:
    """One client per configured witness, URLs and verifier keys paired by position.

    Raises:
        CheckpointError: if a key is malformed.
        ValueError: if the lists differ in length.
    """
    if len(urls) != len(vkeys):
        raise ValueError("every witness URL needs its key")
    return [
        WitnessClient(url, CosignatureVerifier.from_vkey(k))
        for url, k in zip(urls, vkeys, strict=True)
    ]
