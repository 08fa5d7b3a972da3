"""Portal accounts: people of a participant who log in to the portal with a password."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel

from medtrace.models import utc_column, utcnow


class PortalUser(SQLModel, table=True):
    """A person's portal account; it belongs to one participant and sees only its data.

    ``password_hash`` is a scrypt hash in modular-crypt-like form (see
    ``medtrace.services.portal_accounts``), never the password.
    """

    __tablename__ = "portal_users"

    id: int | None = Field(default=None, primary_key=True)
    participant_id: int = Field(foreign_key="participants.id", index=True)
    email: str = Field(sa_column=Column(String(254), unique=True, nullable=False))
    password_hash: str = Field(sa_type=String(200))
    active: bool = True
    created_at: dt.datetime = Field(default_factory=utcnow, sa_column=utc_column())


class LoginFailure(SQLModel, table=True):
    """Failed portal log-ins of one subject in the current window: the brute-force throttle.

    A subject is an account (``account:`` and the SHA-256 of the address tried, whether an
    account has it or not) or a client network (``network:`` and its CIDR). Kept in the
    database so that the throttle holds across API workers and replicas; a window that has
    passed counts as no row (the next failure starts a new one).
    """

    __tablename__ = "portal_login_failures"

    subject: str = Field(sa_type=String(80), primary_key=True)
    failures: int
    window_start: dt.datetime = Field(sa_column=utc_column())
