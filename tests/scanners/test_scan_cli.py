"""``medtrace scan`` against a real server: wedge text and pictures in, verdicts out, every
event delivered exactly once."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from medtrace.demo import GTIN
from medtrace.labels import LABEL_4X6, LabelSheet, sscc_label, unit_label
from medtrace.models import Event, Unit, UnitState
from medtrace.protocol.identifiers import GS1Data
from medtrace.scanners.outbox import Outbox, Status
from support.chain import EXPIRY, LOT, Chain, make_chain, new_serial, new_sscc, signed
from support.live import start_server
from support.station import ScanStation, scan_station

_sscc_serials = itertools.count(1)


def _sscc() -> str:
    from biip.checksums import gs1_standard_check_digit

    body = f"0952123400{next(_sscc_serials) + 7_000_000:07d}"
    return body + str(gs1_standard_check_digit(body))


def _code(serial: str, lot: str = LOT, expiry: dt.date = EXPIRY) -> GS1Data:
    return GS1Data(gtin=GTIN, serial=serial, lot=lot, expiry=expiry)


def _unit(chain: Chain, serial: str) -> Unit:
    with chain.server.engine.connect() as conn:
        row = conn.execute(select(Unit).where(Unit.serial == serial)).one()  # type: ignore[arg-type]
    return Unit.model_validate(row._mapping)


def _lines(output: str) -> list[str]:
    """The lines that open each scan (details are indented below them)."""
    return [line for line in output.splitlines() if line and not line.startswith("    ")]


@pytest.fixture
def hub_station(chain: Chain, tmp_path: Path) -> ScanStation:
    return scan_station(chain.hub, chain.server.url, tmp_path, f"dock-{new_serial()[:6]}")


@pytest.fixture
def pharmacy_station(chain: Chain, tmp_path: Path) -> ScanStation:
    return scan_station(chain.pharmacy, chain.server.url, tmp_path, f"counter-{new_serial()[:6]}")


def test_every_form_a_wedge_scanner_types_receives_its_unit(
    chain: Chain, hub_station: ScanStation
) -> None:
    serials = chain.ship_to_hub(8)
    codes = [_code(s) for s in serials]
    typed = [
        "]d2" + codes[0].element_string(),
        "]Q3" + codes[1].element_string(),
        "]C1" + codes[2].element_string(),
        "]e0" + codes[3].element_string(),
        codes[4].element_string().replace("\x1d", "<GS>"),
        codes[5].hri(),
        codes[6].digital_link_uri("https://id.example.org"),
        codes[7].element_string(),
    ]

    done = hub_station.run("--mode", "receive", "--fnc1", "<GS>", codes=typed)

    assert done.returncode == 0, done.stdout + done.stderr
    shown = _lines(done.stdout)
    received = [line for line in shown if line.startswith(" OK ") and "received" in line]
    assert len(received) == 8, done.stdout
    assert all(serial in done.stdout for serial in serials)
    for serial in serials:
        unit = _unit(chain, serial)
        assert (unit.state, unit.holder_gln) == (UnitState.RECEIVED, chain.hub.gln)
    assert "8 OK. Outbox: 8 sent, 0 waiting, 0 refused." in done.stdout


def test_pictures_of_each_symbology_are_scanned_and_a_pallet_moves_all_inside(
    chain: Chain, hub_station: ScanStation, tmp_path: Path
) -> None:
    loose = chain.ship_to_hub(1)[0]
    packed = [new_serial() for _ in range(3)]
    chain.commission(*packed)
    pallet = _sscc()
    maker = chain.maker
    maker.api.capture(
        [
            maker.station.sign(
                "pack", {"sscc": pallet}, children=[{"gtin": GTIN, "serial": s} for s in packed]
            ),
            maker.station.sign("ship", {"sscc": pallet}, destination_gln=chain.hub.gln),
        ]
    )
    with LabelSheet(LABEL_4X6, png_dir=tmp_path / "unit", dpi=203) as unit_sheet:
        unit_sheet.add(unit_label(_code(loose), base_url=chain.server.url))  # DataMatrix + QR
    with LabelSheet(LABEL_4X6, png_dir=tmp_path / "pallet", dpi=203) as pallet_sheet:
        pallet_sheet.add(sscc_label(pallet))  # GS1-128

    done = hub_station.run(
        "--mode",
        "receive",
        "--image",
        str(unit_sheet.png_pages[0]),
        "--image",
        str(pallet_sheet.png_pages[0]),
    )

    assert done.returncode == 0, done.stdout + done.stderr
    shown = _lines(done.stdout)
    assert any(f"serial {loose}" in line and "received" in line for line in shown), done.stdout
    assert any(f"SSCC {pallet}" in line and "3 units moved" in line for line in shown)
    assert sum(line.startswith(" OK ") for line in shown) == 2  # the label's QR twin counts once
    for serial in [loose, *packed]:
        assert _unit(chain, serial).holder_gln == chain.hub.gln


def test_a_camera_drop_folder_is_read_and_each_picture_filed(
    chain: Chain, hub_station: ScanStation, tmp_path: Path
) -> None:
    (serial,) = chain.ship_to_hub(1)
    drop = tmp_path / "camera"
    drop.mkdir()
    with LabelSheet(LABEL_4X6, png_dir=tmp_path / "label", dpi=203) as sheet:
        sheet.add(unit_label(_code(serial), base_url=chain.server.url))
    sheet.png_pages[0].replace(drop / "IMG_0001.png")
    (drop / "IMG_0002.jpg").write_bytes(b"not a picture")

    done = hub_station.run("--mode", "receive", "--watch", str(drop), "--once")

    assert done.returncode == 1  # one picture was unreadable
    assert f"serial {serial}" in done.stdout and " UNREADABLE " in done.stdout
    assert (drop / "done" / "IMG_0001.png").exists()
    assert (drop / "unreadable" / "IMG_0002.jpg").exists()
    assert _unit(chain, serial).state is UnitState.RECEIVED


def test_every_verdict_is_shown_in_colour_with_what_to_do(
    chain: Chain, pharmacy_station: ScanStation
) -> None:
    genuine, quarantined, forged_lot = (new_serial() for _ in range(3))
    chain.to_pharmacy(genuine, quarantined, forged_lot)
    pharmacy = chain.pharmacy
    pharmacy.api.capture(
        [pharmacy.station.sign("quarantine", {"gtin": GTIN, "serial": quarantined})]
    )
    expired = new_serial()
    maker = chain.maker
    yesterday = dt.date.today() - dt.timedelta(days=1)
    maker.api.capture([maker.station.commission(GTIN, expired, lot=LOT, expiry=yesterday)])
    (elsewhere,) = chain.ship_to_hub(1)  # shipped to the distributor, not here
    never = new_serial()

    verified = pharmacy_station.run(
        "--mode",
        "verify",
        codes=[
            _code(genuine).element_string(),
            _code(expired, expiry=yesterday).element_string(),
            _code(quarantined).element_string(),
            _code(forged_lot, lot="FORGED1").element_string(),
            _code(never).element_string(),
        ],
        color=True,
    )
    received = pharmacy_station.run(
        "--mode", "receive", codes=[_code(elsewhere).element_string()], color=True
    )

    plain = re.sub(r"\x1b\[[0-9;]*m", "", verified.stdout)
    assert verified.returncode == 1  # not every scan was OK
    words = [line.split("  ")[0].strip() for line in _lines(plain)[1:-1]]
    assert words == ["OK", "EXPIRED", "QUARANTINED", "SUSPECT", "UNKNOWN"], plain
    assert "\x1b[1;37;42m OK \x1b[0m" in verified.stdout  # white on green
    assert "\x1b[1;37;41m EXPIRED \x1b[0m" in verified.stdout  # white on red
    assert "the code says lot FORGED1" in plain
    assert "→ Do not dispense it; keep the pack apart and report it" in plain
    assert "never commissioned" in plain
    assert "NOT FOR THIS PLACE" in received.stdout
    assert "\x1b[1;30;43m NOT FOR THIS PLACE \x1b[0m" in received.stdout  # black on yellow
    assert "custody.not_shipped_to_you" in received.stdout


def test_a_recalled_pack_shows_recalled_and_is_never_dispensed(
    chain: Chain, pharmacy_station: ScanStation
) -> None:
    lot = f"R{new_serial()[:8]}"
    serial = new_serial()
    maker, hub, pharmacy = chain.maker, chain.hub, chain.pharmacy
    maker.api.capture([maker.station.commission(GTIN, serial, lot=lot, expiry=EXPIRY)])
    maker.api.capture([maker.station.ship(GTIN, serial, to=hub.gln)])
    hub.api.capture([hub.station.receive(GTIN, serial)])
    hub.api.capture([hub.station.ship(GTIN, serial, to=pharmacy.gln)])
    pharmacy.api.capture([pharmacy.station.receive(GTIN, serial)])
    maker.api.recall(maker.station.recall(GTIN, lot, reason="sterility failure"))
    code = _code(serial, lot=lot).element_string()
    before = chain.server.snapshot()

    verified = pharmacy_station.run("--mode", "verify", codes=[code])
    dispensed = pharmacy_station.run("--mode", "dispense", codes=[code])

    assert _lines(verified.stdout)[1].startswith(" RECALLED "), verified.stdout
    assert "sterility failure" in verified.stdout
    assert "→ Do not dispense or ship it; quarantine it and follow the recall notice" in (
        verified.stdout
    )
    assert _lines(dispensed.stdout)[1].startswith(" RECALLED ")
    assert "not dispensed" in dispensed.stdout and dispensed.returncode == 1
    assert chain.server.snapshot() == before


def test_dispense_verifies_first_and_signs_nothing_that_is_not_ok(
    chain: Chain, pharmacy_station: ScanStation
) -> None:
    good, held_elsewhere = new_serial(), chain.ship_to_hub(1)[0]
    chain.to_pharmacy(good)
    expired = new_serial()
    yesterday = dt.date.today() - dt.timedelta(days=1)
    chain.maker.api.capture(
        [chain.maker.station.commission(GTIN, expired, lot=LOT, expiry=yesterday)]
    )
    before = chain.server.snapshot()

    refused = pharmacy_station.run(
        "--mode",
        "dispense",
        codes=[
            _code(expired, expiry=yesterday).element_string(),
            _code(held_elsewhere).element_string(),
        ],
    )

    assert refused.returncode == 1
    shown = _lines(refused.stdout)
    assert shown[1].startswith(" EXPIRED ") and "not dispensed" in shown[1], refused.stdout
    assert shown[2].startswith(" NOT FOR THIS PLACE ") and "not dispensed" in shown[2]
    assert chain.server.snapshot() == before
    assert Outbox(pharmacy_station.outbox).counts()[Status.PENDING] == 0
    assert Outbox(pharmacy_station.outbox).entries() == []  # nothing was even signed

    dispensed = pharmacy_station.run("--mode", "dispense", codes=[_code(good).element_string()])
    assert dispensed.returncode == 0, dispensed.stdout
    assert _unit(chain, good).state is UnitState.DISPENSED


def test_refusals_stay_visible_in_scan_status(chain: Chain, pharmacy_station: ScanStation) -> None:
    (dispensed,) = (new_serial(),)
    chain.to_pharmacy(dispensed)
    chain.pharmacy.api.capture([chain.pharmacy.station.dispense(GTIN, dispensed)])

    stored = pharmacy_station.run("--mode", "store", codes=[_code(dispensed).element_string()])
    status = pharmacy_station.run("status")

    assert stored.returncode == 1
    assert " REFUSED " in stored.stdout and "custody.final_state" in stored.stdout
    assert status.returncode == 0
    assert "0 sent, 0 waiting, 1 refused" in status.stdout
    assert "custody.final_state" in status.stdout and dispensed in status.stdout


def test_a_station_the_server_does_not_know_is_told_what_to_do(
    chain: Chain, hub_station: ScanStation, tmp_path: Path
) -> None:
    stranger = scan_station(chain.hub, chain.server.url, tmp_path, "dock-stranger")
    unknown = ScanStation(
        "dock-unregistered",
        {**stranger.env, "MEDTRACE_STATION_ID": "dock-unregistered"},
        stranger.outbox,
    )
    wrong_key = ScanStation(
        hub_station.station_id,
        {**hub_station.env, "MEDTRACE_STATION_KEY_FILE": stranger.env["MEDTRACE_STATION_KEY_FILE"]},
        hub_station.outbox,
    )

    not_registered = unknown.run("--mode", "receive")
    mismatch = wrong_key.run("--mode", "receive")

    assert not_registered.returncode == 1
    assert "is not registered" in not_registered.stderr
    assert "medtrace station register dock-unregistered" in not_registered.stderr
    assert mismatch.returncode == 1
    assert "is not one registered" in mismatch.stderr


def test_a_revoked_station_key_stops_the_station_with_what_to_do(
    chain: Chain, tmp_path: Path
) -> None:
    lost = scan_station(chain.hub, chain.server.url, tmp_path, f"dock-lost-{new_serial()[:4]}")
    chain.hub.api.revoke_station_keys(lost.station_id, None)

    refused = lost.run("--mode", "receive")

    assert refused.returncode == 1
    assert "was revoked" in refused.stderr and "medtrace station rotate" in refused.stderr


def test_a_bad_code_is_shown_and_scanning_goes_on(chain: Chain, hub_station: ScanStation) -> None:
    (serial,) = chain.ship_to_hub(1)

    done = hub_station.run(
        "--mode", "receive", codes=["]d20109521234000113" + "21X", _code(serial).element_string()]
    )

    assert done.returncode == 1
    assert " UNREADABLE " in done.stdout and "gs1.bad_check_digit" in done.stdout
    assert _unit(chain, serial).state is UnitState.RECEIVED


@pytest.mark.slow
def test_a_case_is_verified_by_its_sscc_and_one_never_used_is_unknown(
    chain: Chain, hub_station: ScanStation
) -> None:
    serial = new_serial()
    chain.commission(serial)
    case, never = new_sscc(), new_sscc()
    maker = chain.maker
    maker.api.capture(
        [signed(maker, "pack", sscc=case, children=[{"gtin": GTIN, "serial": serial}])]
    )

    verified = hub_station.run(
        "--mode",
        "verify",
        codes=[GS1Data(sscc=case).element_string(), GS1Data(sscc=never).element_string()],
        color=True,
    )

    plain = re.sub(r"\x1b\[[0-9;]*m", "", verified.stdout)
    assert verified.returncode == 1  # not every scan was OK
    words = [line.split("  ")[0].strip() for line in _lines(plain)[1:-1]]
    assert words == ["OK", "UNKNOWN"], plain
    assert "\x1b[1;37;41m UNKNOWN \x1b[0m" in verified.stdout  # white on red
    assert f"SSCC {never} was never used in this log" in plain


def _events(chain: Chain, station_id: str) -> int:
    with chain.server.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(Event).where(Event.station_id == station_id)  # type: ignore[arg-type]
            ).scalar_one()
        )


# --- offline, and a server that dies ----------------------------------------------------------


@pytest.fixture
def own_chain(fresh_database_url: str, tmp_path: Path) -> Iterator[Chain]:
    """A chain on a server of the test's own, which it stops and restarts."""
    server = start_server(database_url=fresh_database_url, data_dir=tmp_path / "server")
    try:
        with make_chain(server) as built:
            yield built
    finally:
        built.server.stop()


