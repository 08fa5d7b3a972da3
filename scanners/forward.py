"""Store and forward: send the outbox to the capture API until every envelope is settled.

The server's event ids are idempotent, so resending is always safe: an envelope whose
acknowledgement was lost comes back as a duplicate with its first leaf index. The server
refuses a batch as a whole and names the envelope at fault; a refusal that belongs to that
envelope (a custody rule, a malformed code, a bad signature) settles it as refused and the
rest is sent again, while a refusal that belongs to the station (unknown or revoked key,
bad token) stops forwarding with the server's reason and keeps everything pending.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from .client import CaptureClient
from .errors import CaptureRefused, ServerUnreachable, StationRefused
from .outbox import Entry, Outbox, Receipt

# Refusals that no envelope of this station can escape: forwarding must stop, not churn.
STATION_RULES = frozenset(
    {
        "station.unknown",
        "station.inactive",
        "station.not_yours",
        "station.key_revoked",
        "station.key_rotated",
        "auth.missing_token",
        "auth.invalid_token",
    }
)
DEFAULT_BATCH = 500
#: A batch whose oldest entry waited this long in the outbox is flagged as offline catch-up:
#: well under any server's replay window (a day by default), so a station back online is
#: never refused as stale for having been offline.
CATCH_UP_AFTER = dt.timedelta(hours=1)


@dataclass
class Forwarded:
    """What one forwarding pass settled."""

    sent: int = 0
    refused: int = 0


def forward(
    outbox: Outbox,
    client: CaptureClient,
    *,
    batch_size: int = DEFAULT_BATCH,
    batches: int | None = None,
) -> Forwarded:
    """Send every pending envelope once (no retry on an unreachable server), or only the
    oldest ``batches`` batches.

    A batch holding an entry queued more than ``CATCH_UP_AFTER`` ago is sent flagged as
    offline catch-up, which the server accepts up to its longer catch-up window.

    Raises ``ServerUnreachable`` (everything not yet acknowledged stays pending) or
    ``StationRefused`` for a refusal of the station itself.
    """
    done = Forwarded()
    requests = 0
    while (batches is None or requests < batches) and (batch := outbox.pending(batch_size)):
        requests += 1
        try:
            receipts = client.capture(
                [entry.envelope for entry in batch], catch_up=_held_while_offline(batch)
            )
        except CaptureRefused as refusal:
            if refusal.rule in STATION_RULES or refusal.index is None:
                raise StationRefused(refusal.status, refusal.rule, refusal.message) from refusal
            outbox.mark_refused(batch[refusal.index].event_id, refusal.rule, refusal.message)
            done.refused += 1
            continue
        outbox.mark_sent(Receipt(r["event_id"], r["leaf_index"], r.get("units")) for r in receipts)
        done.sent += len(receipts)
    return done


def _held_while_offline(batch: Sequence[Entry]) -> bool:
    oldest = min(dt.datetime.fromisoformat(entry.created_at) for entry in batch)
    return dt.datetime.now(dt.UTC) - oldest > CATCH_UP_AFTER


def forward_until_settled(
    outbox: Outbox,
    client: CaptureClient,
    *,
    give_up_after: float,
    batch_size: int = DEFAULT_BATCH,
    on_retry: Callable[[ServerUnreachable], None] | None = None,
) -> Forwarded:
    """Forward, retrying an unreachable server with exponential backoff (0.5 s to 30 s)."""

    def report(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if on_retry is not None and isinstance(error, ServerUnreachable):
            on_retry(error)

    retrying = Retrying(
        retry=retry_if_exception_type(ServerUnreachable),
        wait=wait_exponential(multiplier=0.5, min=0.5, max=30),
        stop=stop_after_delay(give_up_after),
        reraise=True,
        before_sleep=report,
    )
    total = Forwarded()
    for attempt in retrying:
        with attempt:
            done = forward(outbox, client, batch_size=batch_size)
            total.sent += done.sent
            total.refused += done.refused
    return total
