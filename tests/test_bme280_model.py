"""The BME280 model follows the datasheet and Bosch's reference compensation, and the
firmware driver (on MicroPython) reads it as a real part: chip id, calibration, forced
mode, compensation bit for bit."""
import json

import pytest

from simulators.bus.i2c import I2CBus
from simulators.clock import Clock
from simulators.interpreter import run_script
from simulators.sensors.bme280 import (BME280, CALIB_H, CALIB_TP, calibration_bytes, compensate_h,
                                       compensate_p, compensate_t, measurement_time_us)


class Still:
    def at(self, t):
        return {"temperature": 21.5, "humidity": 48.0, "pressure": 1001.3}


def make():
    clock = Clock()
    bus = I2CBus()
    part = BME280(clock, Still(), seed=3)
    bus.attach(0x76, part)
    return clock, bus, part


def reg(bus, r, n=1):
    bus.write(0x76, bytes([r]), False)
    return bus.read(0x76, n)


def test_compensation_gives_boschs_test_vector():
    t, t_fine = compensate_t(519888, CALIB_TP)
    assert (t, t_fine) == (2508, 128423)
    assert compensate_p(415148, t_fine, CALIB_TP) == 10065328   # 100653.28 Pa


def test_chip_id_and_calibration_blocks_sit_where_the_register_map_says():
    _, bus, _ = make()
    assert reg(bus, 0xD0) == b"\x60"
    block1, block2 = calibration_bytes()
    assert reg(bus, 0x88, 26) == block1 and reg(bus, 0xE1, 7) == block2
    assert int.from_bytes(block1[0:2], "little") == 27504 and block1[25] == CALIB_H[0]


def test_forced_mode_measures_once_with_the_status_bit_and_returns_to_sleep():
    clock, bus, _ = make()
    bus.write(0x76, bytes([0xF2, 0x01]))
    bus.write(0x76, bytes([0xF4, 0x25]))          # osrs_t ×1, osrs_p ×1, forced
    assert reg(bus, 0xF3)[0] & 0x08                # measuring
    assert reg(bus, 0xF7, 3) == b"\x80\x00\x00"    # still the reset value: not done
    clock.advance_to(measurement_time_us(1, 1, 1))
    assert reg(bus, 0xF3)[0] & 0x08 == 0
    assert reg(bus, 0xF4)[0] & 0x03 == 0           # back in sleep mode
    d = reg(bus, 0xF7, 8)
    adc_p = d[0] << 12 | d[1] << 4 | d[2] >> 4
    adc_t = d[3] << 12 | d[4] << 4 | d[5] >> 4
    t, t_fine = compensate_t(adc_t, CALIB_TP)
    assert abs(t / 100 - 21.5) <= 0.5
    assert abs(compensate_p(adc_p, t_fine, CALIB_TP) / 10000 - 1001.3) <= 1.0
    assert abs(compensate_h(d[6] << 8 | d[7], t_fine, CALIB_H) / 1024 - 48.0) <= 3.0


def test_ctrl_hum_written_after_ctrl_meas_is_not_used_for_that_measurement():
    clock, bus, _ = make()
    bus.write(0x76, bytes([0xF4, 0x25]))
    bus.write(0x76, bytes([0xF2, 0x01]))
    clock.advance_to(20_000)
    assert reg(bus, 0xFD, 2) == b"\x80\x00"        # humidity skipped (§5.4.3)


DRIVER = r"""
import json
from drivers.bme280 import BME280
from drivers import SensorError
REGS = %s
class Bus:
    def __init__(self): self.ptr = 0; self.writes = []
    def readfrom_mem_into(self, addr, reg, buf):
        for i in range(len(buf)): buf[i] = REGS[reg + i]
    def writeto(self, addr, buf, stop=True): self.writes.append(bytes(buf).hex())
s = BME280(Bus())
out = {"t": s._temperature(519888), "p": s._pressure(415148, 128423),
       "h": [s._humidity(a, 128423) for a in (20000, 30000, 40000)], "cal_h": list(s.h)}
REGS[0xD0] = 0x58
try:
    BME280(Bus()); out["bmp280"] = "accepted"
except SensorError as e:
    out["bmp280"] = str(e)
print(json.dumps(out))
"""


def test_driver_on_micropython_computes_what_boschs_code_computes():
    _, _, part = make()
    r = run_script(DRIVER % json.dumps(list(part.regs)))
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["t"] == [2508, 128423] and out["p"] == 10065328
    assert out["cal_h"] == list(CALIB_H)
    assert out["h"] == [compensate_h(a, 128423, CALIB_H) for a in (20000, 30000, 40000)]
    assert "chip id 0x58" in out["bmp280"]


@pytest.mark.parametrize("mode", ["nack", "timeout", "absent"])
def test_bus_faults_show_as_the_bus_would(mode):
    from simulators.bus.i2c import Nack, Timeout
    _, bus, part = make()
    part.fault = mode
    with pytest.raises((Nack, Timeout)):
        reg(bus, 0xD0)
