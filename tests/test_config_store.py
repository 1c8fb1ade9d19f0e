"""The configuration survives a power cut in the middle of its own rewrite: the node
falls back to the whole copy, never to garbage (two copies with a CRC)."""
from __future__ import annotations

import json

from host_tools import boards, config_image, firmware_build
from simulators.clock import Clock
from simulators.network import Network
from simulators.node import SimNode

OLD = {"kind": "climate", "interval_s": 900, "site": "old"}
NEW = {"kind": "climate", "interval_s": 600, "site": "new " * 40}

SAVE = b"""
import machine
from node import config_store
config_store.save(%s)
print("saved")
machine.deepsleep(1000)
""" % json.dumps(NEW).encode()

LOAD = b"""
import json, machine
from node import config_store
print("config=" + json.dumps(config_store.load()))
machine.deepsleep(1000)
"""


def node(tmp_path, main):
    n = SimNode("n", boards.load("pico-rak3172"), tmp_path, Clock(), Network(), bytes(8))
    files = firmware_build.build()
    files.update(config_image.files(OLD))
    files["main.py"] = main
    n.install(files)
    return n


def loaded(n):
    n.install({"main.py": LOAD}, keep=True)
    wake = n.wake()
    line = [ln for ln in wake.console.splitlines() if ln.startswith("config=")][-1]
    return json.loads(line[len("config="):])


def test_a_save_lands_and_the_next_boot_reads_it(tmp_path):
    n = node(tmp_path, SAVE)
    assert "saved" in n.wake().console
    assert loaded(n) == NEW


def test_a_power_cut_at_any_flash_operation_of_a_save_leaves_old_or_new(tmp_path):
    outcomes = []
    for op in range(0, 60):   # every operation of the save, until a cut comes too late
        n = node(tmp_path / str(op), SAVE)
        wake = n.wake(cut_at_flash_op=op)
        got = loaded(n)
        assert got in (OLD, NEW), (op, got)
        outcomes.append((wake.ended, got == NEW))
        if wake.ended != "power_cut":
            break
    assert len(outcomes) > 1 and outcomes[0] == ("power_cut", False), outcomes
    assert outcomes[-1] == ("deepsleep", True), f"the save never completed: {outcomes}"
