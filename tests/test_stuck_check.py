"""node/stuck.py on MicroPython: a part whose raw bytes repeat from one wake to the next
reads as stuck; the raw bytes of every part live in one file, written once a wake."""
from __future__ import annotations

import json
import os

from simulators.interpreter import FIRMWARE, run_script

WAKES = r"""
import os, json
os.chdir(%r)
import sys
out = []
for wake in %r:
    for m in [m for m in sys.modules if m.startswith("node")]:
        del sys.modules[m]            # a deep sleep: nothing survives but the flash
    from node import stuck
    out.append({part: stuck.repeats(part, bytes.fromhex(raw)) for part, raw in wake})
    stuck.save()
print(json.dumps(out))
"""


def wakes(tmp_path, plan):
    r = run_script(WAKES % (str(tmp_path), plan), path=[FIRMWARE])
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_part_repeating_its_raw_bytes_reads_as_stuck_and_one_that_varies_does_not(tmp_path):
    got = wakes(tmp_path, [[("sht4x", "0102"), ("bme280", "aa")],
                           [("sht4x", "0102"), ("bme280", "ab")],
                           [("sht4x", "0103"), ("bme280", "ab")]])
    assert got == [{"sht4x": False, "bme280": False},
                   {"sht4x": True, "bme280": False},
                   {"sht4x": False, "bme280": True}]
    assert os.listdir(tmp_path / "state") == ["raw"]      # one file for every part


def test_a_part_not_read_in_a_wake_keeps_its_last_raw_bytes(tmp_path):
    got = wakes(tmp_path, [[("smt100_1", "31"), ("smt100_2", "32")],
                           [("smt100_1", "33")],                      # depth 2 not read
                           [("smt100_2", "32")]])
    assert got[2] == {"smt100_2": True}


def test_a_file_cut_short_never_makes_a_part_look_stuck(tmp_path):
    wakes(tmp_path, [[("sonde", "00" * 40), ("battery", "0c1c")]])
    data = (tmp_path / "state" / "raw").read_bytes()
    for cut in range(len(data)):
        (tmp_path / "state" / "raw").write_bytes(data[:cut])
        got = wakes(tmp_path, [[("sonde", "00" * 40), ("battery", "0c1c")]])[0]
        whole = data[:cut]
        # a part is stuck only if its whole record survived the cut
        assert got["sonde"] == (len(whole) >= 1 + 5 + 2 + 40), cut
        (tmp_path / "state" / "raw").write_bytes(data)


def test_the_per_part_files_of_older_firmware_go_at_the_first_save(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "raw_sht4x").write_bytes(b"\x01\x02")
    assert wakes(tmp_path, [[("sht4x", "0102")]]) == [{"sht4x": False}]
    assert os.listdir(tmp_path / "state") == ["raw"]
