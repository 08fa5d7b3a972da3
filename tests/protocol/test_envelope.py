"""Signed envelopes (``medtrace.protocol.envelope``) and key files (``medtrace.protocol.keys``).

The canonical bytes are checked against the examples published in RFC 8785 (JSON
Canonicalization Scheme): the §3.2.2/§3.2.3 sample object, the §3.2.3 property-sorting
example, and the Appendix B number serialisation table. Signatures are checked independently
of the module: the tests verify with ``cryptography`` over ``rfc8785.dumps`` themselves.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import stat
import string
import struct
from pathlib import Path
from random import Random
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from medtrace.errors import InvalidInput, MedtraceError, SignatureRejected
from medtrace.protocol.envelope import (
    CanonicalEnvelope,
    canonical_json,
    event_id,
    leaf_bytes,
    sign_event,
    verify_envelope,
)
from medtrace.protocol.keys import (
    b64,
    load_or_create_key,
    public_key_raw,
    read_key_file,
    write_key_file,
)
from support.examples import examples

STATION = "st-1"
KEY = Ed25519PrivateKey.generate()
PUBLIC = public_key_raw(KEY)
OTHER_KEY = Ed25519PrivateKey.generate()
REJECTED = re.escape(f"the signature of station {STATION!r} does not verify over the event")

EVENT: dict[str, Any] = {
    "type": "commission",
    "gtin": "09521234000112",
    "serial": "S1",
    "lot": "L1",
    "expiry": "2028-01-31",
    "gln": "9521234000006",
    "event_time": "2026-11-22T10:00:00Z",
    "station_id": STATION,
}

SAFE_INT = 2**53 - 1  # I-JSON (RFC 7493 §2.2): integers in [-(2**53)+1, 2**53-1] are exact

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-SAFE_INT, max_value=SAFE_INT)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)
events = st.dictionaries(st.text(max_size=8), json_values, max_size=6)


def reordered(value: Any, rnd: Random) -> Any:
    """The same JSON value with the members of every object in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {key: reordered(member, rnd) for key, member in items}
    if isinstance(value, list):
        return [reordered(item, rnd) for item in value]
    return value


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths to every scalar and every empty container inside a JSON value."""
    if isinstance(value, dict) and value:
        return [p for key, member in value.items() for p in leaf_paths(member, (*path, key))]
    if isinstance(value, list) and value:
        return [p for i, item in enumerate(value) for p in leaf_paths(item, (*path, i))]
    return [path]


def get_at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A deep copy of ``value`` with the member at ``path`` replaced by ``new``."""
    result = copy.deepcopy(value)
    parent = get_at(result, path[:-1])
    parent[path[-1]] = new
    return result


def independent_check(envelope: dict[str, Any], public_raw: bytes) -> None:
    """Verify an envelope without medtrace: Ed25519 over RFC 8785 bytes of the event."""
    Ed25519PublicKey.from_public_bytes(public_raw).verify(
        base64.b64decode(envelope["signature"], validate=True), rfc8785.dumps(envelope["event"])
    )


# --- canonical_json: RFC 8785 -------------------------------------------------------------

# RFC 8785 §3.2.2 (and §3.2.3): the sample object, as JSON text, and its canonical form.
RFC_SAMPLE = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
RFC_SAMPLE_CANONICAL = (
    r'{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
)

# RFC 8785 §3.2.3: property names are sorted by their UTF-16 code units, so U+1F600 (the
# surrogate pair D83D DE00) sorts before U+FB33 although its code point is larger.
RFC_SORTING = r"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
RFC_SORTING_CANONICAL = (
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
    '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
    '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
)

# RFC 8785 Appendix B: IEEE 754 double (hex bits) -> canonical JSON number (finite rows).
RFC_APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def test_canonical_json_gives_the_rfc_8785_sample_bytes() -> None:
    assert canonical_json(json.loads(RFC_SAMPLE)) == RFC_SAMPLE_CANONICAL.encode("utf-8")


def test_canonical_json_sorts_members_by_utf16_code_units_as_in_rfc_8785() -> None:
    parsed = json.loads(RFC_SORTING)
    assert canonical_json(parsed) == RFC_SORTING_CANONICAL.encode("utf-8")
    # the example discriminates: sorting by code point would put the emoji last
    assert sorted(parsed)[-1] == "\U0001f600"


