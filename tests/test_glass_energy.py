"""Glass node on a poor harvest: the interval stretches as the store runs low, every
uplink still reports the storage voltage and energy state, and the store never
browns out."""
from __future__ import annotations

import cbor2

from host_tools import schemas
from simulators.kinds import glass as glass_rig
from simulators.scenario import Simulation
from conftest import encode_on_micropython


def test_a_dark_week_stretches_the_interval_without_browning_out(tmp_path, monkeypatch):
    # Snow on the cell: 2 % of the sun for a week; the store starts at 3.45 V.
    monkeypatch.setattr(glass_rig.Rig, "HARVESTER", {"v_start": 3.45, "dark": (0, 1e9),
                                                     "dark_factor": 0.02})
    monkeypatch.setattr(glass_rig.Rig, "CONTAINER", {"bottles_per_day": 60})
    sim = Simulation(kind="glass", hours=7 * 24, seed=5, out_dir=tmp_path)
    uplinks = list(sim.run())
    assert not sim.stats.decode_errors
    states = [u.decoded["energy"] for u in uplinks]
    assert all(u.decoded["storage"] is not None for u in uplinks)
    assert states[0] == 0 and 1 in states, states
    gaps = [(b.t - a.t) / 3600 for a, b in zip(uplinks, uplinks[1:])]
    first_low = states.index(1)
    # the slot after the node judged its store low comes 4 intervals later
    assert any(3.9 < g < 4.1 for g in gaps[first_low:]), gaps
    assert all(g < 1.1 for g in gaps[:first_low - 1]), gaps
    store = sim.rig.store
    assert not store.browned_out and store.min_v > store.v_min
    print(f"energy states {states}; gaps h {[round(g, 1) for g in gaps]}; "
          f"min store {store.min_v:.2f} V; harvested {store.harvested_j:.0f} J, "
          f"used {store.consumed_j:.0f} J")


def test_a_nearly_empty_store_goes_critical_twelve_hour_slots_no_impact_wakes(tmp_path, monkeypatch):
    # 1 % of the sun: the sleep current alone (~12 J a day) outruns the harvest.
    monkeypatch.setattr(glass_rig.Rig, "HARVESTER", {"v_start": 2.75, "dark": (0, 1e9),
                                                     "dark_factor": 0.01})
    monkeypatch.setattr(glass_rig.Rig, "CONTAINER", {"bottles_per_day": 60})
    sim = Simulation(kind="glass", hours=48, seed=6, out_dir=tmp_path)
    wakes = []
    uplinks = list(sim.run(on_wake=lambda w: wakes.append(w)))
    states = [u.decoded["energy"] for u in uplinks]
    assert states[0] == 1 and states[-1] == 2, states
    gaps = [(b.t - a.t) / 3600 for a, b in zip(uplinks, uplinks[1:])]
    assert any(11.9 < g < 12.1 for g in gaps), gaps
    critical_from = uplinks[states.index(2)].t * 1e6
    assert all(w.readings for w in wakes if w.start_us > critical_from + 1e6), \
        "a critical node woke for an impact"
    store = sim.rig.store
    assert not store.browned_out and store.min_v > store.v_min
    print(f"energy states {states}; gaps h {[round(g, 1) for g in gaps]}; min store {store.min_v:.2f} V")


def test_the_storage_voltage_goes_in_20_mv_steps_one_cbor_byte_over_the_stores_range():
    # fill 8 %, 8 bottles, no emptying, tilt 2°, storage 4.98 V (249 steps), energy ok
    body = encode_on_micropython("glass", 12, (8, 8, 0, 2, 249, 0), 0)
    assert body.hex() == "89" "08" "0c" "00" "08" "08" "00" "02" "18f9" "00"
    reading = schemas.decode_body(body)
    assert reading["schema"] == 8 and reading["storage"] == 4.98


def test_schema_5_bodies_of_older_firmware_still_decode():
    body = cbor2.dumps([5, 12, 0, 8, 8, 0, 2, 498, 0])        # storage in 10 mV
    reading = schemas.decode_body(body)
    assert reading["schema"] == 5 and reading["storage"] == 4.98 and reading["fill"] == 8
