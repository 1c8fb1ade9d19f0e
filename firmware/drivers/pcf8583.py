"""NXP PCF8583 in event-counter mode: counts the rain gauge's tips while the MCU sleeps.

    counter = PCF8583(I2C(0, scl=Pin(5), sda=Pin(4)))
    tips, restarted = counter.count()    # 0..999999, wraps; restarted after a power loss

Follows the PCF8583 datasheet (NXP, Rev. 06, 6 October 2010): the control/status
register 00h (bit 7 stop counting, bits 5..4 function mode, 10 = event counter), §7.4
counter registers (event-counter mode: 6 BCD digits in 01h..03h, D0 least significant),
the free RAM at 10h..FFh, slave address A0h/A2h (7-bit 0x50/0x51), I2C with an
auto-incrementing word address (§1).
After a power loss the control register reads 00h (clock mode): the driver then sets
event-counter mode and clears the counter, and says so (`restarted`).
Each read also writes a changing byte to RAM 10h and reads it back, so a bus or chip
that repeats stale data is caught (a counter that does not move is normal on a dry day).
"""
from micropython import const

from drivers import SensorError

_ADDRESS = const(0x50)
_REG_CONTROL = const(0x00)
_RAM_CHECK = const(0x10)
_MODE_MASK = const(0x30)
_MODE_EVENT = const(0x20)
_STOP = const(0x80)


class PCF8583:
    PART = "pcf8583"

    def __init__(self, i2c, address=_ADDRESS):
        self.i2c = i2c
        self.address = address
        self._buf = bytearray(4)
        self._one = bytearray(1)

    def _read(self, reg, buf):
        try:
            self.i2c.readfrom_mem_into(self.address, reg, buf)
        except OSError as e:
            raise SensorError(self.PART, "no answer at 0x%02x (I2C error %s)" % (self.address, e))

    def _write(self, reg, data):
        try:
            self.i2c.writeto_mem(self.address, reg, data)
        except OSError as e:
            raise SensorError(self.PART, "write refused (I2C error %s)" % e)

    def start(self):
        """Event-counter mode from 0 (stop, clear, run: the datasheet's order)."""
        self._write(_REG_CONTROL, bytes((_STOP | _MODE_EVENT,)))
        self._write(_REG_CONTROL + 1, b"\x00\x00\x00")
        self._write(_REG_CONTROL, bytes((_MODE_EVENT,)))

    def count(self):
        """(tips counted, restarted): restarted is True when the chip had lost its mode
        (power loss) and counting begins again from 0 now."""
        b = self._buf
        self._read(_REG_CONTROL, b)
        if b[0] & (_MODE_MASK | _STOP) != _MODE_EVENT:
            self.start()
            self._check_ram()
            return 0, True
        # One read: the chip strobes all counters into capture latches at the start of a
        # read (§7), so a tip during the transfer cannot mix two counts.
        n = 0
        for i in (3, 2, 1):
            hi, lo = b[i] >> 4, b[i] & 0x0F
            if hi > 9 or lo > 9:
                raise SensorError(self.PART, "counter byte 0x%02x is not BCD" % b[i])
            n = n * 100 + hi * 10 + lo
        self._check_ram()
        return n, False

    def _check_ram(self):
        one = self._one
        self._read(_RAM_CHECK, one)
        token = (one[0] + 1) & 0xFF
        one[0] = token
        self._write(_RAM_CHECK, one)
        self._read(_RAM_CHECK, one)
        if one[0] != token:
            raise SensorError(self.PART, "stuck: RAM reads back 0x%02x, not 0x%02x" % (one[0], token))
