"""Bosch BME280 pressure, temperature and humidity sensor on I2C.

Follows the BME280 datasheet (BST-BME280-DS002) as summarised in
shared/reference/sensors.md §1.3 and Bosch's reference driver
(BoschSensortec/BME280_driver, bme280.c / bme280_defs.h):

- register map (§5.3, table 18): chip id 0xD0 = 0x60, reset 0xE0 (write 0xB6),
  ctrl_hum 0xF2, status 0xF3 (bit 3 measuring, bit 0 im_update), ctrl_meas 0xF4
  (osrs_t[7:5] osrs_p[4:2] mode[1:0]), config 0xF5, data burst 0xF7..0xFE;
  a write is register address + data (pairs may follow), a read starts at the last
  written address and auto-increments (§6.2);
- calibration: 0x88..0xA1 (dig_T1..dig_P9, 0xA0 unused, dig_H1) and 0xE1..0xE7
  (dig_H2..dig_H6, H4/H5 12-bit packed) (§4.2.2, table 16);
- ctrl_hum takes effect only after a write to ctrl_meas (§5.4.3);
- forced mode (§3.3.3): one measurement, then back to sleep; status bit 3 set while it
  runs; its duration (appendix B, §9.1) is 1 + 2·osrs_t + (2·osrs_p + 0.5)
  + (2·osrs_h + 0.5) ms typical, 1.25 + 2.3·... ms max; the model takes the typical
  time. Reads meanwhile return the previous result (the data registers are shadowed);
- a skipped measurement reads 0x80000 (P, T) or 0x8000 (H), as after reset;
- output: raw ADC values chosen by inverting Bosch's integer compensation (the same
  code as the driver's, reproduced here), so that the driver's compensation gives back
  the truth plus the part's own error: a fixed offset per part within the typical
  absolute accuracy (pressure ±1.0 hPa, temperature ±0.5 °C, humidity ±3 %RH,
  datasheet table 1-3) and a little noise.

The calibration bytes are those of a plausible part: the classic Bosch example
calibration for T and P (the test vector of sensors.md §1.3) and humidity values of the
size real parts carry.
"""
from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from simulators.bus.i2c import Nack
from simulators.sensors.faults import Timeout

CHIP_ID = 0x60
REG_CALIB0 = 0x88
REG_CHIP_ID = 0xD0
REG_RESET = 0xE0
REG_CALIB26 = 0xE1
REG_CTRL_HUM = 0xF2
REG_STATUS = 0xF3
REG_CTRL_MEAS = 0xF4
REG_CONFIG = 0xF5
REG_DATA = 0xF7
RESET_WORD = 0xB6

ACCURACY_P_HPA = 1.0     # absolute, 0..65 °C, typical (datasheet table 2)
ACCURACY_T = 0.5         # °C at 25 °C (table 3)
ACCURACY_RH = 3.0        # %RH (table 1)

