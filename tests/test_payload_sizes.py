"""The worst-case sealed uplink of every kind fits EU868 DR0 (51 bytes of application
payload): built by the firmware's own encoder on MicroPython, not by arithmetic."""
from __future__ import annotations

import json

import pytest

from host_tools import envelope, schemas
from simulators import kinds as sim_kinds
from simulators.interpreter import run_script

DR0_MAX = 51
KEY = bytes(range(16))
DEV_EUI = bytes.fromhex("0011223344556677")

WORST = r"""
import json, kinds
from payload import envelope
kind = kinds.load(%r)
values, faults = kind.worst_case()
body = kind.encode(0xFFFFFFFF, values, faults)
frame = envelope.seal(bytes(range(16)), bytes.fromhex("0011223344556677"), 0xFFFFFFFF, body)
print(json.dumps({"frame": frame.hex(), "body": body.hex()}))
"""


@pytest.mark.parametrize("kind", sim_kinds.available())
def test_worst_case_sealed_uplink_fits_dr0(kind):
    r = run_script(WORST % kind)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    frame = bytes.fromhex(out["frame"])
    assert len(frame) <= DR0_MAX, f"{kind}: worst case is {len(frame)} bytes"
    counter, body = envelope.unseal(KEY, DEV_EUI, frame)
    reading = schemas.decode_body(body)
    assert counter == 0xFFFFFFFF and reading["seq"] == 0xFFFFFFFF and reading["kind"] == kind
