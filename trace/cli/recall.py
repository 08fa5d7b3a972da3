"""``medtrace recall``: recall a lot with a station's signature, and print its reach."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medtrace.cli.options import TokenOption, UrlOption
from medtrace.config import get_settings
from medtrace.terminal import console


def recall(
    gtin: Annotated[str, typer.Option(help="The product's 14-digit GTIN.")],
    lot: Annotated[str, typer.Option(help="The lot (batch) to recall.")],
    reason: Annotated[str, typer.Option(help="Why, in words the holders will read.")],
    station_id: Annotated[str, typer.Option(help="The signing station's id.")],
    key_file: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="The station's key file.")
    ],
    gln: Annotated[str, typer.Option(help="The recalling participant's GLN.")],
    token: TokenOption,
    url: UrlOption = None,
) -> None:
    """Recall a lot (its manufacturer or a regulator) and print its reach.

    Signs a recall event with the station's key; every unit of the lot is then refused for
    shipping and dispensing, and every current holder is alerted.
    """
    from medtrace.custody import FINAL_STATES
    from medtrace.scanners.client import CaptureClient
    from medtrace.scanners.station import Station

    final_state_names = {s.value for s in FINAL_STATES}
    station = Station.from_key_file(station_id, gln, key_file)
    with CaptureClient(url or get_settings().public_url, token) as client:
        recorded = client.recall(station.recall(gtin, lot, reason=reason))
        reach = client.recall_reach(gtin, lot)
    counts = reach["counts"]
    console.print(
        f"[green]recalled[/] lot {lot} of GTIN {gtin}: leaf {recorded['leaf_index']}, "
        f"{recorded['alerts_raised']} holder alerts raised"
    )
    console.print(
        f"reach: {counts['units']} units; {counts['held']} held by {counts['holders']} "
        f"participants, {counts['in_transit']} in transit, {counts['dispensed']} dispensed, "
        f"{counts['out_of_chain']} destroyed or exported"
    )
    holders: dict[str, int] = {}  # who still holds units, to act on them
    for unit in reach["units"]:
        if unit["holder"] and unit["state"] not in final_state_names:
            name = f"{unit['holder']['name']} ({unit['holder']['gln']})"
            holders[name] = holders.get(name, 0) + 1
    for name, units in sorted(holders.items()):
        console.print(f"  {name}: {units} units")


def install(app: typer.Typer) -> None:
    """Mount ``recall`` on the ``medtrace`` command."""
    app.command()(recall)
