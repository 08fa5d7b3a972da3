"""Trust boundaries of the capture path (issue 18, items 4, 11, 13 and 16), replayed against
a real server on SQLite and PostgreSQL: each attack is refused by its rule and changes
nothing, and the legitimate request next to it still passes."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session, select

from medtrace.demo import GTIN, with_check_digit
from medtrace.errors import InvalidInput
from medtrace.ledger import MAX_ENTRY_SIZE
from medtrace.models import Unit
from medtrace.protocol.envelope import sign_event
from medtrace.protocol.keys import b64, public_key_raw
from medtrace.scanners.errors import CaptureRefused
from medtrace.scanners.station import Station
from medtrace.schemas.keys import decode_new_public_key
from support.chain import EXPIRY, LOT, Chain, new_serial, new_sscc

# The eight points of Ed25519's torsion subgroup (canonical encodings), then non-canonical
# encodings of small-order points (y >= p, or x = 0 with the sign bit set).
_ORDER_8 = (
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
)
SMALL_ORDER_KEYS = [
    bytes(32),  # y = 0, order 4
    bytes(31) + b"\x80",  # y = 0, the other x: order 4
    b"\x01" + bytes(31),  # the identity, order 1
    b"\xec" + b"\xff" * 30 + b"\x7f",  # y = p - 1 = -1, order 2
    *(bytes.fromhex(h) for h in _ORDER_8),
    *(bytes.fromhex(h)[:31] + bytes([bytes.fromhex(h)[31] | 0x80]) for h in _ORDER_8),
    b"\xed" + b"\xff" * 30 + b"\x7f",  # y = p, i.e. 0: non-canonical
    b"\xee" + b"\xff" * 30 + b"\x7f",  # y = p + 1, i.e. 1: non-canonical
    b"\x01" + bytes(30) + b"\x80",  # the identity with the sign bit set: non-canonical
]


def refused(chain: Chain, action: Callable[[], object]) -> CaptureRefused:
    """Run a request that must be refused, and prove it changed no custody, event or leaf."""
    before = chain.server.snapshot()
    with pytest.raises(CaptureRefused) as caught:
        action()
    assert chain.server.snapshot() == before
    return caught.value


def signed(station: Station, kind: str, **fields: Any) -> dict[str, Any]:
    event = {
        "type": kind,
        "gln": station.gln,
        "event_time": fields.pop("event_time", None) or stamp(dt.datetime.now(dt.UTC)),
        "station_id": station.station_id,
        **fields,
    }
    return sign_event(event, station_id=station.station_id, key=station.key)


def stamp(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_station(chain: Chain) -> Station:
    station = Station(
        f"trust-{secrets.token_hex(4)}", chain.maker.gln, Ed25519PrivateKey.generate()
    )
    chain.maker.api.register_station(station.station_id, station.public_key)
    return station


def published(chain: Chain, station_id: str) -> httpx.Response:
    return httpx.get(f"{chain.server.url}/api/v1/stations/{station_id}")


# --- item 4: a leaf always fits a tlog-tiles entry --------------------------------------------


def test_a_pack_whose_leaf_exceeds_a_log_entry_is_refused_with_how_to_split_it(
    chain: Chain,
) -> None:
    """The issue's pack of 1 500 children made a 67 773-byte leaf that no entry bundle can
    hold; now it is refused before anything is written, and the count the refusal advises
    passes the size check (it then meets the custody rules: its units are not commissioned)."""
    maker = chain.maker.station
    pack = [{"gtin": GTIN, "serial": f"{secrets.token_hex(4)}{n:06d}"} for n in range(1_500)]
    too_big = signed(maker, "pack", sscc=new_sscc(), children=pack)

    error = refused(chain, lambda: chain.maker.api.capture([too_big]))

    assert (error.status, error.rule, error.index) == (422, "input.leaf_too_large", 0)
    assert "cases of at most" in error.message
    detail = httpx.post(
        f"{chain.server.url}/api/v1/capture",
        json=[too_big],
        headers={"Authorization": f"Bearer {chain.maker.token}"},
    ).json()["detail"]
    assert detail["leaf_bytes"] > MAX_ENTRY_SIZE == detail["max_leaf_bytes"]
    fits = detail["max_objects"]
    assert 1_000 < fits < 1_500
    split = signed(maker, "pack", sscc=new_sscc(), children=pack[:fits])
    assert refused(chain, lambda: chain.maker.api.capture([split])).rule == "custody.unknown_unit"


# --- item 11: a store names only the participant's own place ----------------------------------


def test_storing_at_another_participants_site_is_refused(chain: Chain) -> None:
    serial = new_serial()
    chain.commission(serial)
    maker = chain.maker.station
    into_the_hub = signed(maker, "store", gtin=GTIN, serial=serial, location_gln=chain.hub.gln)

    error = refused(chain, lambda: chain.maker.api.capture([into_the_hub]))

    assert (error.status, error.rule, error.index) == (409, "custody.wrong_location", 0)
    assert chain.hub.gln in error.message
    assert place_of(chain, serial) == chain.maker.gln
    fridge = with_check_digit("952123400099")
    kept = chain.maker.api.capture(
        [signed(maker, "store", gtin=GTIN, serial=serial, location_gln=fridge)]
    )
    assert kept[0]["duplicate"] is False
    assert place_of(chain, serial) == fridge


def place_of(chain: Chain, serial: str) -> str | None:
    """Where the store keeps a unit (what the participants' stock lists are read by)."""
    with Session(chain.server.engine) as session:
        unit = session.exec(select(Unit).where(Unit.gtin == GTIN, Unit.serial == serial)).one()
    return unit.location_gln


# --- item 13: a retry gets its first receipt, whatever happened to the key since ---------------


def test_a_captured_envelope_keeps_its_first_receipt_after_its_key_is_revoked(
    chain: Chain,
) -> None:
    station = new_station(chain)
    recorded = station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY)
    first = chain.maker.api.capture([recorded])[0]
    chain.maker.api.revoke_station_keys(station.station_id, None)
    before = chain.server.snapshot()

    again = chain.maker.api.capture([recorded])[0]

    assert chain.server.snapshot() == before
    assert (again["leaf_index"], again["event_id"], again["duplicate"]) == (
        first["leaf_index"],
        first["event_id"],
        True,
    )
    new = station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY)
    error = refused(chain, lambda: chain.maker.api.capture([new]))
    assert (error.status, error.rule) == (403, "station.key_revoked")


