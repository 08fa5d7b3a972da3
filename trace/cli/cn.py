"""``medtrace cn``: map China drug identification codes to products, and read a mapping.

A manufacturer maps each 7-digit drug identification code (药品标识码) it was issued to one
of its GTINs; packs carrying China drug traceability codes with that drug code can then be
commissioned as units of that GTIN and verified at ``/cn/{code}``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from medtrace.config import get_settings
from medtrace.scanners.client import CaptureClient
from medtrace.terminal import console

cn_app = typer.Typer(
    help="China drug traceability codes (药品追溯码): drug codes mapped to products.",
    no_args_is_help=True,
)

UrlOption = Annotated[str | None, typer.Option(help="Service URL (default MEDTRACE_PUBLIC_URL).")]


def _show(mapping: dict[str, Any]) -> None:
    console.print(
        f"drug code {mapping['drug_code']} → GTIN {mapping['gtin']} "
        f"(manufacturer {mapping['manufacturer']})"
    )


@cn_app.command("map")
def map_drug_code(
    drug_code: Annotated[str, typer.Argument(help="The 7-digit drug identification code.")],
    gtin: Annotated[str, typer.Option(help="The product's GTIN, within your company prefix.")],
    token: Annotated[
        str, typer.Option(envvar="MEDTRACE_TOKEN", help="The manufacturer's API token.")
    ],
    url: UrlOption = None,
) -> None:
    """Map DRUG_CODE to one of your products (the same mapping again changes nothing)."""
    with CaptureClient(url or get_settings().public_url, token) as client:
        mapping = client.map_cn_drug_code(drug_code, gtin)
    console.print("[green]mapped[/]", end=" ")
    _show(mapping)


@cn_app.command("show")
def show_drug_code(
    drug_code: Annotated[str, typer.Argument(help="The 7-digit drug identification code.")],
    url: UrlOption = None,
) -> None:
    """Print the product DRUG_CODE is mapped to."""
    with CaptureClient(url or get_settings().public_url, None) as client:
        mapping = client.cn_drug_code(drug_code)
    _show(mapping)
