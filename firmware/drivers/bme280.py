"""Bosch BME280 barometric pressure (and temperature, humidity) sensor on I2C.

    sensor = BME280(I2C(0, scl=Pin(5), sda=Pin(4)))     # checks the chip id, reads calibration
    t_centi_c, p_centi_pa, rh_1024 = sensor.measure()   # one forced-mode measurement

Follows the BME280 datasheet (BST-BME280-DS002): §5.3 register map (chip id 0xD0 =
0x60, ctrl_hum 0xF2, status 0xF3, ctrl_meas 0xF4, data 0xF7..0xFE), §4.2.2 calibration
(0x88..0xA1 and 0xE1..0xE7, little-endian, dig_H4/H5 packed 12-bit), §5.4.3 (ctrl_hum
takes effect only with the following ctrl_meas write), §3.3.3 forced mode, appendix B
measurement time (1.25 + 2.3·osrs_t + 2.3·osrs_p + 0.575 + 2.3·osrs_h + 0.575 ms max),
and Bosch's integer compensation of BoschSensortec/BME280_driver (bme280.c: int32
temperature and humidity, int64 pressure), with C's truncating division.
Oversampling ×1 for all three, filter off: the datasheet's §3.5.1 "weather monitoring".
"""
from micropython import const
import time

from drivers import SensorError

_ADDRESS = const(0x76)
_CHIP_ID = const(0x60)
_REG_CALIB0 = const(0x88)
_REG_CHIP_ID = const(0xD0)
_REG_CALIB26 = const(0xE1)
_REG_CTRL_HUM = const(0xF2)
_REG_STATUS = const(0xF3)
_REG_CTRL_MEAS = const(0xF4)
_REG_DATA = const(0xF7)
_OSRS_X1 = const(1)
_MODE_FORCED = const(1)
_STATUS_MEASURING = const(0x08)
# appendix B, osrs ×1 for T, P and H: 1.25 + 2.3 + 2.875 + 2.875 = 9.3 ms max
_MEASURE_WAIT_MS = const(10)
_POLLS = const(5)
_SKIPPED = const(0x80000)