def _restart(chain: Chain) -> None:
    """The same database and data served again, on the same address."""
    old = chain.server
    old.stop()
    port = int(old.url.rsplit(":", 1)[1])
    chain.server = start_server(database_url=old.database_url, data_dir=old.data_dir, port=port)


def _received_once(chain: Chain, station: ScanStation, serials: list[str]) -> None:
    """Every scan sent, recorded once, with the leaf index the station holds for it."""
    outbox = Outbox(station.outbox)
    assert outbox.counts() == {Status.PENDING: 0, Status.SENT: len(serials), Status.REFUSED: 0}
    assert _events(chain, station.station_id) == len(serials)
    with chain.server.engine.connect() as conn:
        held = conn.execute(
            select(func.count())
            .select_from(Unit)
            .where(Unit.holder_gln == chain.hub.gln, Unit.state == UnitState.RECEIVED)  # type: ignore[arg-type]
        ).scalar_one()
    assert held == len(serials)


@pytest.mark.slow
def test_an_hour_offline_5000_scans_then_everything_arrives_exactly_once(
    own_chain: Chain, tmp_path: Path
) -> None:
    chain = own_chain
    station = scan_station(chain.hub, chain.server.url, tmp_path, "dock-offline")
    serials = chain.ship_to_hub(5_000)
    seen = station.run("--mode", "verify", codes=[_code(serials[0]).element_string()])
    assert seen.returncode == 0, seen.stdout
    chain.server.stop()

    offline = station.run(
        "--mode", "receive", "--ack-wait", "0.2", codes=[_code(s).element_string() for s in serials]
    )

    assert "offline" in offline.stderr
    assert "0 sent, 5000 waiting, 0 refused" in offline.stdout.replace("1 sent", "0 sent")
    assert "offline: verdict from the last known state at" in offline.stdout
    assert offline.stdout.count(" UNCHECKED ") == 4_999  # never seen here: said, not guessed
    _restart(chain)
    sent = station.run("send")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "5000 sent, 0 refused" in sent.stdout
    _received_once(chain, station, serials)
    again = station.run("send")
    assert "0 sent, 0 refused" in again.stdout
    _received_once(chain, station, serials)