def test_a_captured_envelope_keeps_its_first_receipt_after_its_key_is_rotated(
    chain: Chain,
) -> None:
    """An envelope stamped a little ahead (clock skew) and captured before the rotation: its
    time is after the old key's end, and a retry still gets its first receipt."""
    station = new_station(chain)
    ahead = stamp(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    recorded = station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY, event_time=ahead)
    first = chain.maker.api.capture([recorded])[0]
    fresh = Ed25519PrivateKey.generate()
    chain.maker.api.rotate_station_key(station.station_id, b64(public_key_raw(fresh)))
    before = chain.server.snapshot()

    again = chain.maker.api.capture([recorded])[0]

    assert chain.server.snapshot() == before
    assert (again["leaf_index"], again["duplicate"]) == (first["leaf_index"], True)
    late = station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY, event_time=ahead)
    assert refused(chain, lambda: chain.maker.api.capture([late])).rule == "station.key_rotated"


# --- item 16: no small-order keys, no absurd expiry ------------------------------------------


@pytest.mark.parametrize("raw", SMALL_ORDER_KEYS, ids=lambda raw: raw.hex()[:8] + raw.hex()[-4:])
def test_every_small_order_or_non_canonical_point_is_refused_as_a_key(raw: bytes) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_new_public_key(b64(raw))
    assert caught.value.rule == "key.weak"


def test_a_real_key_is_accepted() -> None:
    raw = public_key_raw(Ed25519PrivateKey.generate())
    assert decode_new_public_key(b64(raw)) == raw


def test_a_zero_key_is_refused_at_registration_and_at_rotation(chain: Chain) -> None:
    zero = b64(bytes(32))
    station_id = f"zero-{secrets.token_hex(4)}"

    registering = refused(chain, lambda: chain.maker.api.register_station(station_id, zero))

    assert (registering.status, registering.rule) == (422, "key.weak")
    assert published(chain, station_id).status_code == 404
    station = new_station(chain)
    keys_before = published(chain, station.station_id).json()
    rotating = refused(chain, lambda: chain.maker.api.rotate_station_key(station.station_id, zero))
    assert (rotating.status, rotating.rule) == (422, "key.weak")
    assert published(chain, station.station_id).json() == keys_before
    sensor = httpx.post(
        f"{chain.server.url}/api/v1/sensors",
        json={"sensor_id": f"zero-{secrets.token_hex(4)}", "public_key": zero},
        headers={"Authorization": f"Bearer {chain.hub.token}"},
    )
    assert (sensor.status_code, sensor.json()["detail"]["rule"]) == (422, "key.weak")


@pytest.mark.parametrize(
    ("expiry", "rule", "hint"),
    [
        # The ends of the calendar are refused by the bound on every date of a request...
        ("0001-01-01", "event.invalid", "0001-01-03"),
        ("9999-12-31", "event.invalid", "9999-12-29"),
        # ...and a real date no pack can have by the plausibility of an expiry.
        ("1999-12-31", "event.implausible_expiry", "2000-01-01"),
        ("2099-01-01", "event.implausible_expiry", "2000-01-01"),
    ],
)
def test_a_commissioning_with_an_absurd_expiry_is_refused(
    chain: Chain, expiry: str, rule: str, hint: str
) -> None:
    maker = chain.maker.station
    envelope = signed(maker, "commission", gtin=GTIN, serial=new_serial(), lot=LOT, expiry=expiry)

    error = refused(chain, lambda: chain.maker.api.capture([envelope]))

    assert (error.status, error.rule) == (422, rule)
    assert hint in error.message
