"""Portal accounts: a person of a participant logs in with an e-mail address and a password.

Passwords are stored as scrypt hashes (RFC 7914, through ``cryptography``) with the cost the
OWASP Password Storage Cheat Sheet gives as its minimum (N = 2^17, r = 8, p = 1, 128 MiB per
hash) and a random 16-byte salt, as ``scrypt$<log2 N>$<r>$<p>$<salt>$<hash>`` (base64url), so
a stronger cost later still verifies the old hashes. A failed log-in never says whether the
address or the password was wrong, and costs the same time either way: one scrypt.

Failed log-ins are counted per account (the address tried, whether an account has it or not,
so the throttle tells no one which addresses exist) and per client network, in the database,
so that the limit holds across API workers and replicas (OWASP Authentication Cheat Sheet,
"Protect against automated attacks"). Past the limit a log-in is refused before any hashing
until the window has passed, even with the right password; a log-in that succeeds forgets its
account's failures. The caller runs ``log_in`` off the event loop: one scrypt takes 128 MiB
and a second or more of a core.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import math
import os
from dataclasses import dataclass
from functools import cache

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from medtrace.errors import Conflict, InvalidInput, NotFound, Throttled, Unauthenticated
from medtrace.models import Participant, utcnow
from medtrace.models.portal import PortalUser
from medtrace.protocol.identifiers import parse_gln
from medtrace.store import login_failures
from medtrace.store import participants as participant_store
from medtrace.store import portal_users as user_store

MIN_PASSWORD_LENGTH = 12
"""NIST SP 800-63B allows 8; a shared professional account deserves more."""

_LOG2_N, _R, _P = 17, 8, 1
_SALT_BYTES, _HASH_BYTES = 16, 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    kdf = Scrypt(salt=salt, length=_HASH_BYTES, n=2**log2_n, r=r, p=p)
    return kdf.derive(password.encode())


def hash_password(password: str) -> str:
    """The stored form of ``password``: scrypt with a fresh salt and its parameters."""
    salt = os.urandom(_SALT_BYTES)
    derived = _scrypt(password, salt, _LOG2_N, _R, _P)
    return f"scrypt${_LOG2_N}${_R}${_P}${_b64(salt)}${_b64(derived)}"


def password_matches(password: str, stored: str) -> bool:
    """Whether ``password`` hashes to ``stored`` (compared in constant time)."""
    scheme, log2_n, r, p, salt, expected = stored.split("$")
    if scheme != "scrypt":
        raise ValueError(f"unknown password hash scheme {scheme!r}")
    derived = _scrypt(password, _unb64(salt), int(log2_n), int(r), int(p))
    return hmac.compare_digest(derived, _unb64(expected))


@cache
def unknown_account_hash() -> str:
    """Checked against when the address is unknown, so a refusal takes as long either way;
    made once per process (the API makes it at start, so the first unknown address is not
    slower than the rest)."""
    return hash_password("no account has this password")


def normalise_email(email: str) -> str:
    """The address as stored: trimmed and lower-cased; refused unless it looks like one."""
    address = email.strip().lower()
    local, at, domain = address.partition("@")
    if not at or not local or "." not in domain or len(address) > 254 or " " in address:
        raise InvalidInput(f"{email!r} is not an e-mail address", rule="portal.email")
    return address


def check_password_strength(password: str) -> None:
    """Refuse a password too short to resist guessing."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"a password needs at least {MIN_PASSWORD_LENGTH} characters",
            rule="portal.weak_password",
        )


@dataclass(frozen=True)
class PortalAccount:
    """An account and the participant it belongs to."""

    user: PortalUser
    participant: Participant


