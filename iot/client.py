"""The readings API over HTTP, as the bridge and the sensor tools see it."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import httpx

from medtrace.protocol.http import TokenClient
from medtrace.protocol.readings import relayed

from .errors import CaptureRejected, CaptureUnavailable


class ReadingsClient(TokenClient):
    """Registers and binds sensors and relays MQTT messages with a participant's API token."""

    def _post(self, path: str, body: Any, *, conflict_is_transient: bool = False) -> Any:
        """POST JSON; see ``_request``."""
        return self._request("POST", path, body, conflict_is_transient=conflict_is_transient)

    def _request(
        self, method: str, path: str, body: Any = None, *, conflict_is_transient: bool = False
    ) -> Any:
        """Send a request with an optional JSON body; 5xx, 429 (the token's rate limit) and
        409 where a concurrent writer may have won are ``CaptureUnavailable`` (retry), any
        other 4xx is ``CaptureRejected``.

        The body is ASCII JSON: httpx writes UTF-8, which cannot carry the lone surrogates
        that stand for a relayed payload's bytes that are no UTF-8 (``payloads.relayed``).
        """
        content = (
            None
            if body is None
            else json.dumps(body, allow_nan=False, separators=(",", ":")).encode()
        )
        headers = {"Content-Type": "application/json"}
        try:
            response = self._http.request(method, path, content=content, headers=headers)
        except httpx.TransportError as exc:
            raise CaptureUnavailable(self._base_url, str(exc) or type(exc).__name__) from exc
        transient = response.is_server_error or response.status_code == 429
        if transient or (conflict_is_transient and response.status_code == 409):
            raise CaptureUnavailable(self._base_url, f"{response.status_code} {response.text}")
        if response.is_client_error:
            detail = _detail(response)
            raise CaptureRejected(
                response.status_code,
                str(detail.get("rule", "?")),
                str(detail.get("message", response.text[:200])),
            )
        return response.json()

    def register_sensor(self, sensor_id: str, public_key: str) -> dict[str, Any]:
        """Register a sensor's raw Ed25519 public key (base64) for this token's participant."""
        result: dict[str, Any] = self._post(
            "/api/v1/sensors", {"sensor_id": sensor_id, "public_key": public_key}
        )
        return result

    def rotate_sensor_key(self, sensor_id: str, public_key: str) -> dict[str, Any]:
        """Give a sensor of this token's participant a new key; the old one retires now."""
        result: dict[str, Any] = self._post(
            f"/api/v1/sensors/{sensor_id}/keys", {"public_key": public_key}
        )
        return result

    def revoke_sensor_keys(self, sensor_id: str, public_key: str | None) -> dict[str, Any]:
        """Revoke one key of a sensor (or all, with ``None``)."""
        result: dict[str, Any] = self._post(
            f"/api/v1/sensors/{sensor_id}/keys/revoke", {"public_key": public_key}
        )
        return result

    def bind(
        self, sensor_id: str, *, kind: str, target: str, valid_from: dt.datetime | None = None
    ) -> dict[str, Any]:
        """Bind a sensor to a place (``kind="place"``, a GLN) or a shipment (an SSCC) from
        ``valid_from``, or from when the server receives the binding."""
        body = {"kind": kind, "target": target}
        if valid_from is not None:
            body["valid_from"] = valid_from.isoformat()
        result: dict[str, Any] = self._post(f"/api/v1/sensors/{sensor_id}/bindings", body)
        return result

    def grant(self, grantee: str, *, kind: str, target: str) -> dict[str, Any]:
        """Let ``grantee``'s sensors measure at a place or with a shipment of this token's
        participant, until revoked."""
        body = {"grantee": grantee, "kind": kind, "target": target}
        result: dict[str, Any] = self._post("/api/v1/sensor-grants", body)
        return result

    def revoke_grant(self, grant_id: int) -> dict[str, Any]:
        """Revoke a grant this token's participant gave."""
        result: dict[str, Any] = self._post(f"/api/v1/sensor-grants/{grant_id}/revoke", None)
        return result

    def grants(self) -> list[dict[str, Any]]:
        """The grants this token's participant gave or received."""
        result: list[dict[str, Any]] = self._request("GET", "/api/v1/sensor-grants")
        return result

    def relay(self, messages: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
        """Relay (topic, payload) messages; return the receipts once they are durable."""
        cut = (relayed(topic, payload) for topic, payload in messages)
        body = [{"topic": topic, "payload": text} for topic, text in cut]
        result: dict[str, Any] = self._post("/api/v1/readings", body, conflict_is_transient=True)
        return result


def _detail(response: httpx.Response) -> dict[str, Any]:
    """The ``detail`` of an error answer, or nothing when a proxy answered in HTML."""
    try:
        detail = response.json().get("detail", {})
    except (ValueError, AttributeError):
        return {}
    return detail if isinstance(detail, dict) else {}
