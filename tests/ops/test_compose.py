"""docker-compose.yml stays true: no Docker engine runs here, so check what can be checked.

Every medtrace command in it must resolve through the real CLI with options it knows, and
every MEDTRACE_* variable must be a setting, a CLI option's environment variable, or one the
service's own command uses. tests/ops/test_roles.py runs the same roles as processes.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from medtrace.cli import app
from medtrace.config import HttpSettings, variables
from medtrace.roles import ProcessRole

COMPOSE = yaml.safe_load((Path(__file__).parents[2] / "docker-compose.yml").read_text())
MEDTRACE_SERVICES = {
    name: service
    for name, service in COMPOSE["services"].items()
    if service.get("image") == "medtrace:latest"
}


def invocations(service: dict[str, Any]) -> list[list[str]]:
    """The medtrace argument lists a service runs (directly, or inside ``sh -c``)."""
    command = service["command"]
    if service.get("entrypoint") != ["sh", "-c"]:
        return [command]
    script = " ".join(command).replace("$$", "$")
    return [shlex.split(part)[1:] for part in re.findall(r"medtrace [^;]+", script)]


def resolve(args: list[str]) -> tuple[Any, list[str]]:
    """Walk the CLI's groups down to the command ``args`` names; return it and its options.

    (Typer carries its own copy of click, so groups are recognised by their ``commands``.)
    """
    command: Any = typer.main.get_command(app)
    rest = list(args)
    while getattr(command, "commands", None) and rest and not rest[0].startswith("-"):
        assert rest[0] in command.commands, f"no command {rest[0]!r} in {args}"
        command, rest = command.commands[rest[0]], rest[1:]
    return command, rest


def envvars_of(command: Any) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        env = getattr(param, "envvar", None)
        names.update([env] if isinstance(env, str) else list(env or []))
    return names


def test_the_compose_file_has_every_role() -> None:
    assert {"postgres", "mosquitto", "api", "sequencer", "scheduler", "witness"} <= set(
        COMPOSE["services"]
    )
    assert any(name.startswith("bridge") for name in COMPOSE["services"])


@pytest.mark.parametrize("name", sorted(MEDTRACE_SERVICES))
def test_every_command_parses_with_the_real_cli(name: str) -> None:
    for args in invocations(MEDTRACE_SERVICES[name]):
        command, rest = resolve(args)
        known = {opt for param in command.params for opt in param.opts}
        given = {token.split("=", 1)[0] for token in rest if token.startswith("--")}
        assert given <= known, f"{name}: unknown options {given - known} for {args}"
        if "--role" in rest:
            role = rest[rest.index("--role") + 1]
            assert role in {r.value for r in ProcessRole}, f"{name}: no role {role}"


@pytest.mark.parametrize("name", sorted(MEDTRACE_SERVICES))
def test_every_variable_is_something_medtrace_reads(name: str) -> None:
    service = MEDTRACE_SERVICES[name]
    settings = {variable.name for variable in variables()}
    commands = [resolve(args)[0] for args in invocations(service)]
    read_by_cli = set().union(*(envvars_of(c) for c in commands))
    script = " ".join(service["command"])
    for variable in service.get("environment", {}):
        if variable.startswith("MEDTRACE_"):
            assert variable in settings | read_by_cli or variable in script, (
                f"{name}: {variable} is neither a setting nor read by its command"
            )


def test_every_role_runs_through_serve() -> None:
    roles = {
        args[args.index("--role") + 1]
        for service in MEDTRACE_SERVICES.values()
        for args in invocations(service)
        if args[0] == "serve"
    }
    assert roles == {r.value for r in ProcessRole}
    assert all(
        args[0] in {"serve", "db"} for s in MEDTRACE_SERVICES.values() for args in invocations(s)
    )


def test_roles_that_serve_no_api_replace_the_images_health_check() -> None:
    for name, service in MEDTRACE_SERVICES.items():
        if service["command"][:3] != ["serve", "--role", "api"] and name != "migrate":
            assert "healthcheck" in service, f"{name} keeps the image's API health check"


def test_the_api_believes_forwarded_addresses_from_the_proxy_only() -> None:
    """Behind the proxy every client would otherwise be one place (the proxy's address)."""
    proxy = COMPOSE["services"]["proxy"]["networks"]["default"]["ipv4_address"]
    listed = COMPOSE["services"]["api"]["environment"]["MEDTRACE_TRUSTED_PROXIES"]
    trusted = HttpSettings.model_validate_json(f'{{"trusted_proxies": {listed}}}').trusted_proxies
    assert trusted == [proxy]
    nginx = (Path(__file__).parents[2] / "deploy" / "nginx.conf").read_text()
    assert "X-Forwarded-For $remote_addr;" in nginx, "the proxy passes the client's address"