@pytest.mark.parametrize(("bits", "expected"), RFC_APPENDIX_B)
def test_canonical_json_numbers_follow_rfc_8785_appendix_b(bits: str, expected: str) -> None:
    value = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert canonical_json(value) == expected.encode("ascii")
    assert canonical_json([value]) == f"[{expected}]".encode("ascii")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1e30, b"1e+30"),
        (4.50, b"4.5"),
        (2e-3, b"0.002"),
        (1e-27, b"1e-27"),
        (333333333.33333329, b"333333333.3333333"),
    ],
)
def test_canonical_json_prints_the_rfc_sample_numbers(value: float, expected: bytes) -> None:
    assert canonical_json(value) == expected


def test_canonical_json_sorts_nested_objects_and_writes_no_whitespace() -> None:
    value = {"b": [{"z": 1, "a": None}], "a": {"d": True, "c": "x y"}}
    assert canonical_json(value) == b'{"a":{"c":"x y","d":true},"b":[{"a":null,"z":1}]}'


def test_canonical_json_accepts_the_exact_integer_range() -> None:
    assert canonical_json(SAFE_INT) == b"9007199254740991"
    assert canonical_json(-SAFE_INT) == b"-9007199254740991"


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        {"n": float("nan")},
        [1, [float("nan")]],
        2**53 + 1,
        -(2**53 + 1),
        2**64,
        {"big": 10**20},
    ],
    ids=["nan", "inf", "-inf", "nested-nan", "deep-nan", "2^53+1", "-(2^53+1)", "2^64", "1e20"],
)
def test_canonical_json_refuses_numbers_json_cannot_carry_exactly(value: Any) -> None:
    with pytest.raises(InvalidInput, match=r"^not canonicalisable JSON: ") as caught:
        canonical_json(value)
    assert caught.value.rule == "input.not_canonical"
    assert isinstance(caught.value, MedtraceError)


@pytest.mark.parametrize(
    "value",
    [{1: "x"}, b"bytes", {"s": "\ud800"}, object(), {"set": {1}}],
    ids=["int-key", "bytes", "lone-surrogate", "object", "set"],
)
def test_canonical_json_refuses_values_that_are_not_json(value: Any) -> None:
    with pytest.raises(InvalidInput, match=r"^not canonicalisable JSON: ") as caught:
        canonical_json(value)
    assert caught.value.rule == "input.not_canonical"


# --- event_id ---------------------------------------------------------------------------


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**54), max_value=2**54)
    | st.floats()
    | st.sampled_from([5.0, -0.0, 1e-4, 9.99e-5, 1e-7, 1e16, 9999999999999998.0, 0.1 + 0.2])
    | st.text()
    | st.sampled_from(['"\\', "\x00\x1f\x7f", "\u2028\u2029", "\ud800", "é𝄞"])
)


@settings(max_examples=examples(ci=400, thorough=2000))
@given(st.dictionaries(st.text(max_size=12), _SCALARS, max_size=6) | _SCALARS)
def test_canonical_json_writes_the_reference_bytes_or_refuses_alike(value: object) -> None:
    """The json-module fast path writes exactly what the reference RFC 8785 implementation
    writes, and what it refuses is refused."""
    try:
        expected = rfc8785.dumps(value)  # type: ignore[arg-type]
    except (rfc8785.CanonicalizationError, ValueError):
        with pytest.raises(InvalidInput):
            canonical_json(value)
        return
    assert canonical_json(value) == expected


def test_event_id_is_the_sha256_of_the_canonical_bytes() -> None:
    expected = hashlib.sha256(rfc8785.dumps(EVENT)).hexdigest()
    assert event_id(EVENT) == expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)
    assert event_id(dict(reversed(list(EVENT.items())))) == expected


def test_event_id_of_a_non_canonical_event_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        event_id({**EVENT, "n": 2**60})
    assert caught.value.rule == "input.not_canonical"


