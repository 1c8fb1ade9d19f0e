"""The payload envelope and CBOR body: host and firmware agree byte for byte with tests/vectors.

Host checks run on CPython; firmware checks run firmware/payload on the real
MicroPython unix port, one interpreter process per test, with the cases passed
in as JSON and the results printed back as JSON.
"""
from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import cbor2
import pytest
from Crypto.Cipher import AES

from host_tools import envelope, schemas
from host_tools.envelope import EnvelopeError
from simulators.interpreter import FIRMWARE, run_script

VECTORS_DIR = Path(__file__).resolve().parent / "vectors"
VECTORS = {p.stem: json.loads(p.read_text()) for p in sorted(VECTORS_DIR.glob("*.json"))}
SEALED = {k: v for k, v in VECTORS.items() if "error" not in v}
ERRORS = {k: v for k, v in VECTORS.items() if "error" in v}


def _micropython(code: str, data) -> object:
    """Run `code` with `DATA` bound to data; return the JSON it prints last."""
    prelude = "import json\nfrom binascii import hexlify, unhexlify\nDATA = json.loads(%r)\n" % json.dumps(data)
    result = run_script(prelude + code, path=[FIRMWARE])
    assert result.returncode == 0, result.stderr or result.stdout
    return json.loads(result.stdout.strip().splitlines()[-1])


def _args(v):
    i = v["inputs"]
    return bytes.fromhex(i["key"]), bytes.fromhex(i["dev_eui"]), i["direction"]


# --- the vectors themselves -------------------------------------------------

def test_vectors_cover_the_required_cases():
    counters = {v["inputs"]["counter"] for v in SEALED.values()}
    assert {0, 70000} <= counters and any(c > 2**24 for c in counters)
    assert any(v["inputs"]["reading"]["values"]["temperature"] < 0
               for v in SEALED.values() if v["inputs"]["reading"]["values"]["temperature"] is not None)
    assert {v["error"] for v in ERRORS.values()} >= {
        "bad tag", "truncated", "unknown version 2", "reserved flags set"}


