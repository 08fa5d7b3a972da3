"""``medtrace portal``: accounts for the professionals' pages."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer
from sqlmodel import Session

from medtrace.config import get_settings
from medtrace.db import create_db_engine, upgrade_schema
from medtrace.services.portal_accounts import MIN_PASSWORD_LENGTH, add_user
from medtrace.terminal import console

portal_app = typer.Typer(help="The professionals' portal.", no_args_is_help=True)
user_app = typer.Typer(help="Portal accounts (e-mail and password).", no_args_is_help=True)
portal_app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    gln: Annotated[str, typer.Option(help="GLN of the participant the person works for.")],
    email: Annotated[str, typer.Option(help="The person's e-mail address (the log-in name).")],
    ask: Annotated[
        bool,
        typer.Option(
            "--ask/--generate",
            help="Ask for the password (hidden, twice) or generate one and print it once.",
        ),
    ] = False,
) -> None:
    """Create a portal account; its password is stored only as a scrypt hash."""
    if ask:
        password = typer.prompt(
            f"password (at least {MIN_PASSWORD_LENGTH} characters)",
            hide_input=True,
            confirmation_prompt=True,
        )
    else:
        password = secrets.token_urlsafe(15)
    engine = create_db_engine(get_settings().resolved_database_url)
    upgrade_schema(engine)
    with Session(engine) as session:
        account = add_user(session=session, gln=gln, email=email, password=password)
    console.print(
        f"[green]account[/] {account.user.email} for {account.participant.name} "
        f"({account.participant.role.value}, GLN {account.participant.gln})"
    )
    if not ask:
        console.print(f"password: [bold]{password}[/] (shown once; hand it over safely)")
