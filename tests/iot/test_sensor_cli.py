"""``medtrace sensor keygen|register|bind|simulate`` as real processes, against a real server,
the real Mosquitto and a real ``medtrace bridge``."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from pathlib import Path

import httpx
import pytest

from support.chain import Chain
from support.iot import MEDTRACE, broker_up, forget_session, reading_count, start_bridge, wait_until


def _medtrace(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MEDTRACE), *args], env={**os.environ, **env}, capture_output=True, text=True
    )


@pytest.mark.slow
def test_keygen_then_register_publishes_the_sensor_key(chain: Chain, tmp_path: Path) -> None:
    sensor_id = f"cli-{secrets.token_hex(4)}"
    key_file = tmp_path / "k.pem"
    made = _medtrace("sensor", "keygen", sensor_id, "--out", str(key_file), env={})
    assert made.returncode == 0, made.stderr
    public_key = re.search(r"public key: (\S+)", made.stdout)
    assert public_key is not None and oct(key_file.stat().st_mode)[-3:] == "600"
    env = {"MEDTRACE_TOKEN": chain.hub.token, "MEDTRACE_PUBLIC_URL": chain.server.url}
    done = _medtrace("sensor", "register", sensor_id, "--key-file", str(key_file), env=env)
    assert done.returncode == 0, done.stderr
    shown = httpx.get(f"{chain.server.url}/api/v1/sensors/{sensor_id}").json()
    assert (shown["public_key"], shown["participant"]) == (public_key[1], chain.hub.gln)
    again = _medtrace("sensor", "register", sensor_id, "--key-file", str(key_file), env=env)
    assert again.returncode == 1 and "already registered" in again.stderr
    place = ("--kind", "place", "--target", chain.hub.gln)
    bound = _medtrace("sensor", "bind", sensor_id, *place, env=env)
    assert bound.returncode == 0 and f"bound sensor {sensor_id}" in bound.stdout, bound.stderr
    before = _medtrace("sensor", "bind", sensor_id, *place, "--since", "2001-01-01", env=env)
    assert before.returncode == 1 and "binding.before_registration" in before.stderr
    assert f"precedes the registration of sensor '{sensor_id}'" in before.stderr  # one line


@pytest.mark.slow
@pytest.mark.mqtt
def test_simulate_registers_binds_and_publishes_what_the_bridge_captures(
    chain: Chain, tmp_path: Path
) -> None:
    if not broker_up():
        pytest.fail("no MQTT broker at 127.0.0.1:1883")
    prefix = f"sim{secrets.token_hex(3)}"
    bridge = start_bridge(
        chain.server,
        chain.hub.token,
        client_id=f"bridge-{prefix}",
        share_group="",
        log_path=tmp_path / "bridge.log",
    )
    try:
        wait_until(lambda: "relaying" in bridge.log(), 20, "the bridge to subscribe")
        env = {
            "MEDTRACE_TOKEN": chain.hub.token,
            "MEDTRACE_PUBLIC_URL": chain.server.url,
            "MEDTRACE_DATA_DIR": str(tmp_path / "data"),
        }
        run = _medtrace(
            "sensor", "simulate", "--sensors", "2", "--rate", "10", "--duration", "2",
            "--profile", "excursion", "--prefix", prefix, "--gln", chain.hub.gln, env=env,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        published = int(re.findall(r"published (\d+) readings", run.stdout)[0])
        assert 30 <= published <= 42
        wait_until(lambda: reading_count(chain.server, prefix) == published, 30, "the readings")
        bindings = httpx.get(f"{chain.server.url}/api/v1/sensors/{prefix}-1/bindings").json()
        assert [(b["kind"], b["target"]) for b in bindings] == [("place", chain.hub.gln)]
        assert (tmp_path / "data" / "keys" / "sensors" / f"{prefix}-0.pem").exists()
    finally:
        bridge.stop()
        forget_session(bridge.client_id)
