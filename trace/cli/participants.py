"""``medtrace participant``: participants and their API tokens, straight on the database."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlmodel import Session

from medtrace.config import get_settings
from medtrace.models import Role
from medtrace.terminal import console, err_console

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