# dig_T1..T3, dig_P1..P9: Bosch's example calibration (sensors.md §1.3 test vector)
CALIB_TP = (27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
# dig_H1..H6 of a plausible part
CALIB_H = (75, 362, 0, 313, 50, 30)

_OSR = {0: 0, 1: 1, 2: 2, 3: 4, 4: 8, 5: 16}


def _div(a: int, b: int) -> int:
    """C integer division (truncates toward zero), as the reference driver divides."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def calibration_bytes(tp=CALIB_TP, h=CALIB_H) -> tuple[bytes, bytes]:
    """The two calibration blocks as the part stores them (0x88..0xA1, 0xE1..0xE7)."""
    block1 = struct.pack("<HhhHhhhhhhhh", *tp) + bytes([0, h[0] & 0xFF])
    h4, h5 = h[3], h[4]
    block2 = struct.pack("<hB", h[1], h[2]) + bytes([
        (h4 >> 4) & 0xFF, (h4 & 0x0F) | ((h5 & 0x0F) << 4), (h5 >> 4) & 0xFF, h[5] & 0xFF])
    return block1, block2


def compensate_t(adc_t: int, c) -> tuple[int, int]:
    """(T in 0.01 °C, t_fine): bme280.c compensate_temperature (int32)."""
    t1, t2, t3 = c[0], c[1], c[2]
    var1 = _div(_div(adc_t, 8) - t1 * 2, 1) * t2
    var1 = _div(var1, 2048)
    var2 = _div(adc_t, 16) - t1
    var2 = _div(_div(var2 * var2, 4096) * t3, 16384)
    t_fine = var1 + var2
    t = _div(t_fine * 5 + 128, 256)
    return max(-4000, min(8500, t)), t_fine


def compensate_p(adc_p: int, t_fine: int, c) -> int:
    """Pressure in 0.01 Pa: bme280.c compensate_pressure (int64 version), clamped to
    30000..110000 Pa."""
    p1, p2, p3, p4, p5, p6, p7, p8, p9 = c[3:12]
    var1 = t_fine - 128000
    var2 = var1 * var1 * p6
    var2 = var2 + (var1 * p5) * 131072
    var2 = var2 + p4 * 34359738368
    var1 = _div(var1 * var1 * p3, 256) + var1 * p2 * 4096
    var3 = 140737488355328
    var1 = _div((var3 + var1) * p1, 8589934592)
    if var1 == 0:
        return 3000000
    var4 = 1048576 - adc_p
    var4 = _div((var4 * 2147483648 - var2) * 3125, var1)
    var1 = _div(p9 * _div(var4, 8192) * _div(var4, 8192), 33554432)
    var2 = _div(p8 * var4, 524288)
    var4 = _div(var4 + var1 + var2, 256) + p7 * 16
    p = _div(_div(var4, 2) * 100, 128)
    return max(3000000, min(11000000, p))


def compensate_h(adc_h: int, t_fine: int, h) -> int:
    """Humidity in %RH·1024: bme280.c compensate_humidity (int32), clamped to 0..102400."""
    h1, h2, h3, h4, h5, h6 = h
    var1 = t_fine - 76800
    var2 = adc_h * 16384
    var3 = h4 * 1048576
    var4 = h5 * var1
    var5 = _div(var2 - var3 - var4 + 16384, 32768)
    var2 = _div(var1 * h6, 1024)
    var3 = _div(var1 * h3, 2048)
    var4 = _div(var2 * (var3 + 32768), 1024) + 2097152
    var2 = _div(var4 * h2 + 8192, 16384)
    var3 = var5 * var2
    var4 = _div(_div(var3, 32768) * _div(var3, 32768), 128)
    var5 = var3 - _div(var4 * h1, 16)
    var5 = max(0, min(419430400, var5))
    return min(102400, _div(var5, 4096))


def _invert(f, target: float, lo: int, hi: int, increasing: bool) -> int:
    """The raw value in lo..hi whose compensated value lies nearest the target."""
    a, b = lo, hi
    while b - a > 1:
        m = (a + b) // 2
        if (f(m) < target) == increasing:
            a = m
        else:
            b = m
    return a if abs(f(a) - target) <= abs(f(b) - target) else b


def measurement_time_us(osrs_t: int, osrs_p: int, osrs_h: int, typical: bool = True) -> int:
    """Appendix B: 1 + 2·T + (2·P + 0.5) + (2·H + 0.5) ms typical (1.25/2.3/0.575 max)."""
    t, p, h = _OSR[osrs_t], _OSR[osrs_p], _OSR[osrs_h]
    if typical:
        us = 1000 + 2000 * t + (2000 * p + 500 if p else 0) + (2000 * h + 500 if h else 0)
    else:
        us = 1250 + 2300 * t + (2300 * p + 575 if p else 0) + (2300 * h + 575 if h else 0)
    return us


@dataclass
class Measurement:
    t_us: int
    pressure: float      # the truth, hPa
    temperature: float   # °C
    humidity: float      # %RH


class BME280:
    FAULT_MODES = ("absent", "nack", "timeout", "stuck", "range")   # no CRC on this part
    # A one-byte write (the register pointer) is acknowledged in every state but these
    # faults (the fleet's batched wire answers it on the node: node_runtime/_simbatch.py).
    POINTER_WRITE_FAULTS = ("nack",)

    def __init__(self, clock, environment, address: int = 0x76, seed: int = 0):
        self.clock = clock
        self.environment = environment
        self.address = address
        self.rng = random.Random(f"bme280:{seed}:{address}")
        self.calib = CALIB_TP
        self.calib_h = CALIB_H
        self.block1, self.block2 = calibration_bytes(self.calib, self.calib_h)
        # The part's own error: an offset within the typical accuracy, less room for noise.
        self.offset_p = self.rng.uniform(-1, 1) * (ACCURACY_P_HPA - 0.1)
        self.offset_t = self.rng.uniform(-1, 1) * (ACCURACY_T - 0.05)
        self.offset_rh = self.rng.uniform(-1, 1) * (ACCURACY_RH - 0.3)
        self.fault: str | None = None
        self.measurements: list[Measurement] = []
        self._reset()

    def _reset(self) -> None:
        self.regs = bytearray(256)
        self.regs[REG_CHIP_ID] = CHIP_ID
        self.regs[REG_CALIB0:REG_CALIB0 + 26] = self.block1
        self.regs[REG_CALIB26:REG_CALIB26 + 7] = self.block2
        self.regs[REG_DATA:REG_DATA + 8] = bytes([0x80, 0, 0, 0x80, 0, 0, 0x80, 0])
        self.osrs_h_active = 0        # ctrl_hum latched at the last ctrl_meas write
        self.pointer = 0
        self.busy_until = 0
        self.pending: bytes | None = None
        self._last: dict = {}

    # --- the conversion -----------------------------------------------------------
    def _raw_for(self, p_hpa: float, t_c: float, rh: float, osrs_t, osrs_p, osrs_h) -> bytes:
        c = self.calib
        adc_t = _invert(lambda a: compensate_t(a, c)[0], t_c * 100, 0, 0xFFFFF, True) if osrs_t \
            else 0x80000
        t_fine = compensate_t(adc_t, c)[1]
        adc_p = _invert(lambda a: compensate_p(a, t_fine, c), p_hpa * 10000, 0, 0xFFFFF, False) \
            if osrs_p else 0x80000
        adc_h = _invert(lambda a: compensate_h(a, t_fine, self.calib_h), rh * 1024, 0, 0xFFFF, True) \
            if osrs_h else 0x8000
        if self.fault == "range":
            adc_t, adc_p = 0xFFFF0, 0x00010   # beyond any air the part is rated for
        return bytes([adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0xF) << 4,
                      adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0xF) << 4,
                      adc_h >> 8, adc_h & 0xFF])

    def _start_forced(self, ctrl_meas: int) -> None:
        osrs_t, osrs_p = ctrl_meas >> 5, (ctrl_meas >> 2) & 7
        osrs_t, osrs_p = min(osrs_t, 5), min(osrs_p, 5)
        osrs_h = min(self.osrs_h_active, 5)
        now = self.clock.now_us
        truth = self.environment.at(self.clock.unix_time())
        self.measurements.append(Measurement(now, truth["pressure"], truth["temperature"],
                                             truth["humidity"]))
        noise_p = max(-0.06, min(0.06, self.rng.gauss(0, 0.02)))   # hPa, ~2 Pa RMS
        self.pending = self._raw_for(truth["pressure"] + self.offset_p + noise_p,
                                     truth["temperature"] + self.offset_t,
                                     min(100.0, max(0.0, truth["humidity"] + self.offset_rh)),
                                     osrs_t, osrs_p, osrs_h)
        self.busy_until = now + measurement_time_us(osrs_t, osrs_p, osrs_h)

    def _settle(self) -> None:
        if self.pending is not None and self.clock.now_us >= self.busy_until:
            self.regs[REG_DATA:REG_DATA + 8] = self.pending
            self.pending = None
            self.regs[REG_CTRL_MEAS] &= 0xFC      # forced mode ends in sleep mode

    # --- the bus ------------------------------------------------------------------------
    def write(self, data: bytes, stop: bool) -> None:
        if self.fault == "nack":
            raise Nack("BME280 does not acknowledge")
        self._settle()
        if not data:
            return
        self.pointer = data[0]
        # A write is register address, data, [address, data, ...] (§6.2.1): pairs.
        for reg, value in zip(data[0::2], data[1::2]):
            self._write_reg(reg, value)

    def _write_reg(self, reg: int, value: int) -> None:
        if reg == REG_RESET:
            if value == RESET_WORD:
                self._reset()
            return
        if reg == REG_CTRL_HUM:
            self.regs[reg] = value & 0x07
        elif reg == REG_CTRL_MEAS:
            self.regs[reg] = value
            self.osrs_h_active = self.regs[REG_CTRL_HUM] & 0x07
            if value & 0x03 in (1, 2) and self.pending is None:
                self._start_forced(value)
        elif reg == REG_CONFIG:
            self.regs[reg] = value & 0xFD
        # other registers are read-only

    def read(self, n: int) -> bytes:
        if self.fault == "timeout":
            raise Timeout("BME280: SCL held low")
        if self.fault == "nack":
            raise Nack("BME280 does not acknowledge")
        self._settle()
        self.regs[REG_STATUS] = 0x08 if self.pending is not None else 0x00
        out = bytes(self.regs[(self.pointer + i) & 0xFF] for i in range(n))
        key = (self.pointer, n)
        if self.fault == "stuck" and key in self._last:
            out = self._last[key]        # the bus repeats what it gave last time
        elif self.fault != "stuck":
            self._last[key] = out
        self.pointer = (self.pointer + n) & 0xFF
        return out
