"""A simulated day of a climate node, end to end through `nodectl simulate --json`:
the real firmware on MicroPython, sealed, sent through the RAK3172 model, decoded."""
from __future__ import annotations

import csv
import stat

from host_tools import envelope
from simulators.sensors.sht4x import ACCURACY_RH, ACCURACY_T

# The SHT40's typical accuracy, plus half a step of the sensor's 16-bit word and of
# the wire's resolution (schema 2: 0.01 °C, 0.5 %RH).
TOL_T = ACCURACY_T + 175 / 65535 / 2 + 0.005
TOL_RH = ACCURACY_RH + 125 / 65535 / 2 + 0.25


def keys_of(out):
    with open(out / "inventory.csv") as f:
        return list(csv.DictReader(f))


def test_a_day_without_heavy_rain_at_the_default_interval_is_96_decoded_uplinks(climate_day):
    uplinks, _, _ = climate_day
    assert all("heavy_rain" not in u["decoded"]["flags"] for u in uplinks)
    assert sum(u["decoded"]["rain"] for u in uplinks) >= 2, "the day has showers"
    assert len(uplinks) == 96
    assert all("error" not in u["decoded"] for u in uplinks)
    assert [u["decoded"]["seq"] for u in uplinks] == list(range(96))
    spacing = [b["t"] - a["t"] for a, b in zip(uplinks, uplinks[1:])]
    assert all(860 <= s <= 940 for s in spacing), spacing


def test_json_lines_carry_what_a_ci_user_needs(climate_day):
    uplinks, _, _ = climate_day
    for u in uplinks:
        assert {"node", "kind", "dev_eui", "counter", "frame", "decoded", "truth", "t"} <= set(u)
        assert u["kind"] == "climate" and len(u["dev_eui"]) == 16
        assert set(u["truth"]) == {"temperature", "humidity", "pressure", "rain", "rain_peak",
                                   "battery"}


def test_decoded_values_follow_the_truth_within_sht4x_accuracy(climate_day):
    uplinks, _, _ = climate_day
    for u in uplinks:
        d, t = u["decoded"], u["truth"]
        assert d["faults"] == []
        assert abs(d["temperature"] - t["temperature"]) <= TOL_T, u
        assert abs(d["humidity"] - t["humidity"]) <= TOL_RH, u
        assert abs(d["battery"] - t["battery"]) <= 0.01, u
    temps = [u["truth"]["temperature"] for u in uplinks]
    assert max(temps) - min(temps) > 4, "the day should have a daily cycle"


def test_frames_open_on_the_host_with_the_inventory_key(climate_day):
    uplinks, _, out = climate_day
    (row,) = keys_of(out)
    key, dev_eui = bytes.fromhex(row["payload_key"]), bytes.fromhex(row["dev_eui"])
    counters = []
    for u in uplinks:
        counter, _ = envelope.unseal(key, dev_eui, bytes.fromhex(u["frame"]))
        assert counter == u["counter"]
        counters.append(counter)
    assert counters == sorted(set(counters)), "counters must strictly increase"


def test_no_key_is_printed_and_the_inventory_is_owner_only(climate_day):
    uplinks, r, out = climate_day
    (row,) = keys_of(out)
    printed = (r.stdout + r.stderr).upper()
    for secret in (row["payload_key"], row["app_key"]):
        assert len(secret) == 32 and secret.upper() not in printed
    console = (out / "node-1" / "console.log").read_text().upper()
    assert row["payload_key"].upper() not in console and row["app_key"].upper() not in console
    assert stat.S_IMODE((out / "inventory.csv").stat().st_mode) == 0o600
    assert str(out / "inventory.csv") in r.stderr


def test_the_table_runs_from_any_folder_with_a_relative_out(tmp_path):
    from conftest import nodectl
    r = nodectl("simulate", "--hours", 1, "--out", "run", cwd=tmp_path)
    assert "4 uplinks decoded from 4 wakes" in r.stdout
    assert (tmp_path / "run" / "inventory.csv").exists()
