"""``medtrace participant``: participants, their API tokens and their capture grants,
straight on the database (the operator acts for the participant named by ``--gln``)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from sqlmodel import Session

from medtrace.config import get_settings
from medtrace.models import Participant, Role
from medtrace.terminal import console, err_console

if TYPE_CHECKING:
    from medtrace.schemas.grants import CaptureGrantPublic

participant_app = typer.Typer(
    help="Participants: manufacturers, distributors, pharmacies, regulators.", no_args_is_help=True
)
token_app = typer.Typer(help="A participant's API tokens.", no_args_is_help=True)
participant_app.add_typer(token_app, name="token")


@participant_app.command("add")
def participant_add(
    gln: Annotated[str, typer.Option(help="13-digit GLN with its check digit.")],
    name: Annotated[str, typer.Option(help="Name shown on verify pages.")],
    role: Annotated[Role, typer.Option(help="What the participant does.")],
    city: Annotated[str, typer.Option(help="City shown on verify pages.")] = "",
    company_prefix: Annotated[
        str | None, typer.Option(help="GS1 company prefix (manufacturers).")
    ] = None,
) -> None:
    """Register a participant and print its API token (shown once; store it safely)."""
    from medtrace.db import create_db_engine, upgrade_schema
    from medtrace.services.registry import create_participant

    engine = create_db_engine(get_settings().resolved_database_url)
    upgrade_schema(engine)
    with Session(engine) as session:
        created = create_participant(
            session=session,
            gln=gln,
            name=name,
            role=role,
            city=city,
            company_prefix=company_prefix,
        )
    console.print(f"[green]registered[/] {name} ({role.value}) GLN {gln}")
    console.print(f"API token: [bold]{created.token}[/]")


def _registry_session() -> Session:
    """A session on the configured database, its schema brought up to date."""
    from medtrace.db import create_db_engine, upgrade_schema

    engine = create_db_engine(get_settings().resolved_database_url)
    upgrade_schema(engine)
    return Session(engine)


@token_app.command("issue")
def token_issue(
    gln: Annotated[str, typer.Option(help="The participant's GLN.")],
) -> None:
    """Issue another API token for a participant and print it (shown once; its other tokens
    stay valid until revoked, so clients can switch over without downtime)."""
    from medtrace.services.registry import issue_token

    with _registry_session() as session:
        token = issue_token(session=session, gln=gln)
    console.print(f"API token: [bold]{token}[/]")


@token_app.command("revoke")
def token_revoke(
    token: Annotated[
        str | None, typer.Argument(help="The token to revoke (or --all with --gln).")
    ] = None,
    gln: Annotated[str | None, typer.Option(help="With --all: the participant's GLN.")] = None,
    all_tokens: Annotated[
        bool, typer.Option("--all", help="Revoke every token of the participant --gln.")
    ] = False,
) -> None:
    """Revoke an API token: every request carrying it is refused from now on (401)."""
    from medtrace.services.registry import revoke_all_tokens, revoke_token

    one = token is not None and not all_tokens
    every = token is None and all_tokens and gln is not None
    if not (one or every):
        err_console.print("[red]error[/] give a TOKEN, or --all with --gln")
        raise typer.Exit(code=2)
    with _registry_session() as session:
        if token is not None:
            revoke_token(session=session, token=token)
            console.print("[green]revoked[/] 1 token")
        else:
            assert gln is not None
            count = revoke_all_tokens(session=session, gln=gln)
            console.print(f"[green]revoked[/] {count} token(s) of {gln}")


grant_app = typer.Typer(
    help="Capture grants: another participant captures events at a participant's GLN.",
    no_args_is_help=True,
)
participant_app.add_typer(grant_app, name="grant")


def _acting(session: Session, gln: str) -> Participant:
    """The participant the operator acts for, by GLN, detached from ``session`` so that the
    commit does not expire it (the service then begins its own transaction)."""
    from medtrace.services.registry import participant_by_gln

    with session.begin():
        participant = participant_by_gln(session, gln)
        session.expunge(participant)
    return participant


def _print_grants(grants: list[CaptureGrantPublic]) -> None:
    table = Table("id", "grantor", "grantee", "gln", "granted", "ends", "revoked", "active")
    for g in grants:
        revoked = "" if g.revoked_at is None else f"{g.revoked_at:%Y-%m-%d %H:%M} ({g.revoked_by})"
        table.add_row(
            str(g.id),
            g.grantor,
            g.grantee,
            g.gln,
            f"{g.granted_at:%Y-%m-%d %H:%M} ({g.granted_by})",
            f"{g.ends_at:%Y-%m-%d %H:%M}",
            revoked,
            "yes" if g.active else "no",
        )
    console.print(table)


@grant_app.command("add")
def grant_add(
    gln: Annotated[str, typer.Option(help="The grantor's GLN, where the grantee may capture.")],
    grantee: Annotated[str, typer.Option(help="GLN of the participant that captures for it.")],
    ends_at: Annotated[
        dt.datetime,
        typer.Option(
            help="When the grant ends (UTC unless the time carries an offset).",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"],
        ),
    ],
) -> None:
    """Let GRANTEE capture events at GLN (its owner's) until ENDS_AT."""
    from medtrace.schemas.grants import CaptureGrantCreate
    from medtrace.services.grants import Channel, grant_capture

    with _registry_session() as session:
        grantor = _acting(session, gln)
        created = grant_capture(
            session=session,
            grantor=grantor,
            grant_in=CaptureGrantCreate(
                grantee=grantee,
                gln=gln,
                ends_at=ends_at if ends_at.tzinfo else ends_at.replace(tzinfo=dt.UTC),
            ),
            channel=Channel.CLI,
        )
    console.print(f"[green]granted[/] #{created.id}: {grantee} captures at {gln}")
    _print_grants([created])


@grant_app.command("revoke")
def grant_revoke(
    grant_id: Annotated[int, typer.Argument(help="The grant's id.", min=1)],
    gln: Annotated[str, typer.Option(help="The grantor's GLN (only the grantor revokes).")],
) -> None:
    """Revoke a grant: its grantee's next capture at the grantor's GLN is refused."""
    from medtrace.services.grants import Channel, revoke_capture_grant

    with _registry_session() as session:
        grantor = _acting(session, gln)
        revoked = revoke_capture_grant(
            session=session, grantor=grantor, grant_id=grant_id, channel=Channel.CLI
        )
    console.print(f"[green]revoked[/] #{revoked.id}")


@grant_app.command("list")
def grant_list(
    gln: Annotated[str, typer.Option(help="The participant whose grants (given or received).")],
) -> None:
    """The grants a participant gave or received, oldest first."""
    from medtrace.services.grants import list_capture_grants

    with _registry_session() as session:
        participant = _acting(session, gln)
        _print_grants(list_capture_grants(session=session, participant=participant))
