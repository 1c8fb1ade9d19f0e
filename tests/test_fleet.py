"""Fleets: many nodes sharing one gateway, run fast in warm interpreters.

The fast runner must be faithful: the same readings as a process per wake, nothing of a
wake's RAM left for the next one (while flash and RTC memory stay), and no way for the
firmware to run on after deep sleep. The fleet itself: every node decodes, a collision
at the gateway costs the frames that collided, and the report's plots are images.
"""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest

from host_tools import boards
from host_tools.fleet_report import PLOTS, write_report
from simulators.clock import Clock
from simulators.fleet.plan import NodePlan, plan
from simulators.fleet.run import (FleetNode, FleetSpec, Frame, NodeResult, firmware_split,
                                  gateway_collisions, run_fleet)
from simulators.fleet.warm import WarmInterpreter
from simulators.network import Network
from simulators.node import SimNode
from simulators.scenario import Simulation

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def small_fleet(tmp_path_factory):
    """6 nodes of every kind for 3 hours, close enough to the gateway that the link
    budget loses nothing, and their report."""
    out = tmp_path_factory.mktemp("fleet")
    result = run_fleet(FleetSpec(nodes=6, hours=3, kinds=["climate", "soil", "water", "glass"],
                                 seed=3, out_dir=out, radius_m=400))
    write_report(result, out)
    return result, out


def test_every_node_of_a_small_fleet_decodes_its_uplinks(small_fleet):
    result, _ = small_fleet
    assert {n.plan.kind for n in result.nodes} == {"climate", "soil", "water", "glass"}
    for n in result.nodes:
        assert n.error is None and n.decode_errors == []
        received = result.received(n)
        assert received, f"{n.plan.name} delivered nothing"
        for up in received:
            assert up["decoded"]["seq"] >= 0 and up["dev_eui"] == n.dev_eui
    s = result.summary()
    assert s["uplinks_received"] == sum(len(result.received(n)) for n in result.nodes)
    assert 0 < s["uplinks_received"] <= s["uplinks_sent"]


def test_fleet_readings_follow_the_truth(small_fleet):
    result, _ = small_fleet
    for n in result.nodes:
        for up in result.received(n):
            if n.plan.kind == "climate" and "temperature" in up["truth"]:
                assert abs(up["decoded"]["temperature"] - up["truth"]["temperature"]) < 0.3


def test_fleet_report_has_the_summary_and_plots_that_are_images(small_fleet):
    result, out = small_fleet
    page = (out / "report.html").read_text()
    for png in PLOTS:
        assert f'src="{png}"' in page
        data = (out / png).read_bytes()
        assert data[:8] == PNG_MAGIC
        width, height = struct.unpack(">II", data[16:24])      # the IHDR chunk
        assert width > 200 and height > 200
    summary = json.loads((out / "summary.json").read_text())
    assert summary["nodes"] == 6
    assert f"<td>{summary['uplinks_received']}</td>" in page
    lines = (out / "uplinks.jsonl").read_text().splitlines()
    assert len(lines) == summary["uplinks_received"]
    assert (out / "inventory.csv").stat().st_mode & 0o077 == 0


def test_a_fleet_runs_the_same_on_one_worker_as_on_two(tmp_path):
    runs = []
    for workers in (1, 2):
        r = run_fleet(FleetSpec(nodes=3, hours=1, kinds=["climate", "water"], seed=9,
                                out_dir=tmp_path / str(workers), workers=workers))
        runs.append([(n.dev_eui, [(u["t_us"], u["fcnt"], u["decoded"]) for u in n.uplinks])
                     for n in r.nodes])
    assert runs[0] == runs[1]


