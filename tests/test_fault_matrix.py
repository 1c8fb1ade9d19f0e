"""Every part of every kind in every fault mode its bus can show: the node never stops
sending, flags the right part while the fault lasts, and recovers when it clears."""
from __future__ import annotations

import tempfile

import pytest

from simulators import kinds as sim_kinds
from simulators.scenario import FaultWindow, Simulation


def _matrix():
    cases = []
    probe_dir = tempfile.mkdtemp(prefix="fault-matrix-")
    for kind in sim_kinds.available():
        probe = Simulation(kind=kind, hours=0, out_dir=probe_dir)
        for part, model in sorted(probe.rig.parts.items()):
            for mode in model.FAULT_MODES:
                cases.append(pytest.param(kind, part, mode, id=f"{kind}-{part}-{mode}"))
    return cases


@pytest.mark.parametrize("kind, part, mode", _matrix())
def test_a_faulty_part_is_flagged_and_the_node_recovers(tmp_path, kind, part, mode):
    start_h, end_h = 0.75, 1.5
    sim = Simulation(kind=kind, hours=2.5, seed=4, out_dir=tmp_path, interval_s=900,
                     faults=[FaultWindow(part, mode, start_h, end_h)])
    uplinks = list(sim.run())
    assert not sim.stats.decode_errors
    assert [u.decoded["seq"] for u in uplinks] == list(range(10)), "a reading went missing"
    for u in uplinks:
        slot_h = u.decoded["seq"] * sim.interval_s / 3600
        if start_h <= slot_h < end_h:
            assert part in u.decoded["faults"], (slot_h, u.decoded)
        elif slot_h >= end_h:
            assert u.decoded["faults"] == [], (slot_h, u.decoded)
    assert uplinks[0].decoded["faults"] == []
