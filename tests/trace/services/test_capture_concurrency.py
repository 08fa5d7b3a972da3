"""Two API processes on one database capture conflicting moves of the same unit at the same
moment: exactly one succeeds, the other is refused and changes nothing (SQLite and
PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from medtrace.demo import GTIN
from medtrace.protocol.identifiers import digital_link_path
from medtrace.scanners.client import CaptureClient
from medtrace.scanners.errors import CaptureRefused
from support.chain import Chain, new_serial
from support.live import LiveServer, start_server

ROUNDS = 20


@pytest.fixture
def second_server(
    chain: Chain, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """Another ``medtrace serve`` process on the same database and log key (no sequencer of
    its own: one per log)."""
    monkeypatch.setenv("MEDTRACE_LOG_KEY_PATH", str(chain.server.data_dir / "keys" / "log.pem"))
    monkeypatch.setenv("MEDTRACE_RUN_SEQUENCER", "false")
    live = start_server(
        database_url=chain.server.database_url, data_dir=tmp_path_factory.mktemp("second")
    )
    try:
        yield live
    finally:
        live.stop()


def test_of_two_conflicting_moves_in_two_processes_exactly_one_wins(
    chain: Chain, second_server: LiveServer
) -> None:
    maker, hub, pharmacy = chain.maker, chain.hub, chain.pharmacy
    serials = [new_serial() for _ in range(ROUNDS)]
    chain.commission(*serials)
    leaves_before = chain.server.snapshot()[0]
    clients = [maker.api, CaptureClient(second_server.url, maker.token)]

    def race(serial: str) -> list[Any]:
        envelopes = [
            maker.station.ship(GTIN, serial, to=hub.gln),
            maker.station.ship(GTIN, serial, to=pharmacy.gln),
        ]
        barrier = threading.Barrier(2)

        def send(side: int) -> Any:
            barrier.wait()
            try:
                return clients[side].capture([envelopes[side]])
            except CaptureRefused as refusal:
                return refusal

        with ThreadPoolExecutor(2) as pool:
            return list(pool.map(send, (0, 1)))

    try:
        outcomes = [race(serial) for serial in serials]
    finally:
        clients[1].close()

    for serial, (first, second) in zip(serials, outcomes, strict=True):
        refusals = [o for o in (first, second) if isinstance(o, CaptureRefused)]
        assert len(refusals) == 1, (serial, first, second)
        assert refusals[0].status == 409
        assert refusals[0].rule in {"custody.not_holder", "store.conflict"}
        winner = hub.gln if isinstance(second, CaptureRefused) else pharmacy.gln
        answer = httpx.get(
            chain.server.url + digital_link_path(GTIN, serial),
            headers={"Accept": "application/json"},
        ).json()
        assert [e["type"] for e in answer["events"]] == ["commission", "ship"]
        assert answer["events"][1]["destination_gln"] == winner
    assert chain.server.snapshot()[0] == leaves_before + ROUNDS
