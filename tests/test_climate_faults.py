"""A failed sensor is flagged and the rest of the reading still goes out; the node
recovers when the part does (design.md, "measure")."""
from __future__ import annotations

from simulators.scenario import Simulation


def test_absent_or_garbled_sht4x_is_flagged_and_the_node_recovers(tmp_path):
    sim = Simulation(kind="climate", hours=2, seed=3, out_dir=tmp_path)
    sht = sim.node.parts["sht4x"]

    consoles = {}

    def fault_for(wake):
        consoles[wake.index] = wake.console
        # wakes 1-2 fine, 3-4 absent, 5-6 CRC garbled, then fine again
        n = wake.index + 1   # set up the part for the next wake
        sht.present = n not in (3, 4)
        sht.corrupt_crc = n in (5, 6)

    uplinks = {u.decoded["seq"]: u for u in sim.run(on_wake=fault_for)}
    assert len(uplinks) == 8
    for seq, u in uplinks.items():
        d = u.decoded
        assert d["battery"] is not None and abs(d["battery"] - u.truth["battery"]) < 0.01
        if seq in (2, 3, 4, 5):
            assert d["faults"] == ["sht4x"] and d["temperature"] is None and d["humidity"] is None
        else:
            assert d["faults"] == [] and abs(d["temperature"] - u.truth["temperature"]) < 0.25
    assert "fault sht4x: no answer at 0x44" in consoles[3]
    assert "fault sht4x: CRC mismatch" in consoles[5]
    assert "fault" not in consoles[8]   # healthy again
