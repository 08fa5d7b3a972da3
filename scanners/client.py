"""The capture API over HTTP, as a station sees it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from medtrace.protocol.headers import CATCH_UP_HEADER
from medtrace.protocol.http import TokenClient
from medtrace.protocol.identifiers import digital_link_path

from .errors import CaptureRefused, ServerUnreachable


class CaptureClient(TokenClient):
    """Registers stations and posts signed envelopes with a participant's API token."""

    def _post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        return self._answer(self._send("POST", path, json=body, headers=headers))

    def _get(self, path: str) -> Any:
        return self._answer(self._send("GET", path))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self._base_url, str(exc) or type(exc).__name__) from exc

    def _answer(self, response: httpx.Response) -> Any:
        """The JSON of a success; ``CaptureRefused`` with the server's rule for a 4xx;
        ``ServerUnreachable`` for what retrying later fixes (the rate limit, a 5xx)."""
        if response.status_code == 429:  # the token's rate limit: later, not never
            wait = response.headers.get("Retry-After", "?")
            raise ServerUnreachable(self._base_url, f"rate limited; retry in {wait} s")
        if response.is_client_error:
            detail = _detail(response)
            raise CaptureRefused(
                response.status_code,
                str(detail.get("rule", "?")),
                str(detail.get("message", response.text)),
                detail.get("index"),
            )
        if response.is_server_error:  # e.g. a database restarting: retrying later is safe
            raise ServerUnreachable(self._base_url, f"server error {response.status_code}")
        response.raise_for_status()
        return response.json()

    def register_station(self, station_id: str, public_key: str) -> dict[str, Any]:
        """Register a station's public key for this token's participant."""
        result: dict[str, Any] = self._post(
            "/api/v1/stations", {"station_id": station_id, "public_key": public_key}
        )
        return result

    def station(self, station_id: str) -> dict[str, Any]:
        """The station as the server knows it (participant, public key, active)."""
        result: dict[str, Any] = self._get(f"/api/v1/stations/{station_id}")
        return result

    def verify(
        self, gtin: str, serial: str, *, lot: str | None = None, expiry: dt.date | None = None
    ) -> dict[str, Any]:
        """The unit's verify answer (verdict, reasons, state, holder, path), as a patient's
        phone gets it; a unit never commissioned is answered with verdict ``unknown``."""
        return self._verify(digital_link_path(gtin, serial, lot=lot, expiry=expiry))

    def verify_cn(self, code: str) -> dict[str, Any]:
        """The verify answer of a pack keyed by China's drug traceability code; its ``unit``
        names the GTIN and serial the code is recorded under."""
        return self._verify(f"/cn/{code}")

    def verify_container(self, sscc: str) -> dict[str, Any]:
        """The verify answer of a case or pallet (its ``container``: state and holder); one
        never used is answered with verdict ``unknown``."""
        return self._verify(f"/00/{sscc}")

    def _verify(self, path: str) -> dict[str, Any]:
        response = self._send("GET", path, headers={"Accept": "application/json"})
        if response.status_code == 404 and "verdict" in _json_object(response):
            return _json_object(response)  # a unit never commissioned: that is an answer
        result: dict[str, Any] = self._answer(response)
        return result

    def recall(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Post a signed recall; return the recorded recall."""
        result: dict[str, Any] = self._post("/api/v1/recalls", envelope)
        return result

    def recall_reach(self, gtin: str, lot: str) -> dict[str, Any]:
        """The reach report of a recalled lot (its manufacturer or a regulator): its counts,
        and every unit, gathered page by page."""
        path = f"/api/v1/lots/{quote(gtin, safe='')}/{quote(lot, safe='')}/recall"
        result: dict[str, Any] = self._answer(self._send("GET", path))
        after = result.pop("next_after")
        while after is not None:
            page = self._answer(self._send("GET", path, params={"after": after}))
            result["units"] += page["units"]
            after = page["next_after"]
        return result

    def rotate_station_key(self, station_id: str, public_key: str) -> dict[str, Any]:
        """Give a station of this token's participant a new key; the old one retires now."""
        result: dict[str, Any] = self._post(
            f"/api/v1/stations/{quote(station_id, safe='')}/keys", {"public_key": public_key}
        )
        return result

    def revoke_station_keys(self, station_id: str, public_key: str | None) -> dict[str, Any]:
        """Revoke one key of a station (or all, with ``None``)."""
        result: dict[str, Any] = self._post(
            f"/api/v1/stations/{quote(station_id, safe='')}/keys/revoke",
            {"public_key": public_key},
        )
        return result

    def capture(
        self, envelopes: Sequence[dict[str, Any]], *, catch_up: bool = False
    ) -> list[dict[str, Any]]:
        """Post a batch; return one receipt (event id, leaf index) per envelope.

        ``catch_up`` flags the batch as an outbox sending what it held while offline, which
        the server accepts up to its longer catch-up window instead of its replay window.
        """
        headers = {CATCH_UP_HEADER: "true"} if catch_up else None
        answer = self._post("/api/v1/capture", list(envelopes), headers)
        results: list[dict[str, Any]] = answer["results"]
        return results

    def map_cn_drug_code(self, drug_code: str, gtin: str) -> dict[str, Any]:
        """Map a China drug identification code to one of this manufacturer's GTINs."""
        result: dict[str, Any] = self._post(
            "/api/v1/products/cn-codes", {"drug_code": drug_code, "gtin": gtin}
        )
        return result

    def cn_drug_code(self, drug_code: str) -> dict[str, Any]:
        """The product a China drug identification code is mapped to."""
        result: dict[str, Any] = self._get(f"/api/v1/products/cn-codes/{drug_code}")
        return result


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _detail(response: httpx.Response) -> dict[str, Any]:
    """The ``detail`` of a 4xx: ``{"rule", "message"}`` from medtrace, or any other text."""
    detail = _json_object(response).get("detail")
    if isinstance(detail, dict):
        return detail
    return {"message": str(detail) if detail else response.text}