def test_make_vectors_reproduces_the_committed_files():
    spec = importlib.util.spec_from_file_location("make_vectors", VECTORS_DIR / "make_vectors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build()
    assert sorted(built) == sorted(p.name for p in VECTORS_DIR.glob("*.json"))
    for name, text in built.items():
        assert (VECTORS_DIR / name).read_text() == text, name


# --- (a) host ---------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SEALED))
def test_host_seals_vector_to_expected_bytes_and_back(name):
    v = SEALED[name]
    key, dev_eui, direction = _args(v)
    i, e = v["inputs"], v["expected"]
    body = schemas.encode_reading(i["reading"]["kind"], i["reading"]["values"], i["reading"]["faults"],
                                  i["reading"]["seq"], schema_id=i["body_items"][0])
    assert body.hex() == e["body"] == i["body"]
    assert cbor2.loads(body) == i["body_items"]
    frame = envelope.seal(key, dev_eui, i["counter"], body, direction)
    assert frame.hex() == e["frame"]
    assert frame[:len(e["header"]) // 2].hex() == e["header"]
    assert envelope.nonce(dev_eui, i["counter"], direction).hex() == e["nonce"]
    assert envelope.unseal(key, dev_eui, frame, direction) == (i["counter"], body)
    assert schemas.decode_body(body) == e["reading"]
    version, flags, counter, header_len = envelope.parse_header(frame)
    assert (version, flags, counter, header_len) == (1, 0, i["counter"], len(e["header"]) // 2)


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_host_rejects_error_vector_with_its_reason(name):
    v = ERRORS[name]
    key, dev_eui, direction = _args(v)
    with pytest.raises(EnvelopeError, match=v["error"]):
        envelope.unseal(key, dev_eui, bytes.fromhex(v["inputs"]["frame"]), direction)


def test_host_bad_tag_for_wrong_key_dev_eui_or_direction_never_shows_the_key():
    v = SEALED["climate_normal"]
    key, dev_eui, direction = _args(v)
    frame = bytes.fromhex(v["expected"]["frame"])
    wrong_key = bytes(reversed(key))
    for args in [(wrong_key, dev_eui, frame, 0), (key, bytes(8), frame, 0), (key, dev_eui, frame, 1)]:
        with pytest.raises(EnvelopeError, match="bad tag") as info:
            envelope.unseal(*args)
        message = str(info.value)
        assert key.hex() not in message and wrong_key.hex() not in message
    for i in range(len(frame)):
        tampered = bytearray(frame)
        tampered[i] ^= 0x40
        with pytest.raises(EnvelopeError):
            envelope.unseal(key, dev_eui, bytes(tampered), 0)


def test_host_truncation_reports_the_length():
    v = SEALED["counter_4_bytes"]
    key, dev_eui, _ = _args(v)
    frame = bytes.fromhex(v["expected"]["frame"])
    for n in range(0, 5 + 1 + 8):
        with pytest.raises(EnvelopeError, match="truncated") as info:
            envelope.unseal(key, dev_eui, frame[:n], 0)
        assert f"{n} bytes" in str(info.value)


def test_host_rejects_bad_arguments_without_echoing_the_key():
    key = bytes(range(15))
    with pytest.raises(EnvelopeError, match="key must be 16 bytes, got 15") as info:
        envelope.seal(key, bytes(8), 1, b"\x01")
    assert key.hex() not in str(info.value)
    with pytest.raises(EnvelopeError, match="counter"):
        envelope.seal(bytes(16), bytes(8), 2**32, b"\x01")
    with pytest.raises(EnvelopeError, match="empty"):
        envelope.seal(bytes(16), bytes(8), 1, b"")
    with pytest.raises(EnvelopeError, match="direction"):
        envelope.seal(bytes(16), bytes(8), 1, b"\x01", direction=2)


def test_host_counter_uses_fewest_bytes():
    for counter, n in [(0, 1), (255, 1), (256, 2), (65535, 2), (65536, 3),
                       (2**24 - 1, 3), (2**24, 4), (2**32 - 1, 4)]:
        h = envelope.header(counter)
        assert len(h) == 1 + n and h[0] == 0x20 | (n - 1) << 3
        assert int.from_bytes(h[1:], "big") == counter


def test_schema_rejects_unknown_id_and_wrong_length():
    with pytest.raises(schemas.SchemaError, match="unknown schema id 9"):
        schemas.decode_body(cbor2.dumps([9, 7, 0, 1, 2, 3]))
    with pytest.raises(schemas.SchemaError, match="3 channels, body has 2"):
        schemas.decode_body(cbor2.dumps([1, 7, 0, 1, 2]))
    with pytest.raises(schemas.SchemaError, match="trailing"):
        schemas.decode_body(cbor2.dumps([1, 7, 0, 1, 2, 3]) + b"\x00")
    with pytest.raises(schemas.SchemaError, match="status"):
        schemas.decode_body(cbor2.dumps([1, 7, 4, 1, 2, 3]))
    with pytest.raises(schemas.SchemaError, match="sequence"):
        schemas.decode_body(cbor2.dumps([1, -1, 0, 1, 2, 3]))


# --- (b) firmware envelope and body against the vectors ---------------------

FIRMWARE_VECTORS = r"""
from payload import envelope, cbor
out = {}
for name, v in DATA.items():
    i = v["inputs"]
    key = unhexlify(i["key"]); eui = unhexlify(i["dev_eui"])
    r = {}
    if "error" in v:
        try:
            envelope.unseal(key, eui, unhexlify(i["frame"]), i["direction"])
            r["error"] = None
        except ValueError as e:
            r["error"] = str(e)
    else:
        body = cbor.dumps(i["body_items"])
        frame = envelope.seal(key, eui, i["counter"], body, i["direction"])
        counter, opened = envelope.unseal(key, eui, frame, i["direction"])
        r["body"] = hexlify(body).decode()
        r["frame"] = hexlify(frame).decode()
        r["counter"] = counter
        r["opened"] = hexlify(opened).decode()
        r["items"] = cbor.loads(opened)
    out[name] = r
print(json.dumps(out))
"""


def test_firmware_seals_and_unseals_every_vector_byte_for_byte():
    got = _micropython(FIRMWARE_VECTORS, VECTORS)
    for name, v in SEALED.items():
        e, i = v["expected"], v["inputs"]
        assert got[name]["body"] == e["body"], name
        assert got[name]["frame"] == e["frame"], name
        assert got[name]["counter"] == i["counter"], name
        assert got[name]["opened"] == e["body"], name
        assert got[name]["items"] == i["body_items"], name
    for name, v in ERRORS.items():
        assert got[name]["error"] == v["error"], name


# --- (c) firmware CCM against pycryptodome ----------------------------------

FIRMWARE_CCM = r"""
from payload import ccm
out = []
for c in DATA:
    key, nonce, aad, pt = [unhexlify(c[k]) for k in ("key", "nonce", "aad", "pt")]
    ct = ccm.encrypt(key, nonce, aad, pt)
    back = ccm.decrypt(key, nonce, aad, ct)
    forged = bytearray(ct); forged[len(forged) // 2] ^= 1
    try:
        ccm.decrypt(key, nonce, aad, forged)
        rejected = None
    except ValueError as e:
        rejected = str(e)
    out.append([hexlify(ct).decode(), back == pt, rejected])
print(json.dumps(out))
"""


def test_firmware_ccm_matches_pycryptodome_on_random_inputs():
    rng = random.Random(3610)
    lengths = [0, 1, 15, 16, 17, 31, 32, 33, 48, 60]
    cases, expected = [], []
    for n in range(50):
        aad_len = lengths[n % len(lengths)] if n < 20 else rng.randint(0, 60)
        pt_len = lengths[(n * 3) % len(lengths)] if n < 20 else rng.randint(0, 60)
        key, nonce = rng.randbytes(16), rng.randbytes(13)
        aad, pt = rng.randbytes(aad_len), rng.randbytes(pt_len)
        cipher = AES.new(key, AES.MODE_CCM, nonce=nonce, mac_len=8)
        cipher.update(aad)
        ct, tag = cipher.encrypt_and_digest(pt)
        cases.append({"key": key.hex(), "nonce": nonce.hex(), "aad": aad.hex(), "pt": pt.hex()})
        expected.append((ct + tag).hex())
    assert {len(c["pt"]) // 2 for c in cases} >= {0, 16, 32, 48}
    assert {len(c["aad"]) // 2 for c in cases} >= {0, 16, 32, 48}
    got = _micropython(FIRMWARE_CCM, cases)
    for case, want, (ct, roundtrip, rejected) in zip(cases, expected, got):
        assert ct == want, case
        assert roundtrip, case
        assert rejected == "bad tag", case


# --- (d) firmware CBOR against cbor2 ----------------------------------------

CBOR_VALUES = [
    0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1,
    -1, -24, -25, -256, -257, -1234, -65536, -65537, -2**32, -2**64,
    b"", b"\x00\xff", bytes(range(24)), bytes(300),
    "", "a", "IETF", "üñí€", "x" * 23, "y" * 24, "z" * 256,
    [], [1, [2, 3], [4, [5]]], list(range(25)),
    {}, {"a": 1, "b": [2, 3]}, {1: "one", -1: None, "k": {"n": b"\x01"}},
    None, True, False, [None, True, False, -1, "s", b"b"],
    [1, 0, 2137, 552, 3310], [1, 1, None, None, 3300],
]

FIRMWARE_CBOR = r"""
from payload import cbor
enc = []
for h in DATA["values"]:
    obj = cbor.loads(unhexlify(h))         # cbor2's bytes -> object (checked by re-encoding)
    enc.append(hexlify(cbor.dumps(obj)).decode())
rej = []
for h in DATA["reject"]:
    try:
        cbor.loads(unhexlify(h))
        rej.append(None)
    except ValueError as e:
        rej.append(str(e))
types = []
for obj in (1.5, object(), {1, 2}):
    try:
        cbor.dumps(obj)
        types.append(None)
    except TypeError as e:
        types.append("TypeError")
print(json.dumps({"enc": enc, "reject": rej, "types": types}))
"""


def _typed(obj):
    """obj with type names kept, so True never equals 1 and b'' never equals ''."""
    if isinstance(obj, list):
        return ["list", [_typed(x) for x in obj]]
    if isinstance(obj, dict):
        return ["dict", sorted((repr(_typed(k)), _typed(v)) for k, v in obj.items())]
    return [type(obj).__name__, obj]


def test_firmware_cbor_encodes_what_cbor2_decodes_and_rejects_malformed_input():
    truncated = []
    for obj in [65536, 2**32, -2**32, b"\x00\xff", "IETF", [1, [2, 3]], {"a": 1}]:
        full = cbor2.dumps(obj)
        truncated += [full[:n].hex() for n in range(len(full))]
    malformed = {
        "trailing data": cbor2.dumps(1) + b"\x00",
        "indefinite length": bytes.fromhex("9f01ff"),
        "floats": cbor2.dumps(1.5),
        "tags": cbor2.dumps(cbor2.CBORTag(1, 0)),
        "unsupported simple": bytes.fromhex("f7"),
        "reserved": bytes.fromhex("1c"),
        "nesting": bytes.fromhex("81" * 9 + "01"),
        "duplicate": bytes.fromhex("a2010201 03"),
        "UTF-8": bytes.fromhex("62fffe"),
    }
    data = {"values": [cbor2.dumps(v).hex() for v in CBOR_VALUES],
            "reject": truncated + [b.hex() for b in malformed.values()]}
    got = _micropython(FIRMWARE_CBOR, data)
    for value, h in zip(CBOR_VALUES, got["enc"]):
        decoded = cbor2.loads(bytes.fromhex(h))
        assert _typed(decoded) == _typed(value), value
        if not isinstance(value, dict):   # map key order may differ from cbor2's default
            assert h == cbor2.dumps(value).hex(), value
    reasons = got["reject"]
    assert reasons[:len(truncated)] == ["truncated"] * len(truncated)
    for (expect, _), reason in zip(malformed.items(), reasons[len(truncated):]):
        assert reason is not None and expect in reason, (expect, reason)
    assert got["types"] == ["TypeError"] * 3


def test_firmware_cbor_nesting_at_the_limit_round_trips():
    got = _micropython(
        "from payload import cbor\n"
        "o = 1\n"
        "for _ in range(cbor.MAX_DEPTH): o = [o]\n"
        "print(json.dumps(hexlify(cbor.dumps(o)).decode()))\n", None)
    assert cbor2.loads(bytes.fromhex(got)) == [[[[[[[[1]]]]]]]]