@settings(deadline=None)
@given(event=events)
def test_event_id_is_deterministic_and_hashes_the_canonical_bytes(event: dict[str, Any]) -> None:
    eid = event_id(event)
    assert eid == hashlib.sha256(rfc8785.dumps(event)).hexdigest()
    assert event_id(copy.deepcopy(event)) == eid
    assert event_id(json.loads(json.dumps(event))) == eid


# --- sign_event / verify_envelope ---------------------------------------------------------


def test_sign_event_builds_the_envelope_and_it_verifies() -> None:
    envelope = sign_event(EVENT, station_id=STATION, key=KEY)
    assert set(envelope) == {"event", "signature", "station_id"}
    assert envelope["event"] == EVENT
    assert envelope["station_id"] == STATION
    assert len(base64.b64decode(envelope["signature"], validate=True)) == 64
    verify_envelope(envelope, PUBLIC)
    independent_check(envelope, PUBLIC)


def test_ed25519_signatures_are_deterministic() -> None:
    first = sign_event(EVENT, station_id=STATION, key=KEY)
    second = sign_event(dict(reversed(list(EVENT.items()))), station_id=STATION, key=KEY)
    assert first["signature"] == second["signature"]


def test_an_envelope_survives_a_json_round_trip() -> None:
    envelope = sign_event(EVENT, station_id=STATION, key=KEY)
    verify_envelope(json.loads(json.dumps(envelope, indent=2)), PUBLIC)


def test_a_signature_from_another_key_is_rejected() -> None:
    envelope = sign_event(EVENT, station_id=STATION, key=OTHER_KEY)
    with pytest.raises(SignatureRejected, match=REJECTED) as caught:
        verify_envelope(envelope, PUBLIC)
    assert caught.value.rule == "signature.invalid"


def test_a_changed_member_is_rejected() -> None:
    envelope = sign_event(EVENT, station_id=STATION, key=KEY)
    for name in EVENT:
        tampered = {**envelope, "event": {**EVENT, name: EVENT[name] + "0"}}
        with pytest.raises(SignatureRejected, match=REJECTED):
            verify_envelope(tampered, PUBLIC)
    extra = {**envelope, "event": {**EVENT, "note": None}}
    with pytest.raises(SignatureRejected, match=REJECTED):
        verify_envelope(extra, PUBLIC)
    missing = {**envelope, "event": {k: v for k, v in EVENT.items() if k != "lot"}}
    with pytest.raises(SignatureRejected, match=REJECTED):
        verify_envelope(missing, PUBLIC)


def test_the_message_names_the_station_of_the_envelope() -> None:
    envelope = sign_event(EVENT, station_id="dock-7", key=OTHER_KEY)
    with pytest.raises(SignatureRejected, match=re.escape("station 'dock-7' does not verify")):
        verify_envelope(envelope, PUBLIC)


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "not base64!!",
        "AAAA",
        "é",
        b64(b"\x00" * 63),
        b64(b"\x00" * 65),
        b64(b"\x00" * 64),
        "-_" * 44,  # the URL-safe alphabet is not standard base64
    ],
    ids=["empty", "garbage", "3-bytes", "non-ascii", "63-bytes", "65-bytes", "zeros", "urlsafe"],
)
def test_a_malformed_signature_is_rejected(signature: str) -> None:
    envelope = {**sign_event(EVENT, station_id=STATION, key=KEY), "signature": signature}
    with pytest.raises(SignatureRejected, match=REJECTED) as caught:
        verify_envelope(envelope, PUBLIC)
    assert caught.value.rule == "signature.invalid"


def test_a_signature_with_its_padding_or_whitespace_changed_is_rejected() -> None:
    envelope = sign_event(EVENT, station_id=STATION, key=KEY)
    good = envelope["signature"]
    assert good.endswith("==")
    for bad in (
        good.rstrip("="),
        good + "=",
        " " + good,
        good + "\n",
        good[:40] + "\n" + good[40:],
    ):
        with pytest.raises(SignatureRejected, match=REJECTED):
            verify_envelope({**envelope, "signature": bad}, PUBLIC)


