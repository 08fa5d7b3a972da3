"""The shapes of a signer's keys over HTTP (stations and sensors alike): a rotation, a
revocation, and a key with the time it was valid."""

from __future__ import annotations

import datetime as dt

from nacl.bindings import crypto_core_ed25519_is_valid_point
from pydantic import BaseModel, ConfigDict, Field

from medtrace.errors import InvalidInput
from medtrace.protocol.keys import b64decode_canonical


class KeyCreate(BaseModel):
    """A signer's next key (a rotation): raw Ed25519 public key in base64."""

    model_config = ConfigDict(extra="forbid")

    public_key: str


class KeyRevoke(BaseModel):
    """Which key to revoke: one by its public key, or (``null``) every key not yet revoked."""

    model_config = ConfigDict(extra="forbid")

    public_key: str | None = None


class KeyPublic(BaseModel):
    """One key of a station or sensor and the time it was valid."""

    public_key: str = Field(description="Raw 32-byte Ed25519 key, base64")
    valid_from: dt.datetime
    valid_until: dt.datetime | None = Field(
        description="When a rotation retired it: it signs only what is stamped before"
    )
    revoked_at: dt.datetime | None = Field(
        description="When it was revoked: nothing arriving later is accepted from it"
    )


def decode_public_key(value: str) -> bytes:
    """Decode a base64 raw Ed25519 public key (32 bytes) or raise ``InvalidInput``."""
    try:
        raw = b64decode_canonical(value)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise InvalidInput("public_key is not canonical base64", rule="key.malformed") from exc
    if len(raw) != 32:
        raise InvalidInput(f"public_key has {len(raw)} bytes, not 32", rule="key.malformed")
    return raw


def decode_new_public_key(value: str) -> bytes:
    """Decode a public key a signer is to be registered or rotated to: ``decode_public_key``,
    then refuse what is not a valid point of Ed25519's prime-order subgroup (``key.weak``).

    A small-order key (all zeros, and the seven other low-order points, in canonical or
    non-canonical spelling) lets anyone forge "signatures" that lax verifiers accept for
    any message; libsodium's ``crypto_core_ed25519_is_valid_point`` refuses those, the
    non-canonical encodings and the points outside the main subgroup.
    """
    raw = decode_public_key(value)
    if not crypto_core_ed25519_is_valid_point(raw):
        raise InvalidInput(
            "public_key is not a valid Ed25519 public key (a small-order, non-canonical or "
            "off-subgroup point); generate a new key pair",
            rule="key.weak",
        )
    return raw
