"""The capture API over HTTP, as a station sees it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from medtrace.api_client import TokenClient

from .errors import CaptureRefused, ServerUnreachable


class CaptureClient(TokenClient):
    """Registers stations and posts signed envelopes with a participant's API token."""

    def _post(self, path: str, body: Any) -> Any:
        return self._send("POST", path, body)

    def _get(self, path: str) -> Any:
        return self._send("GET", path, None)

    def _send(self, method: str, path: str, body: Any) -> Any:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self._base_url, str(exc) or type(exc).__name__) from exc
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

    def capture(self, envelopes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Post a batch; return one receipt (event id, leaf index) per envelope."""
        results: list[dict[str, Any]] = self._post("/api/v1/capture", list(envelopes))["results"]
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