def test_a_malleated_signature_is_rejected() -> None:
    """S + L is the same scalar modulo the group order L, but RFC 8032 requires S < L: a
    verifier that let it through would let anyone make a second valid signature."""
    envelope = sign_event(EVENT, station_id=STATION, key=KEY)
    signature = base64.b64decode(envelope["signature"])
    order = 2**252 + 27742317777372353535851937790883648493  # L, of RFC 8032
    s = int.from_bytes(signature[32:], "little") + order
    malleated = base64.b64encode(signature[:32] + s.to_bytes(32, "little")).decode()
    with pytest.raises(SignatureRejected):
        verify_envelope({**envelope, "signature": malleated}, PUBLIC)


def test_a_signature_with_non_canonical_base64_pad_bits_is_rejected() -> None:
    envelope = sign_event(EVENT, station_id=STATION, key=KEY)
    good = envelope["signature"]
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
    # 64 bytes = 21 * 3 + 1: the last byte fills the char before "==" and 4 bits are padding
    last = alphabet.index(good[-3])
    bad = good[:-3] + alphabet[last | 0b0001] + "=="
    assert bad != good
    with pytest.raises(SignatureRejected, match=REJECTED):
        verify_envelope({**envelope, "signature": bad}, PUBLIC)


@pytest.mark.parametrize("key", [b"", b"\x00" * 31, b"\x00" * 33], ids=["empty", "31", "33"])
def test_a_malformed_public_key_is_rejected(key: bytes) -> None:
    envelope = sign_event(EVENT, station_id=STATION, key=KEY)
    with pytest.raises(SignatureRejected, match=REJECTED):
        verify_envelope(envelope, key)


@settings(deadline=None)
@given(event=events)
def test_any_signed_event_verifies(event: dict[str, Any]) -> None:
    envelope = sign_event(event, station_id=STATION, key=KEY)
    verify_envelope(envelope, PUBLIC)
    independent_check(envelope, PUBLIC)
    verify_envelope(json.loads(json.dumps(envelope)), PUBLIC)


@settings(deadline=None)
@given(event=events, rnd=st.randoms(use_true_random=False))
def test_member_order_changes_neither_id_nor_signature_validity(
    event: dict[str, Any], rnd: Random
) -> None:
    envelope = sign_event(event, station_id=STATION, key=KEY)
    permuted = reordered(event, rnd)
    assert event_id(permuted) == event_id(event)
    verify_envelope({**envelope, "event": permuted}, PUBLIC)
    assert sign_event(permuted, station_id=STATION, key=KEY)["signature"] == envelope["signature"]


@settings(deadline=None)
@given(event=events.filter(bool), data=st.data())
def test_changing_any_one_value_is_rejected(event: dict[str, Any], data: st.DataObject) -> None:
    envelope = sign_event(event, station_id=STATION, key=KEY)
    path = data.draw(st.sampled_from(leaf_paths(event)), label="path")
    old = rfc8785.dumps(get_at(event, path))
    new = data.draw(json_values.filter(lambda v: rfc8785.dumps(v) != old), label="new")
    tampered = replaced(event, path, new)
    assert event_id(tampered) != event_id(event)
    with pytest.raises(SignatureRejected, match=REJECTED) as caught:
        verify_envelope({**envelope, "event": tampered}, PUBLIC)
    assert caught.value.rule == "signature.invalid"


@settings(deadline=None)
@given(event=events)
def test_a_signature_from_another_key_is_always_rejected(event: dict[str, Any]) -> None:
    envelope = sign_event(event, station_id=STATION, key=OTHER_KEY)
    with pytest.raises(SignatureRejected, match=REJECTED):
        verify_envelope(envelope, PUBLIC)


@settings(deadline=None)
@given(
    event=events,
    index=st.integers(min_value=0, max_value=63),
    bit=st.integers(min_value=0, max_value=7),
)
def test_any_flipped_signature_bit_is_rejected(event: dict[str, Any], index: int, bit: int) -> None:
    envelope = sign_event(event, station_id=STATION, key=KEY)
    raw = bytearray(base64.b64decode(envelope["signature"]))
    raw[index] ^= 1 << bit
    with pytest.raises(SignatureRejected, match=REJECTED):
        verify_envelope({**envelope, "signature": b64(bytes(raw))}, PUBLIC)


# --- leaf_bytes -------------------------------------------------------------------------


