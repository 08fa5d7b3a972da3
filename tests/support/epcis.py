"""EPCIS helpers for the tests: the official EPCIS 2.0 JSON schema, kept beside the EPCIS
tests, for every test that checks a document medtrace writes; documents and events to post,
and the capture calls of the REST binding."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx

from medtrace.demo import GTIN, with_check_digit
from support.chain import Chain

EXAMPLES = Path(__file__).resolve().parents[1] / "trace" / "epcis"
SCHEMA: dict[str, Any] = json.loads((EXAMPLES / "EPCIS-JSON-Schema.json").read_text())
CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": [CONTEXT],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-22T10:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def event(kind: str, step: str, disposition: str, gln: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "eventTime": fields.pop("eventTime", "2026-11-22T10:00:00.000Z"),
        "eventTimeZoneOffset": "+00:00",
        "action": fields.pop("action", "OBSERVE"),
        "bizStep": step,
        "disposition": disposition,
        "readPoint": {"id": f"https://id.gs1.org/414/{gln}"},
        **fields,
    }


def unit_epc(serial: str) -> str:
    return f"urn:epc:id:sgtin:9521234.{GTIN[0]}{GTIN[8:13]}.{serial}"


def new_sscc() -> str:
    return with_check_digit("39521234" + f"{secrets.randbelow(10**9):09d}")


def post(chain: Chain, token: str, body: bytes | dict[str, Any]) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(
        chain.server.url + "/epcis/capture",
        content=content,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/ld+json"},
        timeout=60,
    )


def job(chain: Chain, token: str, response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    answer = httpx.get(
        chain.server.url + response.headers["location"],
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    assert result["captureID"] == response.json()["captureID"]
    assert result["running"] is False
    return result
