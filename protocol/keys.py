"""Ed25519 key files for the log and for stations.

A private key lives only in its file (PKCS#8 PEM, mode 0600) on the machine that signs:
never in the database, never in a request. Public keys travel as their raw 32 bytes, in
base64, which is what WebCrypto and other verifiers import.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import crypto_sign_BYTES, crypto_sign_open, crypto_sign_PUBLICKEYBYTES
from nacl.exceptions import CryptoError


def write_key_file(path: Path) -> Ed25519PrivateKey:
    """Generate a new key and write it to ``path`` with mode 0600; refuse to overwrite.

    The key is written and fsynced under a temporary name, then linked into place: the link
    is atomic and fails if ``path`` exists, so a concurrent reader sees a whole key or none,
    and of two processes creating the same key file exactly one wins (``FileExistsError``).
    """
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return key


def read_key_file(path: Path) -> Ed25519PrivateKey:
    """Read a private key written by :func:`write_key_file`."""
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The key at ``path``, created on first use (the log key of a new installation).

    Several processes starting together (API replicas, a sequencer) agree on one key: the
    first to create it wins and the others read it.
    """
    if path.exists():
        return read_key_file(path)
    try:
        return write_key_file(path)
    except FileExistsError:
        return read_key_file(path)


def verify_ed25519(public_key_raw: bytes, signature: bytes, message: bytes) -> None:
    """Check an Ed25519 signature (RFC 8032) over ``message``; ``ValueError`` if it fails.

    Capture checks one signature per event and per reading, and that check was the largest
    part of its time: libsodium verifies in less than half the time OpenSSL takes. It is also
    the stricter of the two (it refuses small-order keys and points, and non-canonical
    encodings), so whatever it accepts verifies with any RFC 8032 verifier, such as a third
    party's OpenSSL.
    """
    if len(signature) != crypto_sign_BYTES:
        raise ValueError(f"an Ed25519 signature has {crypto_sign_BYTES} bytes")
    if len(public_key_raw) != crypto_sign_PUBLICKEYBYTES:
        raise ValueError(f"an Ed25519 public key has {crypto_sign_PUBLICKEYBYTES} bytes")
    try:
        crypto_sign_open(signature + message, public_key_raw)
    except CryptoError as exc:
        raise ValueError("the signature does not verify") from exc


def derive_secret(key: Ed25519PrivateKey, purpose: str) -> str:
    """A 32-byte secret for ``purpose`` (hex), derived from ``key`` with HKDF-SHA256: every
    process holding the log key derives the same one, across restarts, and the secret reveals
    nothing of the key."""
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    info = f"medtrace {purpose}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(raw).hex()


def public_key_raw(key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte public key of a private key."""
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def b64(data: bytes) -> str:
    """Standard base64 text, as used in checkpoints, envelopes and the API."""
    return base64.b64encode(data).decode("ascii")


def b64decode_canonical(text: str) -> bytes:
    """Decode standard base64, refusing any spelling but the canonical one.

    A decoder that ignores the unused bits before ``=`` accepts up to 16 spellings of one
    signature; refusing them keeps a signed leaf's bytes unique (RFC 4648 §3.5).
    Raises ``ValueError``.
    """
    data = base64.b64decode(text, validate=True)
    if b64(data) != text:
        raise ValueError("not canonical base64")
    return data
