"""API tokens and station keys over their life: issued, rotated, revoked; through a real
server on SQLite and PostgreSQL, and through the real ``medtrace`` command."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from independent_checker import check_url
from medtrace.demo import GTIN
from medtrace.protocol.identifiers import digital_link_path
from medtrace.protocol.keys import b64, public_key_raw, write_key_file
from medtrace.protocol.readings import format_time, reading_topic, sign_reading
from medtrace.scanners.client import CaptureClient
from medtrace.scanners.errors import CaptureRefused
from medtrace.scanners.station import Station
from support.chain import EXPIRY, LOT, Chain, new_serial
from support.live import run_cli as medtrace


def new_station(chain: Chain) -> Station:
    """A fresh station of the manufacturer, registered over HTTP."""
    station = Station(f"line-{secrets.token_hex(4)}", chain.maker.gln, Ed25519PrivateKey.generate())
    chain.maker.api.register_station(station.station_id, station.public_key)
    return station


def stamp(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def commission(station: Station, *, event_time: str | None = None) -> dict[str, Any]:
    return station.commission(GTIN, new_serial(), lot=LOT, expiry=EXPIRY, event_time=event_time)


def refusal(chain: Chain, envelope: dict[str, Any]) -> CaptureRefused:
    """Send an envelope that must be refused, and prove the refusal changed nothing."""
    before = chain.server.snapshot()
    with pytest.raises(CaptureRefused) as caught:
        chain.maker.api.capture([envelope])
    assert chain.server.snapshot() == before
    return caught.value


def verify_url(chain: Chain, envelope: dict[str, Any]) -> str:
    return chain.server.url + digital_link_path(GTIN, envelope["event"]["serial"], lot=LOT)


# --- API tokens ----------------------------------------------------------------------------


def test_a_revoked_token_is_refused_and_the_participants_other_tokens_still_work(
    chain: Chain,
) -> None:
    issued = medtrace(chain.server, "participant", "token", "issue", "--gln", chain.maker.gln)
    assert issued.returncode == 0, issued.stderr
    token = re.search(r"API token: (mt_\S+)", issued.stdout)
    assert token is not None, issued.stdout
    second = CaptureClient(chain.server.url, token.group(1))
    try:
        assert second.capture([commission(chain.maker.station)])[0]["duplicate"] is False

        revoked = medtrace(chain.server, "participant", "token", "revoke", token.group(1))
        assert revoked.returncode == 0, revoked.stderr

        with pytest.raises(CaptureRefused) as caught:
            second.capture([commission(chain.maker.station)])
        assert (caught.value.status, caught.value.rule) == (401, "auth.invalid_token")
        assert chain.maker.api.capture([commission(chain.maker.station)])
    finally:
        second.close()
    again = medtrace(chain.server, "participant", "token", "revoke", token.group(1))
    assert again.returncode == 1 and "auth.unknown_token" in again.stdout + again.stderr


# --- station keys --------------------------------------------------------------------------


def test_a_rotated_key_signs_only_what_it_stamped_before_the_rotation(
    chain: Chain, tmp_path: Any
) -> None:
    old = new_station(chain)
    recorded = commission(old)
    chain.maker.api.capture([recorded])
    queued = commission(old)  # signed and stamped now, still in the outbox at the rotation
    key_file = tmp_path / "new.pem"
    new_key = write_key_file(key_file)

    rotated = medtrace(
        chain.server, "station", "rotate", old.station_id,
        "--key-file", str(key_file), "--token", chain.maker.token,
    )  # fmt: skip

    assert rotated.returncode == 0, rotated.stderr
    assert chain.maker.api.capture([queued])[0]["duplicate"] is False
    late = commission(old, event_time=stamp(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)))
    error = refusal(chain, late)
    assert (error.status, error.rule) == (403, "station.key_rotated")
    new = Station(old.station_id, old.gln, new_key)
    assert chain.maker.api.capture([commission(new)])[0]["duplicate"] is False

    published = httpx.get(f"{chain.server.url}/api/v1/stations/{old.station_id}").json()
    assert published["public_key"] == new.public_key
    assert [k["public_key"] for k in published["keys"]] == [new.public_key, old.public_key]
    assert published["keys"][0]["valid_until"] is None
    assert published["keys"][1]["valid_until"] is not None
    assert published["keys"][1]["revoked_at"] is None

    chain.server.wait_for_checkpoint(chain.server.leaves())
    assert [c.status for c in check_url(verify_url(chain, recorded))] == ["ok"]


def test_a_revoked_key_is_refused_whatever_time_it_claims_and_old_events_still_verify(
    chain: Chain,
) -> None:
    station = new_station(chain)
    recorded = commission(station)
    chain.maker.api.capture([recorded])
    backdated = commission(station, event_time=stamp(dt.datetime.now(dt.UTC)))

    revoked = medtrace(
        chain.server, "station", "revoke", station.station_id, "--token", chain.maker.token
    )

    assert revoked.returncode == 0, revoked.stderr
    error = refusal(chain, backdated)
    assert (error.status, error.rule, error.index) == (403, "station.key_revoked", 0)
    key = httpx.get(f"{chain.server.url}/api/v1/stations/{station.station_id}").json()["keys"][0]
    assert key["revoked_at"] is not None and key["valid_until"] == key["revoked_at"]

    chain.server.wait_for_checkpoint(chain.server.leaves())
    assert [c.status for c in check_url(verify_url(chain, recorded))] == ["ok"]
    audit = medtrace(chain.server, "audit")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    remote = medtrace(chain.server, "audit", "--url", chain.server.url)
    assert remote.returncode == 0, remote.stdout + remote.stderr

    fresh = Ed25519PrivateKey.generate()
    chain.maker.api.rotate_station_key(station.station_id, b64(public_key_raw(fresh)))
    renewed = Station(station.station_id, station.gln, fresh)
    assert chain.maker.api.capture([commission(renewed)])[0]["duplicate"] is False


def test_key_changes_are_refused_for_anothers_station_and_for_a_key_used_before(
    chain: Chain,
) -> None:
    station = new_station(chain)
    with pytest.raises(CaptureRefused) as foreign:
        chain.hub.api.revoke_station_keys(station.station_id, None)
    assert (foreign.value.status, foreign.value.rule) == (403, "station.not_yours")
    with pytest.raises(CaptureRefused) as reused:
        chain.maker.api.rotate_station_key(station.station_id, station.public_key)
    assert (reused.value.status, reused.value.rule) == (422, "key.reused")
    with pytest.raises(CaptureRefused) as unknown:
        chain.maker.api.revoke_station_keys(
            station.station_id, b64(public_key_raw(Ed25519PrivateKey.generate()))
        )
    assert (unknown.value.status, unknown.value.rule) == (404, "key.unknown")
    assert chain.maker.api.capture([commission(station)])[0]["duplicate"] is False


# --- sensor keys ---------------------------------------------------------------------------


def relay(
    chain: Chain, sensor_id: str, seq: int, key: Ed25519PrivateKey, taken: dt.datetime
) -> dict[str, Any]:
    """Relay one signed reading as the bridge does; its receipt."""
    reading = {"sensor_id": sensor_id, "seq": seq, "time": format_time(taken), "temperature_c": 5.0}
    message = {"topic": reading_topic(sensor_id), "payload": sign_reading(reading, key).decode()}
    response = httpx.post(
        f"{chain.server.url}/api/v1/readings",
        json=[message],
        headers={"Authorization": f"Bearer {chain.hub.token}"},
    )
    assert response.status_code in (200, 201), response.text
    receipt: dict[str, Any] = response.json()["results"][0]
    return receipt


def test_sensor_keys_rotate_and_revoke_like_station_keys(chain: Chain, tmp_path: Any) -> None:
    sensor_id = f"fridge-{secrets.token_hex(4)}"
    old = Ed25519PrivateKey.generate()
    registered = httpx.post(
        f"{chain.server.url}/api/v1/sensors",
        json={"sensor_id": sensor_id, "public_key": b64(public_key_raw(old))},
        headers={"Authorization": f"Bearer {chain.hub.token}"},
    )
    assert registered.status_code == 201, registered.text
    assert relay(chain, sensor_id, 1, old, dt.datetime.now(dt.UTC))["status"] == "accepted"
    taken_before = dt.datetime.now(dt.UTC)
    key_file = tmp_path / "sensor.pem"
    new = write_key_file(key_file)

    rotated = medtrace(
        chain.server, "sensor", "rotate", sensor_id,
        "--key-file", str(key_file), "--token", chain.hub.token, "--url", chain.server.url,
    )  # fmt: skip

    assert rotated.returncode == 0, rotated.stdout + rotated.stderr
    assert relay(chain, sensor_id, 2, old, taken_before)["status"] == "accepted"
    late = relay(chain, sensor_id, 3, old, dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1))
    assert (late["status"], late["rule"]) == ("rejected", "sensor.key_rotated")
    assert relay(chain, sensor_id, 4, new, dt.datetime.now(dt.UTC))["status"] == "accepted"

    taken_before = dt.datetime.now(dt.UTC)
    revoked = medtrace(
        chain.server, "sensor", "revoke", sensor_id,
        "--token", chain.hub.token, "--url", chain.server.url,
    )  # fmt: skip

    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    stolen = relay(chain, sensor_id, 5, new, taken_before)
    assert (stolen["status"], stolen["rule"]) == ("rejected", "sensor.key_revoked")
    published = httpx.get(f"{chain.server.url}/api/v1/sensors/{sensor_id}").json()
    assert [k["public_key"] for k in published["keys"]] == [
        b64(public_key_raw(new)),
        b64(public_key_raw(old)),
    ]
    assert all(k["revoked_at"] for k in published["keys"])
    assert published["keys"][1]["revoked_at"] > published["keys"][1]["valid_until"]
    recorded = httpx.get(f"{chain.server.url}/api/v1/readings/{sensor_id}/1")
    assert recorded.status_code == 200, "readings recorded before stay provable"


def test_revoking_every_token_of_a_participant_locks_it_out(chain: Chain) -> None:
    """(Last in the module: the pharmacy cannot act after it.)"""
    issued = medtrace(chain.server, "participant", "token", "issue", "--gln", chain.pharmacy.gln)
    token = re.search(r"API token: (mt_\S+)", issued.stdout)
    assert token is not None, issued.stdout + issued.stderr

    done = medtrace(
        chain.server, "participant", "token", "revoke", "--all", "--gln", chain.pharmacy.gln
    )

    assert done.returncode == 0, done.stderr
    assert "revoked 2 token(s)" in done.stdout
    for value in (token.group(1), chain.pharmacy.token):
        response = httpx.get(
            f"{chain.server.url}/api/v1/alerts", headers={"Authorization": f"Bearer {value}"}
        )
        assert response.status_code == 401
        assert response.json()["detail"]["rule"] == "auth.invalid_token"
