"""The sonde model (simulators/sensors/sonde.py) on its Modbus bus: In-Situ's 8-register
parameter blocks, float word orders, Data Quality IDs, exception replies, and errors
within the stated accuracy; and the firmware's default map is the model's."""
import json
import struct

import pytest

from simulators.bus.modbus_rtu import ModbusException
from simulators.clock import Clock
from simulators.environment.lake import Lake
from simulators.interpreter import run_script
from simulators.sensors.sonde import DEFAULT_MAP, DQ_ERROR, DQ_NO_SENSOR, Sonde, accuracy


def sonde(**kw):
    clock = Clock()
    lake = Lake(3, start_unix=clock.unix_time())
    return clock, lake, Sonde(clock, lake, seed=3, **kw)


def value(regs, order="ABCD"):
    b = struct.pack(">HH", regs[0], regs[1])
    b = {"ABCD": b, "CDAB": b[2:] + b[:2], "DCBA": b[::-1]}[order]
    return struct.unpack(">f", b)[0]


def test_parameter_block_layout():
    clock, lake, s = sonde()
    regs = s.read_holding(0x0120, 8)          # pH
    truth = s.measurements[-1].truth["ph"]
    assert abs(value(regs) - truth) <= 0.1
    assert regs[2:5] == [17, 145, 0]          # Parameter ID pH, Units ID pH, quality good
    assert value(regs[5:7]) == 0.0 and regs[7] == 1


def test_whole_map_in_one_read_follows_the_lake_within_accuracy():
    clock, lake, s = sonde()
    for _ in range(200):
        regs = s.read_holding(0x0100, 88)
        truth = s.measurements[-1].truth
        for i, p in enumerate(DEFAULT_MAP["params"]):
            name = p[0]
            assert regs[8 * i + 2] == p[2]
            assert abs(value(regs[8 * i:]) - truth[name]) <= accuracy(name, truth[name]) + 1e-3
        clock.advance_to(clock.now_us + 900_000_000)


@pytest.mark.parametrize("order", ["CDAB", "DCBA"])
def test_word_order_is_configurable(order):
    clock, lake, s = sonde(order=order)
    regs = s.read_holding(0x0110, 2)
    assert abs(value(regs, order) - s.measurements[-1].truth["temperature"]) <= 0.1
    assert abs(value(regs) - s.measurements[-1].truth["temperature"]) > 1


def test_unplugged_sensor_returns_sentinel_with_quality_7_and_range_quality_3():
    clock, lake, s = sonde()
    s.missing.add("oxygen")
    regs = s.read_holding(0x0130, 8)
    assert value(regs) == 0.0 and regs[4] == DQ_NO_SENSOR
    s.fault = "range"
    regs = s.read_holding(0x0120, 8)
    assert value(regs) == 0.0 and regs[4] == DQ_ERROR


def test_reads_outside_the_blocks_are_illegal_data_address():
    clock, lake, s = sonde()
    with pytest.raises(ModbusException) as e:
        s.read_holding(0x00F0, 16)
    assert e.value.code == 2
    with pytest.raises(ModbusException) as e:
        s.read_input(0x0100, 2)
    assert e.value.code == 1


def test_firmware_default_map_matches_the_model():
    r = run_script("import json\nfrom drivers.sonde import DEFAULT_MAP as M\n"
                   "print(json.dumps([M['order'], M['function'], M['block'], "
                   "[list(p) for p in M['params']]]))")
    assert r.returncode == 0, r.stderr
    order, function, block, params = json.loads(r.stdout)
    assert (order, function, block) == (DEFAULT_MAP["order"], DEFAULT_MAP["function"],
                                        DEFAULT_MAP["block"])
    assert [p[:3] + [p[3], p[4]] for p in params] == \
        [[p[0], p[1], p[2], p[5][0], p[5][1]] for p in DEFAULT_MAP["params"]]