@pytest.mark.slow
def test_a_server_killed_mid_scan_loses_and_doubles_nothing(
    own_chain: Chain, tmp_path: Path
) -> None:
    chain = own_chain
    station = scan_station(chain.hub, chain.server.url, tmp_path, "dock-kill")
    serials = chain.ship_to_hub(600)
    scanning = station.start("--mode", "receive", "--ack-wait", "0.5")
    assert scanning.stdin is not None
    for serial in serials[:300]:
        scanning.stdin.write(_code(serial).element_string() + "\n")
    scanning.stdin.flush()
    time.sleep(1.0)
    chain.server.process.kill()  # SIGKILL, mid-stream
    chain.server.process.wait()
    for serial in serials[300:500]:
        scanning.stdin.write(_code(serial).element_string() + "\n")
    scanning.stdin.flush()
    _restart(chain)
    for serial in serials[500:]:
        scanning.stdin.write(_code(serial).element_string() + "\n")
    scanning.stdin.close()
    assert scanning.stdout is not None
    with scanning.stdout:
        output = scanning.stdout.read()
    assert scanning.wait(timeout=300) in (0, 1), output
    deadline = time.monotonic() + 60
    while Outbox(station.outbox).counts()[Status.PENDING] and time.monotonic() < deadline:
        station.run("send")
    _received_once(chain, station, serials)
