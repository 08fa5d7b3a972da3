"""A scan station: its id and private key, and the custody events it signs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medtrace.protocol.envelope import sign_event
from medtrace.protocol.keys import b64, public_key_raw, read_key_file

Target = dict[str, str]
"""What an event is about: ``{"gtin": ..., "serial": ...}`` or ``{"sscc": ...}``."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Station:
    """A station that signs events at its participant's GLN."""

    station_id: str
    gln: str
    key: Ed25519PrivateKey

    @classmethod
    def from_key_file(cls, station_id: str, gln: str, path: Path) -> Station:
        """A station whose private key is in ``path`` (written by ``station keygen``)."""
        return cls(station_id=station_id, gln=gln, key=read_key_file(path))

    @property
    def public_key(self) -> str:
        """The raw public key in base64, as the server registers it."""
        return b64(public_key_raw(self.key))

    def sign(self, event_type: str, target: Target, **fields: Any) -> dict[str, Any]:
        """A signed event of any type about ``target`` (``{"gtin", "serial"}`` for a unit,
        ``{"sscc"}`` for a case or pallet), stamped now unless ``event_time`` is given; members
        whose value is ``None`` are left out, as the server expects."""
        event = {
            "type": event_type,
            **target,
            "gln": self.gln,
            "event_time": fields.pop("event_time", None) or _now(),
            "station_id": self.station_id,
        }
        event.update({k: v for k, v in fields.items() if v is not None})
        return sign_event(event, station_id=self.station_id, key=self.key)

    def _signed(self, event_type: str, gtin: str, serial: str, **fields: Any) -> dict[str, Any]:
        return self.sign(event_type, {"gtin": gtin, "serial": serial}, **fields)

    def commission(
        self, gtin: str, serial: str, *, lot: str, expiry: dt.date, event_time: str | None = None
    ) -> dict[str, Any]:
        """A signed commissioning event (manufacturers only)."""
        return self._signed(
            "commission", gtin, serial, lot=lot, expiry=expiry.isoformat(), event_time=event_time
        )

    def ship(
        self, gtin: str, serial: str, *, to: str, event_time: str | None = None
    ) -> dict[str, Any]:
        """A signed shipment to GLN ``to``."""
        return self._signed("ship", gtin, serial, destination_gln=to, event_time=event_time)

    def receive(self, gtin: str, serial: str, *, event_time: str | None = None) -> dict[str, Any]:
        """A signed receipt at this station's GLN."""
        return self._signed("receive", gtin, serial, event_time=event_time)

    def dispense(self, gtin: str, serial: str, *, event_time: str | None = None) -> dict[str, Any]:
        """A signed dispense at this station's pharmacy (no patient data, ever)."""
        return self._signed("dispense", gtin, serial, event_time=event_time)

    def recall(
        self, gtin: str, lot: str, *, reason: str, event_time: str | None = None
    ) -> dict[str, Any]:
        """A signed recall of a whole lot (the lot's manufacturer or a regulator), for
        ``POST /api/v1/recalls``."""
        event = {
            "type": "recall",
            "gtin": gtin,
            "lot": lot,
            "reason": reason,
            "gln": self.gln,
            "event_time": event_time or _now(),
            "station_id": self.station_id,
        }
        return sign_event(event, station_id=self.station_id, key=self.key)
