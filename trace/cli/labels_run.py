"""The plan of a ``medtrace labels units`` run, kept in a file so a refused run can resume.

The plan (product, lot, expiry, station, event time and every serial) is written before the
first envelope is sent. A rerun with the same file signs the very same events: the event id is
the SHA-256 of the event's canonical bytes, so the server answers the envelopes it already
captured as duplicates and commissions only the rest. Nothing is commissioned twice, and the
serials of a half-done run are never lost.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from medtrace.errors import InvalidInput


@dataclass(frozen=True)
class RunPlan:
    """What one run commissions; ``cn`` when the serials are China codes from a file."""

    gtin: str
    lot: str
    expiry: dt.date
    station_id: str
    gln: str
    event_time: str
    cn: bool
    serials: tuple[str, ...]

    def save(self, path: Path) -> None:
        """Write the plan atomically (a temporary file renamed): a crash leaves the old file
        or the whole new one, never half a plan."""
        data = {**asdict(self), "expiry": self.expiry.isoformat(), "serials": list(self.serials)}
        partial = path.with_name(path.name + ".partial")
        with partial.open("w", encoding="utf-8") as out:
            json.dump(data, out)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> RunPlan:
        """Read a plan; raises ``InvalidInput`` (``labels.resume_malformed``)."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                gtin=str(data["gtin"]),
                lot=str(data["lot"]),
                expiry=dt.date.fromisoformat(data["expiry"]),
                station_id=str(data["station_id"]),
                gln=str(data["gln"]),
                event_time=str(data["event_time"]),
                cn=bool(data["cn"]),
                serials=tuple(str(s) for s in data["serials"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(
                f"{path} is not the plan of a labels run: {exc}", rule="labels.resume_malformed"
            ) from exc

    def check_same_run(self, asked: RunPlan, *, count: int | None, path: Path) -> None:
        """Refuse to resume with other options than the run that wrote the plan
        (``labels.resume_mismatch``): ``asked`` holds this invocation's options, with the
        China codes of its file if any; ``count`` is its ``--count``."""
        differ = [
            name
            for name in ("gtin", "lot", "expiry", "station_id", "gln", "cn")
            if getattr(self, name) != getattr(asked, name)
        ]
        if self.cn and asked.serials != self.serials:
            differ.append("cn-codes")
        if not self.cn and count != len(self.serials):
            differ.append("count")
        if differ:
            raise InvalidInput(
                f"{path} is the plan of another run ({', '.join(differ)} differ); give the same "
                "options to resume it, or another --resume file",
                rule="labels.resume_mismatch",
            )
