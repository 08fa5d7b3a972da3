"""Signed notes of c2sp.org/signed-note with Ed25519 keys.

A note is a text ending in a newline, a blank line, then one or more signature
lines ``— <key name> base64(key ID || signature)``. The key ID is the first four
bytes of SHA-256(key name || 0x0A || 0x01 || public key), and a verifier key is
written ``<name>+<hex key ID>+base64(0x01 || public key)``. The format is the
one of Go's golang.org/x/mod/sumdb/note, so notes and keys interoperate with
the Go transparency-log ecosystem (sum.golang.org, witnesses, monitors).

Checkpoints (``checkpoint.py``) are signed notes; witnesses add their own
signature lines to the same note, which is why a verifier ignores lines from
keys it does not know.
"""

import base64
import binascii
import hashlib
import re

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from .errors import CheckpointError

__all__ = ["NoteSigner", "NoteVerifier", "key_id", "signatures"]

_ALG_ED25519 = b"\x01"
"""Signature type identifier byte of Ed25519 (c2sp.org/signed-note, "Signature types")."""

_SIGNATURE_PREFIX = "\u2014 "
"""Start of a signature line: EM DASH and a space."""

_MAX_SIGNATURES = 100
"""The spec asks verifiers to cap the signatures of a note (at least 16); Go caps at 100."""

_KEY_SIZE = 32
_SIGNATURE_SIZE = 64
_CONTROL_CHARACTER = re.compile(r"[\x00-\x09\x0b-\x1f]")
_KEY_ID_HEX = re.compile(r"[0-9a-fA-F]{8}")


def key_id(name: str, public_key_raw: bytes) -> bytes:
    """Return the 4-byte ID of an Ed25519 key, SHA-256(name || 0x0A || 0x01 || key)[:4].

    This is the key ID recommended by c2sp.org/signed-note for Ed25519, the one
    Go's sumdb/note computes. Signature lines carry it so that a verifier finds
    its own signature among others.
    """
    return hashlib.sha256(name.encode() + b"\n" + _ALG_ED25519 + public_key_raw).digest()[:4]


class _NoteKey:
    """What a signer and a verifier of notes share: a key name, an Ed25519 public key, and the
    key ID and verifier key derived from the two (c2sp.org/signed-note)."""

    def __init__(self, name: str, public_key_raw: bytes) -> None:
        _check_name(name)
        self._name = name
        self._public_key_raw = bytes(public_key_raw)
        self._key_id = key_id(name, self._public_key_raw)

    @property
    def name(self) -> str:
        """The key name in signature lines."""
        return self._name

    @property
    def public_key_raw(self) -> bytes:
        """The 32-byte Ed25519 public key (RFC 8032 encoding)."""
        return self._public_key_raw

    @property
    def key_id(self) -> bytes:
        """The 4-byte key ID (see ``key_id``)."""
        return self._key_id

    @property
    def vkey(self) -> str:
        """The verifier key to publish, ``<name>+<hex key ID>+base64(0x01 || public key)``."""
        return _vkey(self._name, self._key_id, self._public_key_raw)


class NoteSigner(_NoteKey):
    """Signs note texts with one Ed25519 key under one key name.

    The key name must be non-empty and contain no spaces and no ``+``
    (c2sp.org/signed-note); medtrace uses the log origin as the key name.
    """

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        """Raise ``ValueError`` if ``name`` is not a valid key name."""
        super().__init__(name, private_key.public_key().public_bytes_raw())
        self._private_key = private_key

    def sign(self, text: str) -> str:
        """Return the signed note: ``text``, a blank line and this key's signature line.

        The signature is Ed25519 over the UTF-8 bytes of ``text``, its final
        newline included.

        Raises:
            ValueError: if ``text`` is empty, does not end with a newline, or
                contains an ASCII control character other than newline (the
                spec forbids them in notes).
        """
        if not text.endswith("\n"):
            raise ValueError("a note text must be non-empty and end with a newline")
        if _CONTROL_CHARACTER.search(text):
            raise ValueError("a note text must not contain control characters other than newline")
        signature = self._private_key.sign(text.encode())
        blob = base64.b64encode(self._key_id + signature).decode()
        return f"{text}\n{_SIGNATURE_PREFIX}{self._name} {blob}\n"


