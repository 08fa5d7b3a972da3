"""The capture API over HTTP, as a station sees it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from medtrace.api_client import TokenClient

from .errors import CaptureRefused, ServerUnreachable

#: The request header of a batch an outbox held while offline (see ``forward``).
CATCH_UP_HEADER = "Medtrace-Offline-Catch-Up"


class CaptureClient(TokenClient):
    """Registers stations and posts signed envelopes with a participant's API token."""

    def _post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        try:
            response = self._http.post(path, json=body, headers=headers)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self._base_url, str(exc) or type(exc).__name__) from exc
        if response.status_code == 429:  # the token's rate limit: later, not never
            wait = response.headers.get("Retry-After", "?")
            raise ServerUnreachable(self._base_url, f"rate limited; retry in {wait} s")
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
