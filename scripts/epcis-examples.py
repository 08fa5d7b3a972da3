"""Capture GS1's EPCIS 2.0 JSON-LD examples and query them back (development script, not a test).

Usage: ``.venv/bin/python scripts/epcis-examples.py [EXAMPLES_DIR]`` (default: the shared
reference folder ``../shared/reference/epcis/examples`` beside the repository).

For each example, a fresh medtrace (its own SQLite database, the real app through HTTP)
registers the participants the example names, and puts each object where the example finds
it (commissioned by the owner of its company prefix, shipped to the readPoint, received there
unless the example receives it), by EPCIS capture too. Then each event of the example is
captured as sent, by the participant at its readPoint, and read back with
``GET /epcis/events/{eventID}``; GS1's reference implementation (``epcis-event-hash-generator``)
hashes what was sent and what came back. It prints one line per event: captured or why not
(the rule medtrace answered), and whether the hashes are equal.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from epcis_event_hash_generator import hash_generator
from epcis_event_hash_generator.json_to_py import event_list_from_epcis_document_json
from fastapi.testclient import TestClient
from sqlmodel import Session

from medtrace.api.main import create_app
from medtrace.config import Settings
from medtrace.demo import with_check_digit
from medtrace.epcis.capture import medtrace_events, read_document
from medtrace.epcis.members import check_fields
from medtrace.errors import MedtraceError
from medtrace.models import Role
from medtrace.services.registry import create_participant

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "reference" / "epcis" / "examples"
CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
_ROLES = {"dispense": Role.PHARMACY, "commission": Role.MANUFACTURER}


@contextmanager
def medtrace() -> Iterator[tuple[TestClient, Any]]:
    """A fresh app on its own SQLite database, and its engine."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(data_dir=Path(folder))
        settings = settings.model_copy(
            update={"http": settings.http.model_copy(update={"rate_limit": 0})}
        )
        app = create_app(settings)
        with TestClient(app) as client:
            yield client, app.state.engine


class PlacementRefused(Exception):
    """Putting an example's objects in place was refused (the rule is the message)."""


class World:
    """The participants of one example and the objects put in place for it."""

    def __init__(self, client: TestClient, engine: Any, context: list[Any]) -> None:
        self.client, self.engine, self.context = client, engine, context
        self.tokens: dict[str, str] = {}
        self.placed: set[str] = set()

    def token(self, gln: str, role: Role, prefix: str | None = None) -> str:
        """The token of the participant at ``gln``, registered on first use."""
        if gln not in self.tokens:
            with Session(self.engine) as session:
                self.tokens[gln] = create_participant(
                    session=session, gln=gln, name=f"example {gln}", role=role,
                    company_prefix=prefix if role is Role.MANUFACTURER else None,
                ).token  # fmt: skip
        return self.tokens[gln]

    def capture(self, gln: str, events: list[dict[str, Any]]) -> str | None:
        """Capture ``events`` as the participant at ``gln``; None, or why it was refused."""
        document = {
            "@context": self.context, "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2026-01-01T00:00:00Z", "epcisBody": {"eventList": events},
        }  # fmt: skip
        headers = {"Authorization": f"Bearer {self.tokens[gln]}"}
        posted = self.client.post("/epcis/capture", json=document, headers=headers)
        if posted.status_code != 202:
            return str(posted.json()["detail"]["rule"])
        job = self.client.get(posted.headers["location"], headers=headers).json()
        return None if job["success"] else str(job["errors"][0]["rule"])

    def place(self, event: dict[str, Any], earlier: str) -> None:
        """Put the objects of a medtrace event where the example finds them."""
        units = [event] if "serial" in event else event.get("children", [])
        key = event.get("sscc") or f"{event.get('gtin')}/{event.get('serial')}"
        if event["type"] == "commission" or key in self.placed or not units:
            return
        prefix = units[0]["gtin"][1:8]
        maker = with_check_digit(prefix.ljust(12, "0"))
        self.token(maker, Role.MANUFACTURER, prefix)
        self.token(event["gln"], _ROLES.get(event["type"], Role.DISTRIBUTOR))
        steps = [_epcis("commissioning", "active", maker, earlier, "ADD", units=units)]
        if "sscc" in event:
            steps.append(_epcis("packing", "in_progress", maker, earlier, "ADD", units=units,
                                parent=event["sscc"]))  # fmt: skip
        target = {"sscc": event["sscc"]} if "sscc" in event else units[0]
        if event["gln"] != maker:
            steps.append(_epcis("shipping", "in_transit", maker, earlier, units=[target],
                                to=event["gln"]))  # fmt: skip
        refused = self.capture(maker, steps)
        if refused is None and event["gln"] != maker and event["type"] != "receive":
            refused = self.capture(event["gln"], [_epcis("receiving", "in_progress", event["gln"],
                                                         earlier, units=[target])])  # fmt: skip
        if refused is not None:
            raise PlacementRefused(refused)
        self.placed.add(key)


