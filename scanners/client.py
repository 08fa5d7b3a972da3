"""The capture API over HTTP, as a station sees it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from medtrace.api_client import TokenClient

from .errors import CaptureRefused, ServerUnreachable


class CaptureClient(TokenClient):
    """Registers stations and posts signed envelopes with a participant's API token."""

    def _post(self, path: str, body: Any) -> Any:
        return self._answer(self._request("POST", path, body))

    def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        try:
            return self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self._base_url, str(exc) or type(exc).__name__) from exc

    def _answer(self, response: httpx.Response) -> Any:
        """The JSON of a successful answer; ``CaptureRefused`` with the rule of a 4xx."""
        if response.is_client_error:
            detail = response.json().get("detail", {})
            raise CaptureRefused(
                response.status_code,
                detail.get("rule", "?"),
                detail.get("message", response.text),
                detail.get("index"),
            )
        response.raise_for_status()
        return response.json()

    def register_station(self, station_id: str, public_key: str) -> dict[str, Any]:
        """Register a station's public key for this token's participant."""
        result: dict[str, Any] = self._post(
            "/api/v1/stations", {"station_id": station_id, "public_key": public_key}
        )
        return result

    def recall(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """Post a signed recall; return the recorded recall."""
        result: dict[str, Any] = self._post("/api/v1/recalls", envelope)
        return result

    def recall_reach(self, gtin: str, lot: str) -> dict[str, Any]:
        """The reach report of a recalled lot (its manufacturer or a regulator)."""
        path = f"/api/v1/lots/{quote(gtin, safe='')}/{quote(lot, safe='')}/recall"
        result: dict[str, Any] = self._answer(self._request("GET", path))
        return result

    def capture(self, envelopes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Post a batch; return one receipt (event id, leaf index) per envelope."""
        results: list[dict[str, Any]] = self._post("/api/v1/capture", list(envelopes))["results"]
        return results
