"""The soil kind end to end: exact body bytes, "not fitted" vs "failed", the Modbus
board variant, and the soil environment the probes sit in."""
from __future__ import annotations

import json
import shutil

import cbor2
import pytest

from host_tools import boards, schemas
from simulators.environment.soil import Soil
from simulators.scenario import FaultWindow, Simulation
from conftest import encode_on_micropython

def test_body_bytes_for_a_known_reading_and_their_decoding():
    # depth 1: 25.3 %, 18.34 °C; depth 2 failed; depth 3 not fitted; battery 3.100 V
    body = encode_on_micropython("soil", 7, (253, 1834, None, None, None, None, 3100), 0b0010)
    # schema 7 (soil v2): the channels packed as big-endian 16-bit integers, null being
    # 0xFFFF (uint16: water content, battery) or 0x8000 (int16: temperature)
    assert body.hex() == "84" "07" "07" "02" "4e" "00fd" "072a" "ffff8000" "ffff8000" "0c1c"
    reading = schemas.decode_body(body)
    assert reading["schema"] == 7 and reading["seq"] == 7
    assert reading["vwc_1"] == 25.3 and reading["temperature_1"] == 18.34
    assert reading["battery"] == 3.1
    assert reading["faults"] == ["smt100_2"]            # failed: null and flagged
    assert reading["vwc_2"] is None and reading["temperature_2"] is None
    assert reading["vwc_3"] is None and "smt100_3" not in reading["faults"]   # not fitted


def test_a_typical_body_is_six_bytes_shorter_than_schema_3s():
    # A node a year in service (seq 35040), three probes, a healthy battery.
    values = (301, 1834, 322, 1712, 352, 1650, 3100)
    body = encode_on_micropython("soil", 35040, values, 0)
    old = cbor2.dumps([3, 35040, 0, *values])           # what firmware before v2 sent
    assert (len(body), len(old)) == (21, 27)
    assert {k: v for k, v in schemas.decode_body(body).items() if k != "schema"} == \
        {k: v for k, v in schemas.decode_body(old).items() if k != "schema"}


def test_schema_3_bodies_of_older_firmware_still_decode():
    body = bytes.fromhex("8a" "03" "07" "02" "18fd" "19072a" "f6f6" "f6f6" "190c1c")
    reading = schemas.decode_body(body)
    assert reading["schema"] == 3 and reading["vwc_1"] == 25.3
    assert reading["faults"] == ["smt100_2"] and reading["battery"] == 3.1


def test_a_value_that_does_not_fit_its_field_goes_as_a_flagged_null():
    # -400 °C and 70 V cannot be: not wrapped round, not mistaken for "not fitted"
    body = encode_on_micropython("soil", 1, (253, -40000, 301, 1712, 352, 1650, 70000), 0)
    reading = schemas.decode_body(body)
    assert reading["temperature_1"] is None and reading["battery"] is None
    assert reading["faults"] == ["smt100_1", "battery"]


def test_negative_soil_temperature_round_trips():
    body = encode_on_micropython("soil", 1, (5, -412, 6, -150, 7, -3, 2950), 0)
    reading = schemas.decode_body(body)
    assert (reading["temperature_1"], reading["temperature_2"], reading["temperature_3"]) == (-4.12, -1.5, -0.03)


@pytest.fixture
def two_probe_board(tmp_path, monkeypatch):
    """A soil board with no probe at the third depth."""
    folder = tmp_path / "boards"
    shutil.copytree(boards.BOARDS_DIR, folder)
    board = json.loads((folder / "pico-rak3172-soil.json").read_text())
    del board["parts"]["smt100_3"]
    board["name"] = "soil-two"
    (folder / "soil-two.json").write_text(json.dumps(board))
    monkeypatch.setattr(boards, "BOARDS_DIR", folder)
    return "soil-two"