def _uri(ref: dict[str, str]) -> str:
    if "sscc" in ref:
        return f"https://id.gs1.org/00/{ref['sscc']}"
    return f"https://id.gs1.org/01/{ref['gtin']}/21/{quote(ref['serial'], safe='')}"


def _epcis(
    step: str, disposition: str, gln: str, when: str, action: str = "OBSERVE", *,
    units: list[dict[str, str]], parent: str | None = None, to: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    event: dict[str, Any] = {
        "type": "AggregationEvent" if parent else "ObjectEvent", "eventTime": when,
        "eventTimeZoneOffset": "+00:00", "action": action, "bizStep": step,
        "disposition": disposition, "readPoint": {"id": f"https://id.gs1.org/414/{gln}"},
    }  # fmt: skip
    if parent:
        event |= {
            "parentID": f"https://id.gs1.org/00/{parent}",
            "childEPCs": list(map(_uri, units)),
        }
    else:
        event["epcList"] = list(map(_uri, units))
    if step == "commissioning":
        expiry = dt.datetime.fromisoformat(when).date() + dt.timedelta(days=730)
        event["ilmd"] = {"cbvmda:lotNumber": "L1", "cbvmda:itemExpirationDate": expiry.isoformat()}
    if to:
        event["destinationList"] = [
            {"type": "owning_party", "destination": f"https://id.gs1.org/414/{to}"}
        ]
    return event


def _hash(context: list[Any], event: dict[str, Any]) -> str:
    document = {"@context": context, "type": "EPCISDocument", "epcisBody": {"eventList": [event]}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hashes = hash_generator.epcis_hashes_from_events(
            event_list_from_epcis_document_json(json.loads(json.dumps(document)))
        )
    return str(hashes[0])


def run_example(path: Path) -> list[tuple[str, str, str]]:
    """Each event of one example: (event, captured or why not, hash equal?)."""
    document = json.loads(path.read_text())
    try:
        incoming = read_document(document)
    except MedtraceError as exc:
        return [("-", f"refused: {exc.rule}", "-")]
    context = [CONTEXT, *incoming.contexts]
    rows = []
    with medtrace() as (client, engine):
        world = World(client, engine, context)
        for index, raw in enumerate(incoming.events):
            name = f"{index} {raw.get('type')}/{raw.get('bizStep')}"
            try:
                check_fields(raw, incoming.prefixes)
                mapped = medtrace_events(raw)
                when = dt.datetime.fromisoformat(str(raw["eventTime"])) - dt.timedelta(hours=1)
                for event in mapped:
                    world.place(event, when.isoformat())
            except MedtraceError as exc:
                rows.append((name, f"skipped: {exc.rule}", "-"))
                continue
            except PlacementRefused as exc:
                rows.append((name, f"skipped: setting it up was refused ({exc})", "-"))
                continue
            world.token(mapped[0]["gln"], _ROLES.get(mapped[0]["type"], Role.DISTRIBUTOR))
            refused = world.capture(mapped[0]["gln"], [raw])
            if refused is not None:
                rows.append((name, f"refused: {refused}", "-"))
                continue
            headers = {"Authorization": f"Bearer {world.tokens[mapped[0]['gln']]}"}
            back = client.get("/epcis/events/" + quote(str(raw.get("eventID")), safe=""),
                              headers=headers).json()  # fmt: skip
            back_context = back.pop("@context")
            equal = _hash(context, raw) == _hash(back_context, back)
            rows.append((name, "captured", "equal" if equal else "DIFFERENT"))
    return rows


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    print("| example | event | captured? | CBV 2.0 hash back = sent? |\n|---|---|---|---|")
    different = 0
    for path in sorted(folder.glob("*.jsonld")):
        for name, outcome, equal in run_example(path):
            different += equal == "DIFFERENT"
            print(f"| {path.stem} | {name} | {outcome} | {equal} |", flush=True)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