def test_nodes_sending_at_once_on_a_channel_collide_at_the_gateway(tmp_path):
    # Three climate nodes switched on at the same instant, side by side: each uplink slot
    # they pick among three channels, so some slots put two on one channel at once.
    plans = [NodePlan(i, f"climate-{i + 1}", "climate", 50 + i, 300.0, 0.0, 900) for i in range(3)]
    result = run_fleet(FleetSpec(nodes=3, hours=2, kinds=["climate"], seed=1, out_dir=tmp_path),
                       plans=plans)
    assert result.collided
    for node_index, frame_index in result.collided:
        node = result.nodes[node_index]
        f = node.frames[frame_index]
        rivals = [g for m in result.nodes if m is not node for g in m.frames
                  if g.channel_hz == f.channel_hz and g.dr == f.dr
                  and g.t_us < f.t_us + f.airtime_us and f.t_us < g.t_us + g.airtime_us]
        assert rivals, "a collided frame overlaps another node's frame on its channel"
        if not f.join:
            assert f.fcnt not in {u["fcnt"] for u in result.received(node)}
    s = result.summary()
    assert s["collisions"] == len(result.collided) and s["uplinks_received"] < s["uplinks_sent"]


def _frame(t_us, rssi, channel=868_100_000):
    return Frame(t_us, 200_000, channel, 3, rssi, False, 1, True, "")


def _node(index, *frames):
    return NodeResult(NodePlan(index, f"n{index}", "climate", index, 100.0, 0.0, 900), "",
                      frames=list(frames))


def test_gateway_loses_both_overlapping_frames_unless_one_is_6_db_stronger():
    even = gateway_collisions([_node(0, _frame(0, -100.0)), _node(1, _frame(50_000, -103.0))])
    assert even == {(0, 0), (1, 0)}
    captured = gateway_collisions([_node(0, _frame(0, -100.0)), _node(1, _frame(50_000, -110.0))])
    assert captured == {(1, 0)}
    apart = gateway_collisions([_node(0, _frame(0, -100.0)),
                                _node(1, _frame(0, -100.0, channel=868_300_000)),
                                _node(2, _frame(300_000, -100.0))])
    assert apart == set()


def test_a_fleet_plan_is_the_same_for_a_seed_and_mixes_the_kinds():
    a, b = plan(8, ["climate", "glass"], seed=4), plan(8, ["climate", "glass"], seed=4)
    assert a == b and a != plan(8, ["climate", "glass"], seed=5)
    assert [p.kind for p in a[:4]] == ["climate", "glass", "climate", "glass"]
    assert all(0 <= p.power_on_s < p.interval_s for p in a)
    assert len({p.seed for p in a}) == 8


# --- the fast runner is faithful -------------------------------------------------------------
@pytest.mark.parametrize("kind,hours", [("climate", 3), ("soil", 3), ("water", 3), ("glass", 8)])
def test_fast_runner_decodes_what_a_process_per_wake_decodes(tmp_path, kind, hours):
    slow = Simulation(kind=kind, hours=hours, seed=11, out_dir=tmp_path / "process", name="n")
    expected = [(u.decoded, u.truth, u.t, u.fcnt, u.dr, u.readings) for u in slow.run()]
    rom, flash_files = firmware_split(tmp_path / "fast")
    # check: every answer the batched wire gives on the node is checked by the simulator
    with WarmInterpreter(tmp_path / "vm", check=True, rom=rom) as vm:
        fast = FleetNode(NodePlan(0, "n", kind, 11, None, 0.0, slow.interval_s), hours,
                         tmp_path / "fast", vm, rom, flash_files)
        got = [(u.decoded, u.truth, u.t, u.fcnt, u.dr, u.readings) for u in fast.run()]
        assert vm.starts == 1 and vm.wakes == fast.stats.wakes
    assert fast.stats.wakes == slow.stats.wakes and fast.stats.ended == slow.stats.ended
    assert len(expected) >= 8 and got == expected


PROBE = b"""
import os
import sys
import machine
import probe_state
probe_state.hits += 1
machine.leaked = getattr(machine, "leaked", 0) + 1
sys.path.append("/leak")
try:
    with open("marks.txt") as f:
        marks = f.read()
except OSError:
    marks = ""
with open("marks.txt", "w") as f:
    f.write(marks + "f")
rtc = machine.RTC()
mem = rtc.memory()
rtc.memory(mem + b"r")
print("probe hits=%d leaked=%d leak_paths=%d flash=%s rtc=%s after=%d" % (
    probe_state.hits, machine.leaked, sys.path.count("/leak"), marks, mem.decode(),
    "after_sleep.txt" in os.listdir("/")))
try:
    machine.deepsleep(60000)
except Exception:
    print("caught the deep sleep")
with open("after_sleep.txt", "w") as f:
    f.write("ran on")
print("ran on after deep sleep")
"""