def test_a_depth_without_a_probe_is_null_but_not_a_fault(tmp_path, two_probe_board):
    sim = Simulation(kind="soil", board=two_probe_board, hours=0.5, seed=2, out_dir=tmp_path / "run")
    uplinks = list(sim.run())
    assert len(uplinks) == 2
    for u in uplinks:
        d = u.decoded
        assert d["faults"] == []
        assert d["vwc_3"] is None and d["temperature_3"] is None
        assert d["vwc_1"] is not None and d["vwc_2"] is not None


@pytest.mark.parametrize("mode", ["absent", "nack", "crc", "timeout", "stuck", "range"])
def test_modbus_board_reads_the_probes_within_their_accuracy_and_flags_a_fault(tmp_path, mode):
    sim = Simulation(kind="soil", board="pico-rak3172-soil-modbus", hours=1.5, seed=3,
                     out_dir=tmp_path, faults=[FaultWindow("smt100_3", mode, 0.5, 1.0)])
    uplinks = list(sim.run())
    assert [u.decoded["seq"] for u in uplinks] == list(range(6))
    schema = schemas.schema_for_kind("soil")
    for u in uplinks:
        slot_h = u.decoded["seq"] * 900 / 3600
        assert u.decoded["faults"] == (["smt100_3"] if 0.5 <= slot_h < 1.0 else [])
        for ch in schema.channels:
            got, true = u.decoded[ch.name], u.truth.get(ch.name)
            if got is not None:
                assert abs(got - true) <= ch.accuracy, (ch.name, got, true)
    bus = sim.rig.buses[1]
    ignored = [e for _, e, _ in bus.log if e.startswith("ignored")]
    assert ignored == []


def test_soil_is_reproducible_and_wets_from_the_top_when_it_rains():
    a, b = Soil(seed=9), Soil(seed=9)
    t = [a.start + h * 3600 for h in range(0, 24 * 10)]
    assert [a.vwc(x, 0) for x in t] == [b.vwc(x, 0) for x in t]
    # the first hour with a good shower (the weather model's rain)
    wet = next(x for x in t if a.weather.rain_mm(x, x + 3600) > 5)
    before = [a.vwc(wet, d) for d in range(3)]
    after = [a.vwc(wet + 3600, d) for d in range(3)]
    assert after[0] - before[0] > 1 and after[0] - before[0] > 3 * abs(after[2] - before[2])


def test_soil_dries_by_day_not_by_night_and_deep_temperature_swings_less():
    soil = Soil(seed=1)
    day = soil.start + 86400 * 5
    checked = 0
    for d0 in range(1, 20):
        midnight = soil.start + 86400 * d0
        # below field capacity nothing drains: only the sun takes water out
        if soil.weather.rain_mm(midnight - 86400, midnight + 86400) > 0 or soil.vwc(midnight, 0) > 29:
            continue
        night = soil.vwc(midnight + 1 * 3600, 0) - soil.vwc(midnight + 4 * 3600, 0)
        afternoon = soil.vwc(midnight + 10 * 3600, 0) - soil.vwc(midnight + 16 * 3600, 0)
        assert afternoon > 0.1 and abs(night) < 1e-9
        checked += 1
    assert checked >= 2
    swing = [max(soil.temperature(day + h * 600, d) for h in range(144))
             - min(soil.temperature(day + h * 600, d) for h in range(144)) for d in range(3)]
    assert swing[0] > swing[1] > swing[2]


def test_config_key_turns_the_sdi12_crc_off(tmp_path, monkeypatch):
    base = Simulation.config
    monkeypatch.setattr(Simulation, "config", lambda self: {**base(self), "soil_sdi12_crc": False})
    sim = Simulation(kind="soil", hours=0.25, seed=2, out_dir=tmp_path)
    (uplink,) = list(sim.run())
    assert uplink.decoded["faults"] == [] and uplink.decoded["vwc_3"] is not None
    assert sim.rig.buses[1].commands == ["0M!", "0D0!", "1M!", "1D0!", "2M!", "2D0!"]
