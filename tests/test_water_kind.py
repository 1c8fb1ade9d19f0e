"""The water kind end to end on the real MicroPython firmware through the simulator: the
exact uplink body for a known reading, a sonde with another word order read through its
own register map (and the wrong map caught), an unplugged sensor and the driver's range
check leaving the rest of the reading intact."""
import json

from host_tools import schemas
from simulators.interpreter import run_script
from simulators.scenario import Simulation
from simulators.sensors.sonde import DEFAULT_MAP

KNOWN = {"pressure_rel": 196.1, "pressure_abs": 1209.4, "temperature": 18.25,
         "conductivity": 452, "ph": 7.93, "orp": -12.5, "oxygen": 9.61, "chloride": 38.4,
         "nitrate": 2.21, "ammonium": 0.15, "bromide": None, "battery": 3.101}


def test_known_reading_gives_the_exact_body_and_decodes_back():
    wire = [None if v is None else round(v * c.divisor)
            for c, v in zip(schemas.schema_for_kind("water").channels, KNOWN.values())]
    r = run_script("import kinds.water as w\n"
                   f"print(w.encode(21, {tuple(wire)!r}, 1).hex())")
    assert r.returncode == 0, r.stderr
    body = bytes.fromhex(r.stdout.strip())
    assert body.hex() == ("8404" "15" "01" "5818"
                          "07a9" "2f3e" "0721" "01c4" "0319" "ff83" "03c1" "0180" "00dd"
                          "000f" "ffff" "0c1d")
    assert body == schemas.encode_reading("water", KNOWN, faults=["sonde"], seq=21)
    decoded = schemas.decode_body(body)
    assert decoded["faults"] == ["sonde"] and decoded["bromide"] is None
    assert {k: decoded[k] for k in KNOWN} == KNOWN


def run(tmp_path, hours=1.0, setup=None):
    sim = Simulation(kind="water", hours=hours, seed=2, out_dir=tmp_path, interval_s=900)
    if setup:
        setup(sim)
    ups = list(sim.run())
    assert not sim.stats.decode_errors
    console = (tmp_path / "node-1" / "console.log").read_text()
    return ups, console


def _map(order, **ranges):
    params = []
    for name, address, pid, _uid, _unit, (lo, hi) in DEFAULT_MAP["params"]:
        lo, hi = ranges.get(name, (lo, hi))
        params.append([name, address, pid, lo, hi])
    return {"order": order, "function": 3, "block": 8, "params": params}


def test_word_swapped_sonde_reads_right_through_its_map(tmp_path):
    def setup(sim):
        sim.rig.parts["sonde"].order = "CDAB"
        sim.rig.sonde_config = {"sonde_map": _map("CDAB")}
    ups, _ = run(tmp_path, setup=setup)
    assert len(ups) == 4
    for u in ups:
        assert u.decoded["faults"] == []
        assert abs(u.decoded["ph"] - u.truth["ph"]) <= 0.105
        assert abs(u.decoded["temperature"] - u.truth["temperature"]) <= 0.105


def test_wrong_word_order_is_caught_not_reported(tmp_path):
    def setup(sim):
        sim.rig.parts["sonde"].order = "CDAB"      # but the node keeps the ABCD default
    ups, console = run(tmp_path, hours=0.5, setup=setup)
    for u in ups:
        assert u.decoded["faults"] == ["sonde"]
        assert all(u.decoded[k] is None for k in KNOWN if k != "battery"), u.decoded
    assert "fault sonde: ph" in console


def test_unplugged_sensor_nulls_its_channel_only(tmp_path):
    def setup(sim):
        sim.rig.parts["sonde"].missing.add("nitrate")
    ups, console = run(tmp_path, hours=0.5, setup=setup)
    for u in ups:
        assert u.decoded["faults"] == ["sonde"]
        assert u.decoded["nitrate"] is None
        assert abs(u.decoded["ph"] - u.truth["ph"]) <= 0.105
        assert u.decoded["battery"] is not None
    assert "fault sonde: nitrate data quality 7" in console


def test_value_outside_the_maps_range_is_dropped(tmp_path):
    def setup(sim):
        sim.rig.sonde_config = {"sonde_map": _map("ABCD", ph=(0.0, 7.0))}
    ups, console = run(tmp_path, hours=0.5, setup=setup)
    assert all(u.truth["ph"] > 7.1 for u in ups)
    for u in ups:
        assert u.decoded["ph"] is None and u.decoded["faults"] == ["sonde"]
        assert u.decoded["oxygen"] is not None
    assert "out of 0.0..7.0" in console
