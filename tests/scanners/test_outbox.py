"""The outbox file on its own: durable, deduplicated, every status visible."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from medtrace.protocol.envelope import event_id
from medtrace.scanners.outbox import Outbox, Receipt, Status
from medtrace.scanners.station import Station

STATION = Station("dock-1", "9521234000006", Ed25519PrivateKey.generate())
GTIN = "09521234000112"


def test_entries_survive_reopening_and_keep_scan_order(tmp_path: Path) -> None:
    first = Outbox(tmp_path / "o.db")
    envelopes = [STATION.receive(GTIN, f"S{i}") for i in range(5)]
    for envelope in envelopes:
        first.add(envelope)
    first.close()

    reopened = Outbox(tmp_path / "o.db")

    assert [e.envelope for e in reopened.pending(10)] == envelopes
    assert reopened.counts() == {Status.PENDING: 5, Status.SENT: 0, Status.REFUSED: 0}


def test_the_same_scan_twice_is_stored_once(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    envelope = STATION.receive(GTIN, "S1")

    one, two = outbox.add(envelope), outbox.add(envelope)

    assert one == two
    assert one.event_id == event_id(envelope["event"])
    assert outbox.counts()[Status.PENDING] == 1


def test_settled_entries_leave_the_queue_but_stay_visible(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    sent, refused, waiting = (outbox.add(STATION.receive(GTIN, s)) for s in ("A", "B", "C"))

    outbox.mark_sent([Receipt(sent.event_id, 41, 1)])
    outbox.mark_refused(refused.event_id, "custody.not_shipped_to_you", "not shipped here")

    assert [e.event_id for e in outbox.pending(10)] == [waiting.event_id]
    kept = outbox.get(refused.event_id)
    assert kept is not None
    assert (kept.status, kept.rule) == (Status.REFUSED, "custody.not_shipped_to_you")
    done = outbox.get(sent.event_id)
    assert done is not None and (done.status, done.leaf_index) == (Status.SENT, 41)
    assert [e.status for e in outbox.entries()] == [Status.PENDING, Status.REFUSED, Status.SENT]
    assert [e.event_id for e in outbox.entries(Status.REFUSED)] == [refused.event_id]
