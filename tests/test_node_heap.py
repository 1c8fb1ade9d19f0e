"""The node's heap: a board without PSRAM gives MicroPython about 100-110 KB. The heap
here is 64-bit (objects larger than on the board) and also holds the simulator's own
runtime objects, so a node that runs in 100K here has room on a board (docs/benchmarks.md,
"Heap")."""
from __future__ import annotations

from simulators import romfs
from simulators.scenario import FaultWindow, Simulation


def _failures(wakes):
    return [w for w in wakes if "MemoryError" in w.console or w.ended != "deepsleep"]


def test_a_climate_node_runs_a_day_in_a_100k_heap(tmp_path):
    sim = Simulation(kind="climate", hours=24, seed=7, out_dir=tmp_path)
    sim.node.heapsize = "100K"
    wakes = []
    uplinks = list(sim.run(on_wake=wakes.append))
    assert romfs.is_image(sim.node.rom)          # the firmware imports in place
    failed = _failures(wakes)
    assert not failed, failed[0].console[-2000:]
    readings = sum(len(w.readings) for w in wakes)
    assert readings >= 96 and len(uplinks) >= readings - 1


def test_a_full_ring_after_a_three_day_outage_drains_at_the_default_heap(tmp_path):
    # 76 h without a network fill the ring (288 readings) and the oldest give way: each
    # wake then scans ~60 segment files. The scan once left the heap too fragmented for
    # the list of every seq that giving way built, and the node stopped for good.
    sim = Simulation(kind="climate", hours=80, seed=7, out_dir=tmp_path,
                     faults=[FaultWindow.parse("network:down@1-76")])
    wakes = []
    uplinks = list(sim.run(on_wake=wakes.append))
    failed = _failures(wakes)
    assert not failed, failed[0].console[-2000:]
    after = [u for u in uplinks if u.t > 76 * 3600]
    assert sum(len(u.readings) for u in after) > 40, "the backlog drains once the network is back"
