"""Extremes against every route of a live server, on SQLite and PostgreSQL: no answer is a 5xx.

Schemathesis with its defaults samples typical values; the 500s of issue 18 item 9 hid at the
edges (infinity, 2^63, 5 000 digits, year 9999 at UTC-12, a partial FHIR date). Here each case
keeps every other value valid (the test chain's identifiers, a participant's token, so the
request reaches its handler) and puts one extreme in one place:

- every path, query, header and cookie parameter, and every field of every JSON or form body,
  of every operation of the app's own OpenAPI document (so a new route is covered at once);
- every search parameter of every resource in the FHIR CapabilityStatement, and the bodies of
  the two routes that read theirs by hand (FHIR dispense, EPCIS capture);
- every field of the events stations sign (custody events, lot records, recalls), signed, so
  the extreme gets past the signature check;
- every parameter and form field of the portal, with a logged-in session;
- (``test_mqtt_extremes``) every field of a sensor reading published through Mosquitto to a
  bridge, which must stay up.

Any 5xx (or a dropped connection) fails the test with its (method, path, place, value, status).
The counts are printed in the terminal summary (section ``extremes``) and recorded as
properties for the JUnit report.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

from medtrace.demo import GTIN
from medtrace.errors import InvalidInput
from medtrace.iot.simulator import SimulatedSensor
from medtrace.models.iot import Reading
from medtrace.protocol.envelope import sign_event
from medtrace.protocol.readings import reading_topic, sign_reading
from medtrace.web import portal
from support import fhir, lots
from support.chain import EXPIRY, LOT, Chain, ago, new_serial
from support.iot import (
    MOSQUITTO_HOST,
    MOSQUITTO_PORT,
    broker_up,
    forget_session,
    new_sensors,
    poll,
    start_bridge,
    wait_until,
)

pytestmark = pytest.mark.slow

CSET82_SPECIALS = "!\"%&'()*+,-./:;<=>?_"
TIMES = [
    f"{day}{offset}"
    for day in ("0001-01-01T00:00:00", "9999-12-31T23:59:59.999999")
    for offset in ("Z", "+14:00", "-12:00", "+23:59", "-23:59")
]
#: Text extremes, sent as they are in URLs and forms, and as JSON strings in bodies.
TEXT = [
    *["inf", "-inf", "Infinity", "NaN", "1e400", "-1e400", "1e-400", "-1", "0", "-0", "0.5"],
    *[str(n) for n in (2**31 - 1, 2**31, 2**53, 2**63 - 1, 2**63, 2**64, -(2**63) - 1)],
    "9" * 5_000,
    "-" + "9" * 5_000,
    *TIMES,
    *["0001-01-01", "9999-12-31", "2030", "2030-01", "0000-00-00", "2030-02-30", "99999-01-01"],
    *["", " ", "x" * 10_000, CSET82_SPECIALS, *CSET82_SPECIALS],
    *["\x00", "\x1d", "é", "\U0001d11e", "../..", "null", "[]", "{}", "true"],
]
#: Raw JSON extremes for body fields (besides every ``TEXT`` as a string).
DEPTH = 5_000
JSON_RAW = [
    *["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "-1", "0", "1.5", "-0.0"],
    *[str(n) for n in (2**31, 2**53, 2**63, 2**64, -(2**63) - 1)],
    "9" * 5_000,
    *["null", "true", "[]", "{}", "[" * DEPTH + "]" * DEPTH, '{"a":' * DEPTH + "1" + "}" * DEPTH],
]
#: In bodies, text extremes that mean something to a parser of numbers, times or identifiers.
JSON_TEXT = [*TIMES, "0001-01-01", "9999-12-31", "2030", "2030-01", "", "x" * 10_000]
EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
JSON_VALUES = JSON_RAW + [
    json.dumps(t) for t in (*JSON_TEXT, CSET82_SPECIALS, "\x00", "9" * 5_000, "inf", str(2**64))
]


@dataclass
class Tally:
    """What was sent, and every answer that was a server error.

    Cases of a section run on a few threads (the server answers several at once); a section
    whose cases share state (the portal's session) runs them in order.
    """

    parameters: set[tuple[str, str, str]] = field(default_factory=set)
    cases: int = 0
    unsendable: int = 0
    failures: list[str] = field(default_factory=list)
    sections: dict[str, str] = field(default_factory=dict)
    _pool: ThreadPoolExecutor | None = None
    _pending: list[Future[None]] = field(default_factory=list)

    def section(self, name: str, run: Callable[[], object], *, threads: int = 4) -> None:
        """Run one part of the suite, noting its cases and seconds for the report; with
        ``threads=0`` each case is sent before the next is made."""
        cases, started = self.cases, time.monotonic()
        with ThreadPoolExecutor(max(threads, 1)) as pool:
            self._pool = pool if threads else None
            run()
            for future in self._pending:
                future.result()
        self._pool, self._pending = None, []
        self.sections[name] = f"{self.cases - cases} cases in {time.monotonic() - started:.0f} s"

    def check(self, label: tuple[str, str, str], value: object, send: Callable[[], int]) -> None:
        """Send one case; a 5xx or a dropped connection is a failure."""
        self.parameters.add(label)
        self.cases += 1
        if self._pool is None:
            self._send(label, value, send)
        else:
            self._pending.append(self._pool.submit(self._send, label, value, send))

    def _send(self, label: tuple[str, str, str], value: object, send: Callable[[], int]) -> None:
        detail = ""
        try:
            status = send()
        except httpx.LocalProtocolError:  # the client cannot send it (a header with a space)
            self.unsendable += 1
            return
        except httpx.TransportError:  # perhaps a connection the server closed before: again
            try:
                status = send()
            except httpx.TransportError as exc:
                status, detail = -1, type(exc).__name__
        if status >= 500 or status < 0:
            self.failures.append(f"{label} value={str(value)[:60]!r} status={status} {detail}")


# --- baselines: the chain's real identifiers -------------------------------------------------


@dataclass
class Baseline:
    """Valid values for named parameters, from the test chain."""

    values: dict[str, str]

    def of(self, name: str, schema: dict[str, Any]) -> str:
        """A valid value for a parameter: the chain's, the schema's default, or by type."""
        if name in self.values:
            return self.values[name]
        if "default" in schema and schema["default"] is not None:
            default = schema["default"]
            return json.dumps(default) if isinstance(default, bool) else str(default)
        kind = schema.get("type") or next(
            (s.get("type") for s in schema.get("anyOf", []) if s.get("type") != "null"), "string"
        )
        return {"integer": "1", "number": "1", "boolean": "false"}.get(kind, "x")


def _baseline(chain: Chain, serial: str) -> Baseline:
    return Baseline(
        {
            "gtin": GTIN,
            "serial": serial,
            "lot": LOT,
            "gln": chain.pharmacy.gln,
            "station_id": chain.maker.station.station_id,
            "sensor_id": "extremes-sensor",
            "seq": "1",
            "sha256": "0" * 64,
            "level": "0",
            "path": "000",
            "start": "0",
            "end": "1",
            "index": "0",
            "size": "1",
            "from": "1",
            "to": "1",
            "resource_type": "Device",
            "17": EXPIRY.strftime("%y%m%d"),
            "lang": "en",
        }
    )


# --- OpenAPI operations -----------------------------------------------------------------------


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _example(doc: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> Any:
    """A small instance of a JSON schema: its required members, filled by type."""
    schema = _resolve(doc, schema)
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    if options:
        return _example(doc, options[0], depth)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        members = schema.get("properties", {})
        return {
            name: _example(doc, members[name], depth + 1)
            for name in schema.get("required", [])
            if depth < 4
        }
    if kind == "array":
        return [_example(doc, schema.get("items", {}), depth + 1)] if depth < 4 else []
    return {"integer": 1, "number": 1.0, "boolean": False}.get(kind or "", "x")


def _member_paths(doc: dict[str, Any], schema: dict[str, Any], depth: int = 0) -> Iterator[tuple]:
    """Paths to every member a body schema names (array items as index 0), to depth 4."""
    schema = _resolve(doc, schema)
    for option in schema.get("anyOf", []):
        if option.get("type") != "null":
            yield from _member_paths(doc, option, depth)
    if depth >= 4:
        return
    for name, member in schema.get("properties", {}).items():
        yield (name,)
        yield from ((name, *rest) for rest in _member_paths(doc, member, depth + 1))
    if schema.get("type") == "array":
        yield (0,)
        yield from ((0, *rest) for rest in _member_paths(doc, schema.get("items", {}), depth + 1))


_MARK = "\uffff-extreme-\uffff"


def _with_raw(body: Any, where: tuple, raw: str) -> str:
    """The JSON text of ``body`` with the raw JSON ``raw`` at ``where`` (created if absent)."""
    body = copy.deepcopy(body)
    if not where:
        return raw
    node = body
    for step in where[:-1]:
        if isinstance(node, list):
            node = node[0] if node else node
        elif isinstance(node, dict):
            node = node.setdefault(step, {} if not isinstance(step, int) else [])
    last = where[-1]
    if isinstance(node, list):
        if node:
            node[0] = _MARK
        else:
            node.append(_MARK)
    elif isinstance(node, dict):
        node[last] = _MARK
    else:
        return raw
    return json.dumps(body).replace(json.dumps(_MARK), raw)


def _encode_path(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{([^}:]+)(?::path)?\}", lambda m: quote(values[m[1]], safe=""), template)


def _sendable_header(value: str) -> bool:
    return value.isascii() and value.isprintable() and len(value) < 8_000


def _operation_cases(
    client: httpx.Client, doc: dict[str, Any], base: Baseline, tally: Tally
) -> int:
    """Every parameter and body member of every operation, each with every extreme."""
    operations = 0
    for template, methods in doc["paths"].items():
        for method, operation in methods.items():
            operations += 1
            parameters = operation.get("parameters", [])
            valid = {p["name"]: base.of(p["name"], p.get("schema", {})) for p in parameters}
            required = {p["name"] for p in parameters if p.get("required")}
            for parameter in parameters:
                _parameter_cases(
                    client, method, template, parameter, parameters, valid, required, tally
                )
            _body_cases(client, doc, method, template, operation, valid, tally)
    return operations


def _parameter_cases(
    client: httpx.Client,
    method: str,
    template: str,
    parameter: dict[str, Any],
    parameters: list[dict[str, Any]],
    valid: dict[str, str],
    required: set[str],
    tally: Tally,
) -> None:
    """One parameter with every extreme; the required others valid, the optional left out."""
    name, place = parameter["name"], parameter["in"]
    sent = [p for p in parameters if p["name"] in required or p["name"] == name]
    for value in TEXT:
        values = {**valid, name: value}
        where = {p["name"]: p["in"] for p in sent}
        query = {n: values[n] for n, at in where.items() if at == "query"}
        headers = {n: values[n] for n, at in where.items() if at == "header"}
        cookies = {n: values[n] for n, at in where.items() if at == "cookie"}
        if not all(_sendable_header(v) for v in (*headers.values(), *cookies.values())):
            continue
        if cookies:  # as a header: httpx deprecates per-request cookies
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        request = client.build_request(
            method.upper(), _encode_path(template, values), params=query, headers=headers
        )
        tally.check(
            (method.upper(), template, f"{place}:{name}"),
            value,
            lambda r=request: client.send(r).status_code,
        )


def _body_cases(
    client: httpx.Client,
    doc: dict[str, Any],
    method: str,
    template: str,
    operation: dict[str, Any],
    valid: dict[str, str],
    tally: Tally,
) -> None:
    content = operation.get("requestBody", {}).get("content", {})
    url = _encode_path(template, valid)
    if "application/json" in content:
        schema = content["application/json"]["schema"]
        body = _example(doc, schema)
        for where in [(), *_member_paths(doc, schema)]:
            label = (method.upper(), template, "body:" + ".".join(map(str, where)))
            for raw in JSON_VALUES:
                text = _with_raw(body, where, raw)
                tally.check(label, raw, lambda t=text: _post_json(client, method, url, t))
    elif "multipart/form-data" in content:
        schema = _resolve(doc, content["multipart/form-data"]["schema"])
        for name, member in schema.get("properties", {}).items():
            if member.get("format") == "binary" or member.get("type") == "array":
                continue
            for value in TEXT:
                tally.check(
                    (method.upper(), template, f"form:{name}"),
                    value,
                    lambda n=name, v=value: (
                        client.request(
                            method.upper(),
                            url,
                            data={n: v},
                            files={"documents": ("a.pdf", b"%PDF")},
                        ).status_code
                    ),
                )


def _post_json(client: httpx.Client, method: str, url: str, text: str, kind: str = "json") -> int:
    headers = {"Content-Type": f"application/{kind}"}
    return client.request(method.upper(), url, content=text.encode(), headers=headers).status_code


# --- what the OpenAPI document cannot describe ---------------------------------------------


def _fhir_cases(client: httpx.Client, tally: Tally, serial: str) -> None:
    """Every search parameter of the CapabilityStatement, the paging ones, and every member
    of a dispense a hospital posts."""
    statement = client.get("/fhir/metadata").json()
    for resource in statement["rest"][0]["resource"]:
        kind = resource["type"]
        names = [p["name"] for p in resource.get("searchParam", [])] + ["_count", "_offset", "_id"]
        for name in names:
            for value in TEXT:
                tally.check(
                    ("GET", f"/fhir/{kind}", f"query:{name}"),
                    value,
                    lambda k=kind, n=name, v=value: (
                        client.get(f"/fhir/{k}", params={n: v}).status_code
                    ),
                )
    dispense = fhir.dispense_of(serial)
    for where in [(), *_json_paths(dispense)]:
        for raw in JSON_VALUES:
            text = _with_raw(dispense, where, raw)
            tally.check(
                ("POST", "/fhir/MedicationDispense", "body:" + ".".join(map(str, where))),
                raw,
                lambda t=text: _post_json(
                    client, "post", "/fhir/MedicationDispense", t, "fhir+json"
                ),
            )


def _json_paths(value: Any, depth: int = 0) -> Iterator[tuple]:
    """Paths to every member of a JSON value (array items as index 0)."""
    if depth >= 5:
        return
    members = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value[:1])
        if isinstance(value, list)
        else ()
    )
    for key, member in members:
        yield (key,)
        yield from ((key, *rest) for rest in _json_paths(member, depth + 1))


def _epcis_cases(client: httpx.Client, tally: Tally, chain: Chain) -> None:
    """The EPCIS capture document and the single event (``POST /epcis/events``, under the
    EPCIS 2.0 context so its members are reached), whole and member by member."""
    document = {
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": ago(0),
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventTime": ago(0),
                    "eventTimeZoneOffset": "+00:00",
                    "epcList": [f"https://id.gs1.org/01/{GTIN}/21/{new_serial()}"],
                    "action": "ADD",
                    "bizStep": "commissioning",
                    "bizLocation": {
                        "id": f"urn:epc:id:sgln:{chain.maker.gln[:7]}.{chain.maker.gln[7:12]}.0"
                    },
                    "ilmd": {
                        "cbvmda:lotNumber": LOT,
                        "cbvmda:itemExpirationDate": EXPIRY.isoformat(),
                    },
                }
            ]
        },
    }
    for where in [(), *_json_paths(document)]:
        for raw in JSON_VALUES:
            text = _with_raw(document, where, raw)
            tally.check(
                ("POST", "/epcis/capture", "body:" + ".".join(map(str, where))),
                raw,
                lambda t=text: _post_json(client, "post", "/epcis/capture", t, "ld+json"),
            )
    single = {"@context": [EPCIS_CONTEXT], **document["epcisBody"]["eventList"][0]}
    for where in [(), *_json_paths(single)]:
        for raw in JSON_VALUES:
            text = _with_raw(single, where, raw)
            tally.check(
                ("POST", "/epcis/events", "body:" + ".".join(map(str, where))),
                raw,
                lambda t=text: _post_json(client, "post", "/epcis/events", t, "ld+json"),
            )


def _signed_cases(client: httpx.Client, tally: Tally, chain: Chain) -> int:
    """Every member of each kind of signed event, signed, so the extreme passes the signature
    check; values a station cannot sign (not canonical JSON) are counted as unsignable."""
    station = chain.maker.station
    commission = station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY, event_time=ago(1))
    recall = station.recall(GTIN, "EXTREMELOT", reason="extremes", event_time=ago(1))
    files = {"r.pdf": lots.pdf("r")}
    record = lots.record(station, "EXTREMELOT", 1, files, event_time=ago(1))
    unsignable = 0

    def capture(envelope: dict[str, Any]) -> int:
        return client.post("/api/v1/capture", json=[envelope]).status_code

    def recall_post(envelope: dict[str, Any]) -> int:
        return client.post("/api/v1/recalls", json=envelope).status_code

    def lot_post(envelope: dict[str, Any]) -> int:
        return client.post(
            "/api/v1/lots",
            data={"envelope": json.dumps(envelope)},
            files=[("documents", (n, d, "application/pdf")) for n, d in files.items()],
        ).status_code

    kinds = [
        ("/api/v1/capture", commission, capture),
        ("/api/v1/recalls", recall, recall_post),
        ("/api/v1/lots", record, lot_post),
    ]
    for path, envelope, send in kinds:
        event = envelope["event"]
        for where in _json_paths(event):
            for raw in JSON_VALUES:
                try:
                    changed = json.loads(_with_raw(event, where, raw))
                    signed = sign_event(changed, station_id=station.station_id, key=station.key)
                except (InvalidInput, ValueError, RecursionError):
                    unsignable += 1
                    continue
                tally.check(
                    ("POST", path, "signed:" + ".".join(map(str, where))),
                    raw,
                    lambda s=signed, f=send: f(s),
                )
    return unsignable


def _portal_pages(client: httpx.Client, tally: Tally, base: Baseline) -> int:
    """Every parameter of every portal route, on the client's logged-in session."""
    routes = [r for r in portal.router.routes if hasattr(r, "dependant")]
    for route in routes:
        dependant = route.dependant
        queries = [p.name for p in _flat(dependant, "query_params")]
        paths = [p.name for p in _flat(dependant, "path_params")]
        valid = {n: base.of(n, {}) for n in (*queries, *paths)}
        for method in route.methods - {"HEAD"}:
            for name in (*queries, *paths):
                for value in TEXT:
                    values = {**valid, name: value}
                    url = _encode_path(route.path, values)
                    query = {name: value} if name in queries else {}
                    tally.check(
                        (method, route.path, f"query:{name}"),
                        value,
                        lambda m=method, u=url, q=query: client.request(m, u, params=q).status_code,
                    )
    return len(routes)


def _portal_forms(client: httpx.Client, tally: Tally, token: str) -> None:
    """Every field of the portal's forms (and their CSRF token), logged in anew after each
    log-in case, since a log-in or its refusal turns the session."""
    csrf = _log_in(client, token)
    forms = {
        "/portal/recall": ("gtin", "lot", "reason"),
        "/portal/login": ("email", "password", "token"),
    }
    for path, names in forms.items():
        valid_form = {
            "gtin": GTIN,
            "lot": "PORTALLOT",
            "reason": "extremes",
            "email": "",
            "password": "",
            "token": token,
        }
        for name in (*names, "csrf"):
            for value in TEXT:
                form = {**valid_form, "csrf": csrf, name: value}
                tally.check(
                    ("POST", path, f"form:{name}"),
                    value,
                    lambda p=path, f=form: client.post(p, data=f).status_code,
                )
                if path == "/portal/login":
                    csrf = _log_in(client, token)


def _flat(dependant: Any, kind: str) -> list[Any]:
    found = list(getattr(dependant, kind))
    for sub in dependant.dependencies:
        found += _flat(sub, kind)
    return found


def _log_in(client: httpx.Client, token: str) -> str:
    """Log in with the participant's token; the session's CSRF token. The server may have
    closed the kept-alive connection after the case before (a refused body): once again."""
    try:
        return _log_in_once(client, token)
    except httpx.TransportError:
        return _log_in_once(client, token)


def _log_in_once(client: httpx.Client, token: str) -> str:
    client.cookies.clear()  # a logged-in session is sent on from the log-in page
    page = client.get("/portal/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf, page[:500]
    client.post("/portal/login", data={"csrf": csrf[1], "token": token, "email": ""})
    page = client.get("/portal/recall").text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page[:500]
    return found[1]


# --- the test ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """No rate limit: thousands of requests with one token."""
    return {"MEDTRACE_RATE_LIMIT": "0"}


def test_no_extreme_value_anywhere_gets_a_server_error(
    chain: Chain, record_property: Callable[[str, object], None], extremes_report: list[str]
) -> None:
    serial = new_serial()
    chain.to_pharmacy(serial)
    base = _baseline(chain, serial)
    tally = Tally()
    started = time.monotonic()
    found: dict[str, int] = {}
    url = chain.server.url
    pharmacy = {"Authorization": f"Bearer {chain.pharmacy.token}"}
    with httpx.Client(base_url=url, headers=pharmacy, timeout=60) as client:
        doc = client.get("/openapi.json").json()
        tally.section(
            "openapi", lambda: found.update(operations=_operation_cases(client, doc, base, tally))
        )
        tally.section("fhir", lambda: _fhir_cases(client, tally, serial))
        tally.section("epcis", lambda: _epcis_cases(client, tally, chain))
    maker = {"Authorization": f"Bearer {chain.maker.token}"}
    with httpx.Client(base_url=url, headers=maker, timeout=60) as client:
        tally.section(
            "signed", lambda: found.update(unsignable=_signed_cases(client, tally, chain))
        )
    with httpx.Client(base_url=url, timeout=60) as client:
        _log_in(client, chain.maker.token)
        tally.section(
            "portal pages", lambda: found.update(portal_routes=_portal_pages(client, tally, base))
        )
        tally.section(
            "portal forms", lambda: _portal_forms(client, tally, chain.maker.token), threads=0
        )
    backend = chain.server.database_url.split(":", 1)[0]
    counts = {
        **found,
        "parameters": len(tally.parameters),
        "cases": tally.cases,
        "unsendable": tally.unsendable,
        "server_errors": len(tally.failures),
        "seconds": round(time.monotonic() - started, 1),
    }
    for name, value in counts.items():
        record_property(f"extremes_{name}", value)
    extremes_report.append(f"{backend}: " + ", ".join(f"{k}={v}" for k, v in counts.items()))
    extremes_report.extend(f"{backend}:   {name}: {text}" for name, text in tally.sections.items())
    assert httpx.get(chain.server.url + "/healthz").status_code == 200
    assert not tally.failures, "\n".join(tally.failures[:200]) + "\n" + chain.server.log()[-3000:]


# --- MQTT: readings through Mosquitto to a bridge -------------------------------------------


def _reading_payloads(sensor: SimulatedSensor, seq: int) -> Iterator[bytes]:
    """Every member of a reading message with every extreme: unsigned as it is, and signed
    again when the extreme is inside the reading; then whole payloads no parser expects."""
    reading = {"sensor_id": sensor.sensor_id, "seq": seq, "time": ago(0), "temperature_c": 5.0}
    message = json.loads(sign_reading(reading, sensor.key))
    for where in _json_paths(message):
        for raw in JSON_VALUES:
            yield _with_raw(message, where, raw).encode()
    for where in _json_paths(reading):
        for raw in JSON_VALUES:
            with contextlib.suppress(InvalidInput, ValueError, RecursionError):
                yield sign_reading(json.loads(_with_raw(reading, where, raw)), sensor.key)
    yield from (raw.encode() for raw in JSON_VALUES)
    yield from (b"", b"\xff\xfe\x00", b"{" * 100_000, b"x" * 1_000_000)


def _stored(chain: Chain, sensor_id: str, seq: int) -> bool:
    with chain.server.engine.connect() as conn:
        found = conn.execute(
            select(Reading.seq).where(Reading.sensor_id == sensor_id, Reading.seq == seq)
        )
        return found.first() is not None


@pytest.mark.mqtt
def test_a_bridge_fed_extreme_readings_stays_up_and_relays_the_next_one(
    chain: Chain, tmp_path: Path, extremes_report: list[str]
) -> None:
    if not broker_up():
        pytest.fail(f"no MQTT broker at {MOSQUITTO_HOST}:{MOSQUITTO_PORT}")
    tag = f"x{secrets.token_hex(4)}"
    (sensor,) = new_sensors(chain.server, chain.hub.token, tag, 1)
    bridge = start_bridge(
        chain.server,
        chain.hub.token,
        client_id=f"bridge-{tag}",
        share_group="",
        log_path=tmp_path / "bridge.log",
    )
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    try:
        wait_until(lambda: "relaying" in bridge.log(), 20, "the bridge to subscribe")
        publisher.connect(MOSQUITTO_HOST, MOSQUITTO_PORT)
        publisher.loop_start()
        topic = reading_topic(sensor.sensor_id)
        sent = 0
        for payload in _reading_payloads(sensor, 1):
            publisher.publish(topic, payload, qos=1).wait_for_publish(10)
            sent += 1
        last_seq = 2**52  # above any seq an extreme may have stored
        last = {"sensor_id": sensor.sensor_id, "seq": last_seq, "time": ago(0), "temperature_c": 4}
        publisher.publish(topic, sign_reading(last, sensor.key), qos=1).wait_for_publish(10)
        backend = chain.server.database_url.split(":", 1)[0]
        extremes_report.append(f"{backend}: mqtt: {sent} extreme messages published")
        relayed = poll(lambda: _stored(chain, sensor.sensor_id, last_seq), 60)
        assert relayed, f"no valid reading relayed after the extremes\n{bridge.log()[-3000:]}"
        assert bridge.process.poll() is None, bridge.log()[-3000:]
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        bridge.stop()
        forget_session(f"bridge-{tag}")