def test_leaf_bytes_are_the_canonical_envelope() -> None:
    envelope = sign_event(EVENT, station_id=STATION, key=KEY)
    leaf = leaf_bytes(envelope)
    assert leaf == rfc8785.dumps(envelope)
    assert leaf.startswith(b'{"event":{"event_time":')
    assert leaf.endswith(b'"station_id":"st-1"}')


def test_leaf_bytes_keep_exactly_three_members() -> None:
    envelope = {**sign_event(EVENT, station_id=STATION, key=KEY), "received_at": "now", "x": 1}
    leaf = json.loads(leaf_bytes(envelope))
    assert set(leaf) == {"event", "signature", "station_id"}
    assert leaf["event"] == EVENT


def test_leaf_bytes_need_all_three_members() -> None:
    envelope = sign_event(EVENT, station_id=STATION, key=KEY)
    for name in envelope:
        with pytest.raises(KeyError):
            leaf_bytes({k: v for k, v in envelope.items() if k != name})


@settings(deadline=None)
@given(event=events, rnd=st.randoms(use_true_random=False))
def test_leaf_bytes_are_canonical_for_any_event(event: dict[str, Any], rnd: Random) -> None:
    envelope = sign_event(event, station_id=STATION, key=KEY)
    leaf = leaf_bytes(envelope)
    parsed = json.loads(leaf)
    assert set(parsed) == {"event", "signature", "station_id"}
    assert rfc8785.dumps(parsed) == leaf
    assert parsed["signature"] == envelope["signature"]
    assert leaf_bytes({**envelope, "event": reordered(event, rnd)}) == leaf
    # the leaf alone is enough to check the signature
    verify_envelope(parsed, PUBLIC)


@settings(deadline=None, max_examples=50)
@given(event=events)
def test_a_leaf_captured_for_a_principal_is_the_canonical_envelope_with_captured_by(
    event: dict[str, Any],
) -> None:
    """Under a capture grant the leaf names who captured beside the signed event (whose
    ``gln`` is the principal's), still canonical, still enough to check the signature."""
    envelope = sign_event(event, station_id=STATION, key=KEY)
    leaf = CanonicalEnvelope.of(envelope).leaf(captured_by="9520000000013")
    parsed = json.loads(leaf)
    assert parsed == {**envelope, "captured_by": "9520000000013"}
    assert rfc8785.dumps(parsed) == leaf
    verify_envelope(parsed, PUBLIC)


# --- keys -------------------------------------------------------------------------------


def test_write_key_file_creates_a_0600_pkcs8_pem(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "nested" / "station.pem"
    key = write_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert public_key_raw(read_key_file(path)) == public_key_raw(key)


def test_write_key_file_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "station.pem"
    write_key_file(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        write_key_file(path)
    assert path.read_bytes() == before


def test_write_key_file_refuses_to_overwrite_any_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("keep me")
    with pytest.raises(FileExistsError):
        write_key_file(path)
    assert path.read_text() == "keep me"


def test_a_key_read_back_signs_what_the_written_key_verifies(tmp_path: Path) -> None:
    path = tmp_path / "station.pem"
    written = write_key_file(path)
    envelope = sign_event(EVENT, station_id=STATION, key=read_key_file(path))
    verify_envelope(envelope, public_key_raw(written))


def test_read_key_file_refuses_a_key_that_is_not_ed25519(tmp_path: Path) -> None:
    path = tmp_path / "ec.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ValueError, match="does not hold an Ed25519 private key"):
        read_key_file(path)


def test_load_or_create_key_creates_once_then_reads(tmp_path: Path) -> None:
    path = tmp_path / "log.pem"
    created = load_or_create_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_raw(load_or_create_key(path)) == public_key_raw(created)


def test_public_key_raw_is_the_32_byte_ed25519_public_key() -> None:
    raw = public_key_raw(KEY)
    assert isinstance(raw, bytes)
    assert len(raw) == 32
    assert raw != public_key_raw(OTHER_KEY)
    signature = KEY.sign(b"message")
    Ed25519PublicKey.from_public_bytes(raw).verify(signature, b"message")


def test_b64_is_standard_padded_base64() -> None:
    assert b64(b"\xfb\xff") == "+/8="
    assert b64(b"") == ""