def _div(a, b):
    """C integer division (toward zero), as bme280.c divides."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _u16(b, i):
    return b[i] | (b[i + 1] << 8)


def _s16(b, i):
    v = b[i] | (b[i + 1] << 8)
    return v - 65536 if v & 0x8000 else v


def _s8(v):
    return v - 256 if v & 0x80 else v


class BME280:
    PART = "bme280"

    def __init__(self, i2c, address=_ADDRESS):
        self.i2c = i2c
        self.address = address
        self._reg = bytearray(2)
        self._one = bytearray(1)
        self._data = bytearray(8)
        self._cal1 = bytearray(26)
        self._cal2 = bytearray(7)
        self._check_id()
        self._read_calibration()

    def _read(self, reg, buf):
        try:
            self.i2c.readfrom_mem_into(self.address, reg, buf)
        except OSError as e:
            raise SensorError(self.PART, "no answer at 0x%02x (I2C error %s)" % (self.address, e))

    def _write(self, reg, value):
        self._reg[0] = reg
        self._reg[1] = value
        try:
            self.i2c.writeto(self.address, self._reg)
        except OSError as e:
            raise SensorError(self.PART, "write 0x%02x refused (I2C error %s)" % (reg, e))

    def _check_id(self):
        self._read(_REG_CHIP_ID, self._one)
        if self._one[0] != _CHIP_ID:
            raise SensorError(self.PART, "chip id 0x%02x, not a BME280 (0x60)" % self._one[0])

    def _read_calibration(self):
        b = self._cal1
        self._read(_REG_CALIB0, b)
        self.t = (_u16(b, 0), _s16(b, 2), _s16(b, 4))
        self.p = (_u16(b, 6), _s16(b, 8), _s16(b, 10), _s16(b, 12), _s16(b, 14),
                  _s16(b, 16), _s16(b, 18), _s16(b, 20), _s16(b, 22))
        h1 = b[25]
        e = self._cal2
        self._read(_REG_CALIB26, e)
        h4 = (_s8(e[3]) * 16) | (e[4] & 0x0F)
        h5 = (_s8(e[5]) * 16) | (e[4] >> 4)
        self.h = (h1, _s16(e, 0), e[2], h4, h5, _s8(e[6]))
        if self.t[0] == 0 or self.p[0] == 0:
            raise SensorError(self.PART, "calibration reads zero")

    def raw(self):
        """The last measurement's 8 data bytes as read (for a stuck-part check)."""
        return bytes(self._data)

    def measure(self):
        """One forced-mode measurement: (°C ×100, Pa ×100, %RH ×1024)."""
        # ctrl_hum first: it is latched by the ctrl_meas write that starts the measurement.
        self._write(_REG_CTRL_HUM, _OSRS_X1)
        self._write(_REG_CTRL_MEAS, (_OSRS_X1 << 5) | (_OSRS_X1 << 2) | _MODE_FORCED)
        time.sleep_ms(_MEASURE_WAIT_MS)
        for _ in range(_POLLS):
            self._read(_REG_STATUS, self._one)
            if not self._one[0] & _STATUS_MEASURING:
                break
            time.sleep_ms(2)
        else:
            raise SensorError(self.PART, "measurement did not end")
        d = self._data
        self._read(_REG_DATA, d)
        adc_p = (d[0] << 12) | (d[1] << 4) | (d[2] >> 4)
        adc_t = (d[3] << 12) | (d[4] << 4) | (d[5] >> 4)
        adc_h = (d[6] << 8) | d[7]
        if adc_t == _SKIPPED or adc_p == _SKIPPED:
            raise SensorError(self.PART, "no measurement in the data registers")
        t, t_fine = self._temperature(adc_t)
        if not -4000 < t < 8500:
            raise SensorError(self.PART, "temperature %d.%02d °C out of range" % (t // 100, t % 100))
        p = self._pressure(adc_p, t_fine)
        if not 3000000 < p < 11000000:
            raise SensorError(self.PART, "pressure %d Pa out of range 300..1100 hPa" % (p // 100))
        return t, p, self._humidity(adc_h, t_fine)

    def _temperature(self, adc_t):
        t1, t2, t3 = self.t
        var1 = _div((_div(adc_t, 8) - t1 * 2) * t2, 2048)
        var2 = _div(adc_t, 16) - t1
        var2 = _div(_div(var2 * var2, 4096) * t3, 16384)
        t_fine = var1 + var2
        t = _div(t_fine * 5 + 128, 256)
        return max(-4000, min(8500, t)), t_fine

    def _pressure(self, adc_p, t_fine):
        p1, p2, p3, p4, p5, p6, p7, p8, p9 = self.p
        var1 = t_fine - 128000
        var2 = var1 * var1 * p6
        var2 = var2 + (var1 * p5) * 131072
        var2 = var2 + p4 * 34359738368
        var1 = _div(var1 * var1 * p3, 256) + var1 * p2 * 4096
        var1 = _div((140737488355328 + var1) * p1, 8589934592)
        if var1 == 0:
            return 3000000
        var4 = 1048576 - adc_p
        var4 = _div((var4 * 2147483648 - var2) * 3125, var1)
        var1 = _div(p9 * _div(var4, 8192) * _div(var4, 8192), 33554432)
        var2 = _div(p8 * var4, 524288)
        var4 = _div(var4 + var1 + var2, 256) + p7 * 16
        p = _div(_div(var4, 2) * 100, 128)
        return max(3000000, min(11000000, p))

    def _humidity(self, adc_h, t_fine):
        h1, h2, h3, h4, h5, h6 = self.h
        var1 = t_fine - 76800
        var5 = _div(adc_h * 16384 - h4 * 1048576 - h5 * var1 + 16384, 32768)
        var2 = _div(var1 * h6, 1024)
        var3 = _div(var1 * h3, 2048)
        var4 = _div(var2 * (var3 + 32768), 1024) + 2097152
        var2 = _div(var4 * h2 + 8192, 16384)
        var3 = var5 * var2
        var4 = _div(_div(var3, 32768) * _div(var3, 32768), 128)
        var5 = var3 - _div(var4 * h1, 16)
        var5 = max(0, min(419430400, var5))
        return min(102400, _div(var5, 4096))
