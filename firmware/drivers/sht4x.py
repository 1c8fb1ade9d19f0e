"""Sensirion SHT4x (SHT40/41/45) temperature and humidity sensor on I2C.

    sensor = SHT4x(I2C(0, scl=Pin(5), sda=Pin(4)))
    t_centi_c, rh_centi_pct = sensor.measure()

Follows the SHT4x datasheet: §4.4 command overview (0xFD high precision, 8.3 ms max),
§4.5 conversion (T = -45 + 175·S/2^16-1, RH = -6 + 125·S/2^16-1, RH cropped to
0..100 %), §4.6 CRC-8 (poly 0x31, init 0xFF) after each 16-bit word. Results are
integers in hundredths (°C ×100, %RH ×100) so no float is needed on the wire.
"""
from micropython import const
import time

from drivers import SensorError

_ADDRESS = const(0x44)
_CMD_MEASURE_HIGH = const(0xFD)
_CMD_SERIAL = const(0x89)
_CMD_SOFT_RESET = const(0x94)
_MEASURE_WAIT_MS = const(10)   # datasheet max 8.3 ms; Sensirion's own driver waits 10
_T_MIN = const(-4000)          # specified range -40..125 °C (datasheet §2.2)
_T_MAX = const(12500)
_SHORT_WAIT_MS = const(1)      # serial number and soft reset


def crc8(buf, start=0, end=None):
    """Sensirion CRC-8: poly 0x31, init 0xFF, no reflection (datasheet §4.6)."""
    crc = 0xFF
    for i in range(start, len(buf) if end is None else end):
        crc ^= buf[i]
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


class SHT4x:
    PART = "sht4x"

    def __init__(self, i2c, address=_ADDRESS):
        self.i2c = i2c
        self.address = address
        self._cmd = bytearray(1)
        self._buf = bytearray(6)

    def _command(self, cmd, wait_ms):
        self._cmd[0] = cmd
        try:
            self.i2c.writeto(self.address, self._cmd)
        except OSError as e:
            raise SensorError(self.PART, "no answer at 0x%02x (I2C error %s)" % (self.address, e))
        time.sleep_ms(wait_ms)
        try:
            self.i2c.readfrom_into(self.address, self._buf)
        except OSError as e:
            raise SensorError(self.PART, "no result (I2C error %s)" % e)
        buf = self._buf
        if crc8(buf, 0, 2) != buf[2] or crc8(buf, 3, 5) != buf[5]:
            raise SensorError(self.PART, "CRC mismatch")
        return (buf[0] << 8) | buf[1], (buf[3] << 8) | buf[4]

    def raw(self):
        """The last measurement's 6 bytes as read (for a caller that checks for a stuck part)."""
        return bytes(self._buf)

    def measure(self):
        """One high-precision measurement: (°C ×100, %RH ×100), RH cropped to 0..100 %."""
        s_t, s_rh = self._command(_CMD_MEASURE_HIGH, _MEASURE_WAIT_MS)
        # 175·S/65536 and 125·S/65536 as Sensirion's fixed-point driver does,
        # kept below 2^30 so a board's small ints never overflow into a long.
        t = ((s_t * 4375 + 8192) >> 14) - 4500
        if not _T_MIN <= t <= _T_MAX:
            raise SensorError(self.PART, "temperature %d.%02d °C out of range" % (t // 100, t % 100))
        rh = ((s_rh * 12500 + 32768) >> 16) - 600
        if rh < 0:
            rh = 0
        elif rh > 10000:
            rh = 10000
        return t, rh

    def serial_number(self):
        hi, lo = self._command(_CMD_SERIAL, _SHORT_WAIT_MS)
        return (hi << 16) | lo

    def soft_reset(self):
        self._cmd[0] = _CMD_SOFT_RESET
        try:
            self.i2c.writeto(self.address, self._cmd)
        except OSError as e:
            raise SensorError(self.PART, "no answer to soft reset (I2C error %s)" % e)
        time.sleep_ms(_SHORT_WAIT_MS)