def add_user(*, session: Session, gln: str, email: str, password: str) -> PortalAccount:
    """Create a portal account for the participant with ``gln``."""
    address = normalise_email(email)
    check_password_strength(password)
    stored = hash_password(password)
    try:
        with session.begin():
            participant = participant_store.get_participant_by_gln(
                session=session, gln=parse_gln(gln)
            )
            if participant is None:
                raise NotFound(f"no participant has GLN {gln}", rule="participant.unknown")
            assert participant.id is not None
            user = user_store.add_user(
                session=session,
                user=PortalUser(participant_id=participant.id, email=address, password_hash=stored),
            )
    except IntegrityError as exc:
        raise Conflict(f"{address} already has an account", rule="portal.email_taken") from exc
    session.refresh(user)
    session.refresh(participant)
    return PortalAccount(user=user, participant=participant)


@dataclass(frozen=True)
class LoginThrottle:
    """How many failed log-ins an account, and a client network, may have in a window."""

    max_account_failures: int
    max_network_failures: int
    window: dt.timedelta


def log_in(
    *,
    session: Session,
    email: str,
    password: str,
    network: str,
    throttle: LoginThrottle,
    now: dt.datetime | None = None,
) -> PortalAccount:
    """The account of ``email`` if ``password`` is its password, asked from ``network``
    (``medtrace.networks.client_network``).

    Raises:
        Throttled: the account or the network has had too many failures in the window
            (nothing hashed, nothing counted).
        Unauthenticated: the address and the password do not match an active account
            (counted against both).
    """
    address = email.strip().lower()
    account, place = _subjects(address, network)
    now = now or utcnow()
    since = now - throttle.window
    with session.begin():
        failures = login_failures.current_failures(
            session=session, subjects=[account, place], since=since
        )
        # No stored address holds a NUL (PostgreSQL text cannot): such an address is no
        # account's, and is never sent to the database, where it would be an error.
        user = (
            None
            if "\x00" in address
            else user_store.get_user_by_email(session=session, email=address)
        )
    _refuse_when_throttled(
        failures,
        {account: throttle.max_account_failures, place: throttle.max_network_failures},
        window=throttle.window,
        now=now,
    )
    matches = password_matches(password, user.password_hash if user else unknown_account_hash())
    if user is None or not matches or not user.active:
        with session.begin():
            login_failures.add_failure(
                session=session, subjects=[account, place], now=now, since=since
            )
        raise Unauthenticated(
            "this e-mail address and password do not match an active account",
            rule="portal.bad_credentials",
        )
    with session.begin():
        login_failures.clear_failures(session=session, subject=account)
        participant = participant_store.get_participant(
            session=session, participant_id=user.participant_id
        )
    assert participant is not None
    return PortalAccount(user=user, participant=participant)


def _subjects(address: str, network: str) -> tuple[str, str]:
    """What failures are counted against: the address tried (hashed: the table holds no
    address that no account has) and the client network."""
    return f"account:{hashlib.sha256(address.encode()).hexdigest()}", f"network:{network}"


def _refuse_when_throttled(
    failures: dict[str, tuple[int, dt.datetime]],
    limits: dict[str, int],
    *,
    window: dt.timedelta,
    now: dt.datetime,
) -> None:
    """Raise ``Throttled`` when a subject has reached its limit, with the seconds until the
    last such window has passed."""
    waits = [
        (start + window - now).total_seconds()
        for subject, (count, start) in failures.items()
        if count >= limits[subject]
    ]
    if waits:
        seconds = max(1, math.ceil(max(waits)))
        raise Throttled(
            "too many failed log-ins for this account or from this network; "
            f"try again in {seconds} s",
            retry_after=seconds,
            rule="portal.throttled",
        )


def get_account(*, session: Session, user_id: int) -> PortalAccount | None:
    """The active account with this id and its participant, or None."""
    user = user_store.get_user(session=session, user_id=user_id)
    if user is None or not user.active:
        return None
    participant = participant_store.get_participant(
        session=session, participant_id=user.participant_id
    )
    return None if participant is None else PortalAccount(user=user, participant=participant)


def participant_of_token_hash(*, session: Session, token_hash: str) -> Participant | None:
    """The participant whose unrevoked API token has this SHA-256: a portal session begun
    with a token keeps only its hash, and ends when the token is revoked."""
    return participant_store.get_participant_by_token_hash(session=session, token_hash=token_hash)
