"""Rain on a climate node, end to end on the real firmware: a heavy-rain cell brings an
alarm uplink at once (not at the next slot), one per cell, with the threshold taken
from the node's configuration; showers wake the node without extra uplinks."""
from __future__ import annotations

import pytest

from simulators.scenario import Simulation

SEED = 5            # Weather(5): a heavy cell a little after 4 h
HOURS = 5.0
WINDOW = 300


def first_heavy_window_end(sim, hours, level=15.0):
    """End (s since the run's start) of the first 5-minute window, sliding by the
    minute, whose true intensity reaches `level` mm/h."""
    w, epoch = sim.environment, sim.clock.epoch_s
    for k in range(int(hours * 60)):
        end = epoch + k * 60 + WINDOW
        if w.rain_mm(end - WINDOW, end) * 3600 / WINDOW >= level:
            return end - epoch
    return None


def run(tmp_path, **config):
    sim = Simulation(kind="climate", hours=HOURS, seed=SEED, out_dir=tmp_path, interval_s=900)
    if config:
        base = sim.rig.config
        sim.rig.config = lambda: {**base(), **config}
    return sim, list(sim.run())


@pytest.fixture(scope="module")
def heavy(tmp_path_factory):
    return run(tmp_path_factory.mktemp("heavy"))


def test_a_heavy_cell_sends_an_alarm_within_five_minutes_not_at_the_slot(heavy):
    sim, uplinks = heavy
    assert not sim.stats.decode_errors
    t_heavy = first_heavy_window_end(sim, HOURS)
    assert t_heavy is not None and 3600 < t_heavy < (HOURS - 0.5) * 3600
    alarms = [u for u in uplinks if "heavy_rain" in u.decoded["flags"]]
    assert len(alarms) == 1, "one cell, one alarm (hysteresis)"
    alarm = alarms[0]
    # The node's windows end on its 5-minute grid and it needs 7 tips (16.8 mm/h) in one:
    # at most one window after the truth's first window crossing, plus the sending.
    assert t_heavy - WINDOW < alarm.t <= t_heavy + WINDOW + 30, (t_heavy, alarm.t)
    slots = [u for u in uplinks if u is not alarm]
    # An extra reading: the slot readings keep their 15-minute grid around it.
    assert [u.decoded["seq"] for u in uplinks] == list(range(len(uplinks)))
    assert all(abs((b.t - a.t) - 900) < 40 for a, b in zip(slots, slots[1:]))
    nearest_slot = min(abs(alarm.t - s.t) for s in slots)
    assert nearest_slot > 60, "the alarm did not wait for a slot"
    assert alarm.decoded["rain_peak"] >= 15 and alarm.decoded["rain"] > 0


def test_the_alarm_reading_follows_the_truth(heavy):
    sim, uplinks = heavy
    for u in uplinks:
        d, t = u.decoded, u.truth
        assert abs(d["rain"] - t["rain"]) <= 1.0, (u.t, d, t)
        assert abs(d["rain_peak"] - t["rain_peak"]) <= 6.0, (u.t, d, t)
        assert abs(d["pressure"] - t["pressure"]) <= 1.1


def test_rain_watch_wakes_between_slots_without_uplinks(heavy):
    sim, uplinks = heavy
    assert sim.stats.wakes > len(uplinks) + 3
    console = (sim.node.workdir / "console.log").read_text()
    assert "rain watch:" in console


def test_the_alarm_level_is_the_nodes_configuration(tmp_path):
    sim, uplinks = run(tmp_path, rain_alarm_mm_h=80)
    assert not any("heavy_rain" in u.decoded["flags"] for u in uplinks)
    assert max(u.decoded["rain_peak"] for u in uplinks) >= 15   # it did rain hard


TYPICAL = r"""
import json, kinds
from payload import envelope
kind = kinds.load("climate")
# 21.37 °C, 55.0 %RH, 1008.4 hPa, no rain, 3.01 V; seq and counter take 2 bytes
body = kind.encode(300, (2137, 110, 10084, 0, 0, 3010), 0)
frame = envelope.seal(bytes(range(16)), bytes.fromhex("0011223344556677"), 300, body)
print(json.dumps({"frame": frame.hex(), "body": body.hex()}))
"""


def test_a_typical_climate_uplink_is_30_bytes_and_decodes():
    import json

    from host_tools import envelope, schemas
    from simulators.interpreter import run_script
    r = run_script(TYPICAL)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    frame = bytes.fromhex(out["frame"])
    assert len(frame) == 30
    _, body = envelope.unseal(bytes(range(16)), bytes.fromhex("0011223344556677"), frame)
    assert schemas.decode_body(body) == {
        "schema": 2, "kind": "climate", "seq": 300, "temperature": 21.37, "humidity": 55.0,
        "pressure": 1008.4, "rain": 0.0, "rain_peak": 0.0, "battery": 3.01, "faults": [],
        "flags": []}


def test_one_storm_one_alarm_a_later_storm_alarms_again(tmp_path):
    from simulators.environment.weather import RAIN_BLOCK_S
    sim = Simulation(kind="climate", hours=5, seed=48, out_dir=tmp_path, interval_s=900)  # dry seed
    w, t0 = sim.environment, sim.clock.epoch_s
    # (start, rise s, fall s, peak mm/h): two bursts 30 min apart (one storm), and a
    # storm 2 h later, after the alarm has re-armed (30 min below 7.5 mm/h)
    cells = [(t0 + 3600, 300, 900, 40.0), (t0 + 5400, 300, 900, 40.0), (t0 + 4 * 3600, 300, 900, 40.0)]
    w._cells = lambda block: [c for c in cells if int(c[0] // RAIN_BLOCK_S) == block]
    w._rate_cache.clear()
    uplinks = list(sim.run())
    alarms = [u.t for u in uplinks if "heavy_rain" in u.decoded["flags"]]
    assert len(alarms) == 2, alarms
    assert 3600 < alarms[0] < 3600 + 900 and 4 * 3600 < alarms[1] < 4 * 3600 + 900


def test_the_alarm_goes_as_a_confirmed_uplink_and_the_slot_readings_do_not(heavy):
    """Climate's CONFIRM mask: a heavy-rain reading asks for an ACK (while the day's
    downlinks allow), so a lost alarm is sent again; the slot readings go unconfirmed
    except the periodic check of every `confirm_after` readings."""
    sim, uplinks = heavy
    on_air = {u.fcnt: u for u in sim.network.uplinks}
    alarm = next(u for u in uplinks if "heavy_rain" in u.decoded["flags"])
    assert on_air[alarm.fcnt].confirmed
    slots = [u for u in uplinks if u is not alarm]
    assert sum(on_air[u.fcnt].confirmed for u in slots) <= len(slots) // 16 + 1