class NoteVerifier(_NoteKey):
    """Verifies notes signed by one Ed25519 key, identified by its name and key ID."""

    def __init__(self, name: str, public_key_raw: bytes) -> None:
        """Raise ``ValueError`` for an invalid key name or a public key that is not 32 bytes."""
        if len(public_key_raw) != _KEY_SIZE:
            raise ValueError(
                f"an Ed25519 public key is {_KEY_SIZE} bytes, got {len(public_key_raw)}"
            )
        super().__init__(name, public_key_raw)
        self._public_key = Ed25519PublicKey.from_public_bytes(public_key_raw)

    @classmethod
    def from_vkey(cls, vkey: str) -> "NoteVerifier":
        """Parse a verifier key ``<name>+<hex key ID>+base64(0x01 || public key)``.

        Raises:
            CheckpointError: if the key is malformed, is not an Ed25519 key, or
                its key ID does not match its name and public key.
        """
        # The base64 part may itself contain "+"; a name may not.
        parts = vkey.split("+", 2)
        if len(parts) != 3:
            raise CheckpointError("malformed verifier key: expected <name>+<key id>+<key>")
        name, id_hex, key_b64 = parts
        if not _KEY_ID_HEX.fullmatch(id_hex):
            raise CheckpointError("malformed verifier key: the key id must be 8 hex digits")
        key = _b64decode(key_b64)
        if key is None:
            raise CheckpointError("malformed verifier key: the key is not valid base64")
        if key[:1] != _ALG_ED25519:
            raise CheckpointError(
                "unsupported verifier key: only Ed25519 keys (type 0x01) are known"
            )
        try:
            verifier = cls(name, key[1:])
        except ValueError as exc:
            raise CheckpointError(f"malformed verifier key: {exc}") from exc
        if verifier.key_id != bytes.fromhex(id_hex):
            raise CheckpointError(
                "malformed verifier key: the key id does not match the name and the key"
            )
        return verifier

    def verify(self, note: str) -> str:
        """Return the text of ``note`` once a signature by this key has been verified.

        Signature lines by other keys (another name or another key ID) are
        ignored: they may be witness cosignatures. Every line by this key must
        verify (the spec lets a verifier reject a note with a failing known
        signature, and Go does). The returned text ends with its newline.

        Raises:
            CheckpointError: if the note is malformed (no blank line before the
                signatures, a malformed signature line, control characters,
                more than 100 signatures), carries no signature by this key, or
                carries one that does not verify.
        """
        text, lines = _parse(note)
        message = text.encode()
        verified = False
        for name, blob in lines:
            if name != self._name or blob[:4] != self._key_id:
                continue
            if not self._verifies(blob[4:], message):
                raise CheckpointError(f"bad signature by key {self._name}+{self._key_id.hex()}")
            verified = True
        if not verified:
            raise CheckpointError(f"note has no signature by key {self._name}+{self._key_id.hex()}")
        return text

    def _verifies(self, signature: bytes, message: bytes) -> bool:
        if len(signature) != _SIGNATURE_SIZE:
            return False
        try:
            self._public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def signatures(note: str) -> list[tuple[str, bytes]]:
    """Return the (key name, decoded signature) pairs of ``note``, without verifying them.

    Each decoded signature starts with the signer's 4-byte key ID. Witness code
    uses this to find cosignatures (c2sp.org/tlog-cosignature).

    Raises:
        CheckpointError: if the note is malformed.
    """
    return _parse(note)[1]


def _parse(note: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Split a note into its text and its (name, decoded signature) lines, checking the syntax."""
    try:
        note.encode()
    except UnicodeEncodeError as exc:
        raise CheckpointError("malformed note: not valid UTF-8") from exc
    if _CONTROL_CHARACTER.search(note):
        raise CheckpointError("malformed note: control character other than newline")
    # The text ends at the last blank line; it may contain blank lines itself.
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("malformed note: no blank line between text and signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise CheckpointError("malformed note: no signature line ending in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise CheckpointError(f"malformed note: more than {_MAX_SIGNATURES} signatures")
    return text, [_parse_signature_line(line, number) for number, line in enumerate(lines, 1)]


def _parse_signature_line(line: str, number: int) -> tuple[str, bytes]:
    if not line.startswith(_SIGNATURE_PREFIX):
        raise CheckpointError(
            f"malformed signature line {number}: it must start with an em dash and a space"
        )
    name, _, blob_b64 = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    if not _is_valid_name(name):
        raise CheckpointError(f"malformed signature line {number}: invalid key name")
    blob = _b64decode(blob_b64)
    if blob is None or len(blob) < 5:
        raise CheckpointError(
            f"malformed signature line {number}: the signature must be base64 of a key id "
            "and a signature"
        )
    return name, blob


def _is_valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def _check_name(name: str) -> None:
    if not _is_valid_name(name):
        raise ValueError(f"invalid key name {name!r}: it must be non-empty, without spaces or '+'")


def _vkey(name: str, key_id_: bytes, public_key_raw: bytes) -> str:
    return f"{name}+{key_id_.hex()}+{base64.b64encode(_ALG_ED25519 + public_key_raw).decode()}"


def _b64decode(text: str) -> bytes | None:
    """Decode standard, padded base64 (RFC 4648 §4); None if ``text`` is not that."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
