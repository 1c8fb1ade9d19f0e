"""Write the payload test vectors (tests/vectors/*.json) from host_tools.

    python tests/vectors/make_vectors.py           # rewrite the files
    python tests/vectors/make_vectors.py --check   # exit 1 if a file differs

Inputs are fixed test values (key 000102..0f, DevEUI 0011..77), never real
secrets; the output is deterministic, so a rerun reproduces the committed files.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

import cbor2  # noqa: E402

from host_tools import envelope, schemas  # noqa: E402

KEY = bytes(range(16))                             # 000102...0f: obviously a test key
DEV_EUI = bytes.fromhex("0011223344556677")
NORMAL = {"temperature": 21.37, "humidity": 55.2, "battery": 3.31}

# name: (description, counter, direction, values, faults)
SEALED = {
    "climate_normal": ("A normal climate uplink, 1-byte counter.",
                       42, 0, NORMAL, []),
    "climate_negative_temperature": ("-12.34 degC: a negative integer (CBOR major type 1); 2-byte counter.",
                                     300, 0, {"temperature": -12.34, "humidity": 87.5, "battery": 3.05}, []),
    "counter_zero": ("Counter 0 takes 1 byte; the SHT4x failed, so its channels are null and status bit 0 is set.",
                     0, 0, {"temperature": None, "humidity": None, "battery": 3.3}, ["sht4x"]),
    "counter_3_bytes": ("Counter 70000 (above 65535) takes 3 bytes.",
                        70000, 0, NORMAL, []),
    "counter_4_bytes": ("Counter 0x12345678 (above 2**24) takes 4 bytes.",
                        0x12345678, 0, NORMAL, []),
    "counter_max": ("The last counter, 2**32 - 1; battery read failed (status bit 1).",
                    0xFFFFFFFF, 0, {"temperature": 5.0, "humidity": 99.9, "battery": None}, ["battery"]),
    "direction_downlink": ("The normal reading sealed with direction 1: only the nonce changes, so the frame differs.",
                           42, 1, NORMAL, []),
}


CLIMATE_V1 = 1   # the vectors (and docs/payload.md's worked example) are climate v1 bodies


def _inputs(counter, direction, values, faults):
    seq = counter // 2  # a node seals fewer readings than transmissions: seq lags the counter
    items = schemas.encode_items("climate", values, faults, seq, schema_id=CLIMATE_V1)
    body = cbor2.dumps(items)
    return {
        "key": KEY.hex(),
        "dev_eui": DEV_EUI.hex(),
        "counter": counter,
        "direction": direction,
        "reading": {"kind": "climate", "seq": seq, "values": values, "faults": faults},
        "body_items": items,
        "body": body.hex(),
    }, body


def _sealed(description, counter, direction, values, faults):
    inputs, body = _inputs(counter, direction, values, faults)
    assert body == schemas.encode_reading("climate", values, faults, inputs["reading"]["seq"],
                                          schema_id=CLIMATE_V1)
    frame = envelope.seal(KEY, DEV_EUI, counter, body, direction)
    return {
        "description": description,
        "inputs": inputs,
        "expected": {
            "body": body.hex(),
            "header": envelope.header(counter).hex(),
            "nonce": envelope.nonce(DEV_EUI, counter, direction).hex(),
            "frame": frame.hex(),
            "reading": schemas.decode_body(body),
        },
    }


def _error(description, frame, error, direction=0):
    return {
        "description": description,
        "inputs": {"key": KEY.hex(), "dev_eui": DEV_EUI.hex(), "direction": direction,
                   "frame": frame.hex()},
        "error": error,
    }


def build() -> dict[str, str]:
    """File name -> exact file text."""
    vectors = {name: _sealed(*args) for name, args in SEALED.items()}
    good = bytes.fromhex(vectors["climate_normal"]["expected"]["frame"])

    tampered = bytearray(good)
    tampered[-1] ^= 0x01
    bad = _error("climate_normal with the last tag bit flipped.", bytes(tampered), "bad tag")
    bad["inputs"].update({k: v for k, v in vectors["climate_normal"]["inputs"].items()
                          if k not in bad["inputs"]})
    vectors["bad_tag"] = bad
    vectors["error_truncated"] = _error(
        "climate_normal cut to 10 bytes: shorter than the 11-byte minimum.", good[:10], "truncated")
    vectors["error_unknown_version"] = _error(
        "climate_normal with version 2 in bits 7..5 of byte 0.",
        bytes([(good[0] & 0x1F) | (2 << 5)]) + good[1:], "unknown version 2")
    vectors["error_reserved_flags"] = _error(
        "climate_normal with reserved flag bit 0 of byte 0 set.",
        bytes([good[0] | 0x01]) + good[1:], "reserved flags set")
    return {f"{name}.json": json.dumps(v, indent=2, ensure_ascii=True) + "\n"
            for name, v in vectors.items()}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    differ = []
    for name, text in build().items():
        path = HERE / name
        if check:
            if not path.exists() or path.read_text() != text:
                differ.append(name)
        else:
            path.write_text(text)
    for name in differ:
        print(f"{name}: differs from what make_vectors.py generates", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
