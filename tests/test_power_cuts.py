"""Power cuts at random instants, inside flash writes too: a counter is never sent twice
and the node keeps working (design.md: reserve ahead, persist before use)."""
from __future__ import annotations

import random

import pytest

from simulators.scenario import Simulation


# pico: no memory survives deep sleep, the counter limit is written every wake.
# esp32: the next value lives in RTC memory, the flash limit is reserved 16 ahead.
@pytest.mark.parametrize("board, cuts", [("pico-rak3172", 200), ("esp32-rak3172", 120)])
def test_counter_never_repeats_across_power_cuts(tmp_path, board, cuts):
    rng = random.Random(2026)
    plan_until = cuts * 13 // 10
    cut_wakes = set(rng.sample(range(1, plan_until + 1), cuts))

    def power_cuts(wake):
        if wake not in cut_wakes:
            return None
        if rng.random() < 0.5:
            return ("flash_op", rng.randrange(0, 3))       # a torn program or erase
        return ("at", rng.randrange(0, 6_000_000))           # any instant of the wake, or after

    # Seed 48: a dry spell (no tip in 44 h), so every wake is a reading slot; rain would
    # add rain-watch wakes that send nothing (docs/kinds/climate.md).
    sim = Simulation(kind="climate", board=board, hours=plan_until / 6.5, seed=48, out_dir=tmp_path)
    wakes = []
    uplinks = list(sim.run(power_cuts=power_cuts, on_wake=wakes.append))
    assert sim.stats.power_cuts == cuts, sim.stats
    assert sim.stats.wakes > plan_until + 20, "the run must go on well after the last cut"

    counters = [u.counter for u in uplinks]
    assert all(u.decoded.get("error") is None for u in uplinks), sim.stats.decode_errors
    # Frames reach the network in the order the node sent them: strictly increasing
    # counters mean no value was ever used for two transmissions.
    assert counters == sorted(counters) and len(set(counters)) == len(counters)
    # Every frame the modem put on air (the network saw them all) had its own counter.
    on_air = [sim.decode(up.payload)[0] for up in sim.network.uplinks if up.payload]
    assert len(on_air) == len(set(on_air))

    # The node kept working: every wake after the last cut took a reading, and every one
    # of those readings reached the network (a frame may carry several, so count readings,
    # not frames), the newest last.
    last_cut_wake = max(cut_wakes)
    late = [w for w in wakes if w.index > last_cut_wake]
    assert len(late) == sim.stats.wakes - last_cut_wake
    assert all(w.ended == "deepsleep" and w.readings for w in late)
    delivered = {r["seq"] for u in uplinks for r in u.readings if "seq" in r}
    assert {seq for w in late for seq in w.readings} <= delivered
    seqs = [u.decoded["seq"] for u in uplinks]
    assert seqs[-1] == max(seqs)