def _probe_node(tmp_path, vm, name, eui):
    node = SimNode(name, boards.load("esp32-rak3172"), tmp_path / name, Clock(), Network(), eui)
    node.runner, node.batched = vm, True
    vm.build_image(node.flash.path, {"main.py": PROBE, "probe_state.py": b"hits = 0\n"})
    return node


def _probe(wake):
    m = re.search(r"probe hits=(\d+) leaked=(\d+) leak_paths=(\d+) flash=(\w*) rtc=(\w*) "
                  r"after=(\d)", wake.console)
    return tuple(int(x) if x.isdigit() else x for x in m.groups())


def test_fast_runner_keeps_flash_and_rtc_memory_across_wakes_but_no_ram(tmp_path):
    with WarmInterpreter(tmp_path / "vm", heapsize="192K") as vm:
        a = _probe_node(tmp_path, vm, "a", bytes.fromhex("AC1F09FFFE000001"))
        b = _probe_node(tmp_path, vm, "b", bytes.fromhex("AC1F09FFFE000002"))
        seen = []
        for node in (a, b, a, a):       # another node's wake in between changes nothing
            wake = node.wake()
            assert wake.ended == "deepsleep" and wake.sleep_ms == 60000
            node.clock.advance_to(node.clock.now_us + wake.sleep_ms * 1000)
            seen.append(_probe(wake))
        assert vm.starts == 1
    # hits, machine.leaked and sys.path are RAM: fresh every wake; flash and RTC memory stay.
    assert seen == [(1, 1, 1, "", "", 0), (1, 1, 1, "", "", 0), (1, 1, 1, "f", "r", 0),
                    (1, 1, 1, "ff", "rr", 0)]


def test_no_firmware_module_touches_builtins():
    # The fast runner's soft reset cannot undo a `builtins.x = ...` (the unix port has no
    # way to list or clear the overrides; a board's reset drops them): it relies on the
    # firmware never making one.
    firmware = Path(__file__).resolve().parents[1] / "firmware"
    offenders = [str(p.relative_to(firmware)) for p in sorted(firmware.rglob("*.py"))
                 if re.search(r"^\s*(import|from)\s+builtins\b", p.read_text(), re.M)]
    assert offenders == []


def test_nothing_runs_after_deep_sleep_in_the_fast_runner(tmp_path):
    with WarmInterpreter(tmp_path / "vm") as vm:
        node = _probe_node(tmp_path, vm, "a", bytes.fromhex("AC1F09FFFE000003"))
        first = node.wake()
        node.clock.advance_to(node.clock.now_us + 60_000_000)
        second = node.wake()
    for wake in (first, second):
        assert "caught the deep sleep" not in wake.console
        assert "ran on after deep sleep" not in wake.console
    assert _probe(second)[3:] == ("f", "r", 0)   # what came before the sleep is there, nothing after


# --- the command ------------------------------------------------------------------------------
def test_nodectl_fleet_prints_one_json_summary_and_writes_the_report(tmp_path):
    from conftest import nodectl
    r = nodectl("simulate", "--nodes", 2, "--hours", 1, "--kinds", "water", "--json",
                "--out", tmp_path)
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    summary = json.loads(lines[0])
    assert summary["nodes"] == 2 and summary["kinds"] == {"water": 2}
    assert summary["report"] == str(tmp_path / "report.html") and (tmp_path / "report.html").exists()
    assert "fleet: 100 %" in r.stderr


def test_nodectl_fleet_says_which_options_belong_to_one_node(tmp_path):
    from conftest import nodectl
    r = nodectl("simulate", "--nodes", 3, "--fault", "sht4x:crc", "--out", tmp_path, check=False)
    assert r.returncode == 2 and "--fault" in r.stderr and "--kinds" in r.stderr
    r = nodectl("simulate", "--nodes", 3, "--kinds", "climate,rain", "--out", tmp_path, check=False)
    assert r.returncode == 2 and "unknown: rain" in r.stderr
    assert not (tmp_path / "report.html").exists()
