"""Witnesses: cosignature/v1, the tlog-witness checks, durable state, and a real witness process."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medtrace.cli.ledger import witness_asgi
from medtrace.ledger import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    consistency_proof,
    root_hash,
    sign_checkpoint,
    sql,
)
from medtrace.ledger.witness import (
    MAX_REQUEST_BYTES,
    CosignatureVerifier,
    Cosigner,
    Witness,
    WitnessClient,
    WitnessRefusal,
    WitnessState,
    count_cosignatures,
)
from medtrace.protocol.keys import write_key_file
from support.live import MEDTRACE, LiveServer, free_port, start_server

ORIGIN = "example.org/log"
HONEST = [f"leaf {i}".encode() for i in range(20)]
FORKED = [*HONEST[:3], b"rewritten", *HONEST[4:]]


@pytest.fixture
def log_signer() -> NoteSigner:
    return NoteSigner(ORIGIN, Ed25519PrivateKey.generate())


@pytest.fixture
def witness(tmp_path: Path, log_signer: NoteSigner) -> Witness:
    cosigner = Cosigner("witness.example/w1", Ed25519PrivateKey.generate())
    verifier = NoteVerifier.from_vkey(log_signer.vkey)
    return Witness(cosigner, WitnessState(tmp_path / "witness.db"), [verifier])


def note(signer: NoteSigner, leaves: list[bytes], size: int) -> str:
    return sign_checkpoint(Checkpoint(signer.name, size, root_hash(leaves[:size])), signer)


def body(old: int, proof: list[bytes], checkpoint_note: str) -> str:
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return f"old {old}\n{lines}\n{checkpoint_note}"


def refusal(witness: Witness, text: str) -> WitnessRefusal:
    with pytest.raises(WitnessRefusal) as caught:
        witness.add_checkpoint(text)
    return caught.value


def test_a_cosignature_is_cosignature_v1_by_the_witness_key(
    witness: Witness, log_signer: NoteSigner
) -> None:
    signed = note(log_signer, HONEST, 5)
    line = witness.add_checkpoint(body(0, [], signed))
    verifier = CosignatureVerifier.from_vkey(witness.cosigner.vkey)
    assert verifier.verified_line(signed + line) == line
    assert count_cosignatures(signed + line, [verifier]) == 1
    # The same bytes, rebuilt from the spec: key ID with type 0x04, then timestamp, signature.
    blob = base64.b64decode(line.split(" ")[2])
    name = witness.cosigner.name
    key = witness.cosigner.public_key_raw
    assert blob[:4] == hashlib.sha256(name.encode() + b"\n\x04" + key).digest()[:4]
    timestamp = int.from_bytes(blob[4:12], "big")
    assert abs(timestamp - time.time()) < 60
    text = signed.split("\n\n")[0] + "\n"
    message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
    Ed25519PublicKey.from_public_bytes(key).verify(blob[12:], message)
    # The log's own signature still verifies with the cosignature appended.
    NoteVerifier.from_vkey(log_signer.vkey).verify(signed + line)


def test_the_witness_follows_the_log_and_refuses_a_fork(
    witness: Witness, log_signer: NoteSigner, tmp_path: Path
) -> None:
    witness.add_checkpoint(body(0, [], note(log_signer, HONEST, 5)))
    witness.add_checkpoint(body(5, consistency_proof(HONEST, 5, 8), note(log_signer, HONEST, 8)))
    # A fork that rewrote leaf 3: its proof from 8 cannot match what the witness saw.
    forked = refusal(
        witness, body(8, consistency_proof(FORKED, 8, 12), note(log_signer, FORKED, 12))
    )
    assert forked.status == 422
    # The same size with another root.
    same = refusal(witness, body(8, [], note(log_signer, FORKED, 8)))
    assert same.status == 409 and same.size is None
    # A stale old size is answered with the witness's size.
    stale = refusal(
        witness, body(5, consistency_proof(HONEST, 5, 12), note(log_signer, HONEST, 12))
    )
    assert (stale.status, stale.size) == (409, 8)
    # The record survives a restart, and the honest log goes on.
    again = Witness(
        witness.cosigner,
        WitnessState(tmp_path / "witness.db"),
        [NoteVerifier.from_vkey(log_signer.vkey)],
    )
    assert WitnessState(tmp_path / "witness.db").latest(ORIGIN) == (8, root_hash(HONEST[:8]))
    again.add_checkpoint(body(8, consistency_proof(HONEST, 8, 12), note(log_signer, HONEST, 12)))


def test_bad_requests_get_the_spec_statuses(witness: Witness, log_signer: NoteSigner) -> None:
    other = NoteSigner("other.example/log", Ed25519PrivateKey.generate())
    impostor = NoteSigner(ORIGIN, Ed25519PrivateKey.generate())
    assert refusal(witness, body(0, [], note(other, HONEST, 5))).status == 404
    assert refusal(witness, body(0, [], note(impostor, HONEST, 5))).status == 403
    assert refusal(witness, "old 01\n\n" + note(log_signer, HONEST, 5)).status == 400
    assert refusal(witness, "new 1\n\n" + note(log_signer, HONEST, 5)).status == 400
    assert refusal(witness, body(6, [], note(log_signer, HONEST, 5))).status == 400


@pytest.mark.slow
def test_the_log_collects_cosignatures_from_a_witness_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "witness.pem"
    made = subprocess.run(
        [
            str(MEDTRACE),
            "witness",
            "keygen",
            "--name",
            "regulator.example/w",
            "--key-file",
            str(key_file),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    witness_vkey = made.stdout.split("witness key: ")[1].strip()
    data_dir = tmp_path / "data"
    database_url = f"sqlite:///{tmp_path / 'log.db'}"
    # The log key exists before either process starts, so the witness can be told to trust it.
    log_key = NoteSigner("127.0.0.1/medtrace", write_key_file(data_dir / "keys" / "log.pem"))
    port = free_port()
    witness_url = f"http://127.0.0.1:{port}"
    witness_proc = subprocess.Popen(
        [
            str(MEDTRACE),
            "witness",
            "serve",
            "--name",
            "regulator.example/w",
            "--key-file",
            str(key_file),
            "--state",
            str(tmp_path / "witness-state.db"),
            "--log-key",
            log_key.vkey,
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    monkeypatch.setenv("MEDTRACE_WITNESS_URLS", f'["{witness_url}"]')
    monkeypatch.setenv("MEDTRACE_WITNESS_KEYS", f'["{witness_vkey}"]')
    monkeypatch.setenv("MEDTRACE_WITNESS_QUORUM", "1")
    server: LiveServer | None = None
    try:
        server = start_server(database_url=database_url, data_dir=data_dir)
        for batch in (HONEST[:5], HONEST[5:]):
            with server.engine.begin() as conn:
                sql.begin_append(conn)
                sql.append_leaves(conn, batch)
            server.wait_for_checkpoint(len(HONEST) if batch is HONEST[5:] else 5)
        verifier = CosignatureVerifier.from_vkey(witness_vkey)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            witnessed = httpx.get(
                f"{server.url}/api/v1/ledger/checkpoint", params={"witnessed": "true"}
            )
            if witnessed.status_code == 200 and Checkpoint.from_text(
                witnessed.text.split("\n\n")[0] + "\n"
            ).size == len(HONEST):
                break
            time.sleep(0.1)
        assert witnessed.status_code == 200, server.log()
        assert verifier.verified_line(witnessed.text) is not None
        assert httpx.get(f"{server.url}/log/checkpoint").text == witnessed.text
        # A fork signed with the real log key is refused by the witness process.
        client = WitnessClient(witness_url, verifier)
        forked = note(log_key, FORKED, len(HONEST))
        with pytest.raises(WitnessRefusal) as caught:
            client.request_cosignature(forked, len(HONEST), lambda old: [])
        assert caught.value.status == 409
    finally:
        if server is not None:
            server.stop()
        witness_proc.terminate()
        witness_proc.wait(timeout=10)


@pytest.mark.parametrize("declared", [True, False])
def test_an_oversized_add_checkpoint_is_refused_unread(
    witness: Witness, log_signer: NoteSigner, declared: bool
) -> None:
    """Issue 18 item 7: the witness read a 400 MB body before looking at it."""
    honest = body(0, [], note(log_signer, HONEST, 5)).encode()
    padded = honest + b"\n" * (MAX_REQUEST_BYTES + 1 - len(honest))

    async def chunks() -> AsyncIterator[bytes]:
        yield padded[:1000]
        yield padded[1000:]

    async def post_both() -> tuple[httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=witness_asgi(witness))
        async with httpx.AsyncClient(transport=transport, base_url="http://witness") as client:
            refused = await client.post("/add-checkpoint", content=padded if declared else chunks())
            return refused, await client.post("/add-checkpoint", content=honest)

    refused, accepted = asyncio.run(post_both())

    assert refused.status_code == 413, refused.text
    assert refused.json()["detail"]["rule"] == "input.too_large"
    assert accepted.status_code == 200, "the refused body changed nothing: size 5 is new"


@pytest.mark.parametrize("old", ["9" * 5_000, str(2**64), "-1", "1e3", "٣"])
def test_an_old_size_no_tree_can_have_is_refused_as_malformed(
    witness: Witness, log_signer: NoteSigner, tmp_path: Path, old: str
) -> None:
    # Once a 500: 5 000 digits are past Python's limit on converting decimal text.
    assert refusal(witness, f"old {old}\n\n" + note(log_signer, HONEST, 5)).status == 400
    assert WitnessState(tmp_path / "witness.db").latest(ORIGIN) is None
