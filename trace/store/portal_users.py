"""Portal accounts."""

from __future__ import annotations

from sqlmodel import Session, select

from medtrace.models.portal import PortalUser


def get_user(*, session: Session, user_id: int) -> PortalUser | None:
    """The account with this id."""
    return session.get(PortalUser, user_id)


def get_user_by_email(*, session: Session, email: str) -> PortalUser | None:
    """The account with this (normalised) e-mail address."""
    return session.exec(select(PortalUser).where(PortalUser.email == email)).first()


def add_user(*, session: Session, user: PortalUser) -> PortalUser:
    """Insert an account and flush, so it has an id."""
    session.add(user)
    session.flush()
    return user
