"""Bytes on air per kind: the sealed uplink (the firmware's own encoder and envelope, on
MicroPython), beside Cayenne LPP and a Decentlab-style encoding of the same reading.

- worst case: the kind's `worst_case()` reading, seq and counter 0xFFFFFFFF (as
  tests/test_payload_sizes.py);
- typical: every reading of a simulated day re-encoded by the firmware with seq and
  counter 35040, one year of 15-minute readings (a fresh node's first day has 1-byte
  counters and seq, which flatters it); the median length. The first day as simulated
  is reported too.
"""
from __future__ import annotations

import json
import statistics

from bench import encodings
from host_tools import schemas
from simulators.interpreter import run_script

YEAR_SEQ = 35040          # 365 days x 96 readings a day
KEY_HEX = bytes(range(16)).hex()
DEV_EUI_HEX = "0011223344556677"

ENCODE = r"""
import json, sys, kinds
from payload import envelope
kind = kinds.load(%(kind)r)
key = bytes.fromhex(%(key)r)
eui = bytes.fromhex(%(eui)r)
out = []
for seq, counter, values, faults in json.loads(%(jobs)r):
    body = kind.encode(seq, tuple(values), faults)
    out.append([len(body), len(envelope.seal(key, eui, counter, body))])
print(json.dumps(out))
"""

WORST = r"""
import json, kinds
from payload import envelope
kind = kinds.load(%(kind)r)
values, faults = kind.worst_case()
body = kind.encode(0xFFFFFFFF, values, faults)
frame = envelope.seal(bytes.fromhex(%(key)r), bytes.fromhex(%(eui)r), 0xFFFFFFFF, body)
print(json.dumps([len(body), len(frame), list(values), faults]))
"""


def _firmware(code: str) -> object:
    r = run_script(code, timeout=120)
    if r.returncode != 0:
        raise RuntimeError(f"the firmware's encoder failed on MicroPython: {r.stdout}{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def wire_values(kind: str, decoded: dict) -> tuple[list, int]:
    """The firmware's wire integers of a decoded reading (schema order) and its status."""
    schema = schemas.schema_for_kind(kind)
    values = []
    for ch in schema.channels:
        v = decoded.get(ch.name)
        values.append(None if v is None else round(v * ch.divisor))
    status = 0
    for name in decoded.get("faults", []):
        status |= 1 << schema.faults.index(name)
    bits = list(schema.faults) + list(getattr(schema, "flags", ()) or ())
    for name in decoded.get("flags", []):
        if name in bits:
            status |= 1 << bits.index(name)
    return values, status


def worst_case(kind: str) -> dict:
    body, frame, _values, _faults = _firmware(WORST % {"kind": kind, "key": KEY_HEX, "eui": DEV_EUI_HEX})
    # LPP and Decentlab-style items are fixed-size: every quantity present is their longest.
    return {"body": body, "sealed": frame, "lpp": encodings.lpp_size(kind),
            "decentlab": encodings.decentlab_size(kind)}


def typical(kind: str, uplinks: list) -> dict:
    """Median sizes over the readings of a simulated run (uplinks: scenario.Uplink)."""
    readings = [u.decoded for u in uplinks if "error" not in u.decoded]
    if not readings:
        return {"error": "no decoded uplinks"}
    jobs = []
    for d in readings:
        values, status = wire_values(kind, d)
        jobs.append([YEAR_SEQ, YEAR_SEQ, values, status])
    sizes = _firmware(ENCODE % {"kind": kind, "key": KEY_HEX, "eui": DEV_EUI_HEX, "jobs": json.dumps(jobs)})
    lpp = [len(encodings.lpp_reading(kind, d)) for d in readings]
    dl = [len(encodings.decentlab_reading(kind, d)) for d in readings]
    first_day = [len(bytes.fromhex(u.frame)) for u in uplinks]
    body = statistics.median(b for b, _ in sizes)
    return {
        "readings": len(readings),
        "body": body,
        "sealed": statistics.median(f for _, f in sizes),
        "sealed_max": max(f for _, f in sizes),
        "sealed_first_day": statistics.median(first_day),
        "lpp": statistics.median(lpp),
        "decentlab": statistics.median(dl),
        "body_vs_decentlab": round(body / statistics.median(dl), 3),
        "example": {"decoded": readings[len(readings) // 2],
                    "lpp_hex": encodings.lpp_reading(kind, readings[len(readings) // 2]).hex(),
                    "decentlab_hex": encodings.decentlab_reading(kind, readings[len(readings) // 2]).hex()},
    }
