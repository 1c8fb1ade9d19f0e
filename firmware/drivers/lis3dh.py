"""ST LIS3DH three-axis accelerometer on I2C: FIFO stream mode and the INT1 activity
interrupt that wakes the board.

    acc = LIS3DH(i2c, address=0x18); acc.start(odr_hz=100, fs_g=4, wake_mg=200)
    n = acc.read_fifo(buf)     # up to 32 samples (x, y, z) in mg into buf (array 'h', 96)

Follows datasheet DocID17530 Rev 2: §6.1.1 (I2C: sub-address bit 7 auto-increments),
§8.1-8.7 (WHO_AM_I 0x0F = 0x33; CTRL_REG1..6; ODR codes; LPen/HR/FS data format,
Table 4 sensitivities), §8.17-8.19 (FIFO_CTRL_REG stream mode 0b10, FIFO_SRC_REG
OVRN/EMPTY/FSS), §8.20-8.23 (INT1_CFG OR of high events, INT1_SRC clears a latched
interrupt, INT1_THS LSB per full scale, INT1_DURATION in 1/ODR), CTRL_REG2 HPIS1 so
gravity does not hold the interrupt, CTRL_REG3 I1_IA1 routes it to the INT1 pin.
"""
from micropython import const

from drivers import SensorError

try:
    from node import watchdog   # fed where the driver waits long or makes progress
except ImportError:             # the driver on its own, outside a node
    watchdog = None

_ADDRESS = const(0x18)
_WHO_AM_I = const(0x0F)
_WHO_AM_I_VALUE = const(0x33)
_CTRL_REG1 = const(0x20)
_CTRL_REG5 = const(0x24)
_OUT_X_L = const(0x28)
_FIFO_CTRL_REG = const(0x2E)
_FIFO_SRC_REG = const(0x2F)
_INT1_CFG = const(0x30)
_INT1_SRC = const(0x31)
_AUTO_INC = const(0x80)
_LEVELS = const(32)

_ODR_CODES = {1: 1, 10: 2, 25: 3, 50: 4, 100: 5, 200: 6, 400: 7}
_FS_CODES = {2: 0, 4: 1, 8: 2, 16: 3}
_THS_MG = (16, 32, 62, 186)          # INT1_THS LSB at ±2/4/8/16 g
_MG_PER_DIGIT = (4, 8, 16, 48)       # normal mode (10-bit) at ±2/4/8/16 g


class LIS3DH:
    PART = "lis3dh"

    def __init__(self, i2c, address=_ADDRESS):
        self.i2c = i2c
        self.address = address
        self._reg = bytearray(1)
        self._w2 = bytearray(2)
        self._fifo = bytearray(6 * _LEVELS)
        self._cfg = bytearray(7)
        self.mg_per_digit = 8
        self.raw = b""

    # --- register access ----------------------------------------------------------------
    def _read(self, reg, buf):
        try:
            self._reg[0] = reg | (_AUTO_INC if len(buf) > 1 else 0)
            self.i2c.writeto(self.address, self._reg, False)
            self.i2c.readfrom_into(self.address, buf)
        except OSError as e:
            raise SensorError(self.PART, "no answer at 0x%02x (I2C error %s)" % (self.address, e))

    def _read_u8(self, reg):
        self._read(reg, self._reg)
        return self._reg[0]

    def _write(self, reg, value):
        self._w2[0] = reg
        self._w2[1] = value
        try:
            self.i2c.writeto(self.address, self._w2)
        except OSError as e:
            raise SensorError(self.PART, "write of 0x%02x refused (I2C error %s)" % (reg, e))

    # --- set-up -------------------------------------------------------------------------
    def check_id(self):
        who = self._read_u8(_WHO_AM_I)
        if who != _WHO_AM_I_VALUE:
            raise SensorError(self.PART, "WHO_AM_I reads 0x%02x, not 0x33" % who)

    def start(self, odr_hz=100, fs_g=4, wake_mg=200, wake_samples=0):
        """Normal mode (10-bit) at odr_hz, ±fs_g, FIFO in stream mode, and the INT1 pin
        raised (latched until INT1_SRC is read) when any axis, high-passed, exceeds
        wake_mg for wake_samples/ODR. Written only when the part does not already run
        this way, so a wake does not restart the FIFO."""
        fs = _FS_CODES[fs_g]
        ths = (wake_mg + _THS_MG[fs] // 2) // _THS_MG[fs]
        c = self._cfg
        c[0] = (_ODR_CODES[odr_hz] << 4) | 0x07     # CTRL_REG1: ODR, X/Y/Z on, LPen 0
        c[1] = 0x01                                  # CTRL_REG2: HPIS1 (high-pass to IA1)
        c[2] = 0x40                                  # CTRL_REG3: I1_IA1 on the INT1 pin
        c[3] = 0x80 | (fs << 4)                      # CTRL_REG4: BDU, FS, HR 0 (normal mode)
        c[4] = 0x48                                  # CTRL_REG5: FIFO_EN, LIR_INT1
        c[5] = 0x00                                  # CTRL_REG6
        self.mg_per_digit = _MG_PER_DIGIT[fs]
        now = bytearray(6)
        self._read(_CTRL_REG1, now)
        if now == c[:6] and self._read_u8(_FIFO_CTRL_REG) == 0x80:
            return False
        self.check_id()
        for i in range(6):
            self._write(_CTRL_REG1 + i, c[i])
        self._write(_FIFO_CTRL_REG, 0x80)            # stream mode
        self._write(0x32, min(127, max(1, ths)))     # INT1_THS
        self._write(0x33, min(127, wake_samples))    # INT1_DURATION
        self._write(_INT1_CFG, 0x2A)                 # OR of XHIE, YHIE, ZHIE
        self._read_u8(_INT1_SRC)                     # clear anything latched so far
        return True

    def power_down(self):
        """ODR 0: the part stops sampling and draws 0.5 µA (CTRL_REG1, §8.8)."""
        self._write(_CTRL_REG1, 0x07)

    def clear_interrupt(self):
        """Read INT1_SRC (clears the latch); True when the interrupt was active."""
        return bool(self._read_u8(_INT1_SRC) & 0x40)

    # --- data ---------------------------------------------------------------------------
    def read_fifo(self, out):
        """Pop every unread FIFO level into `out` (x, y, z per sample, in mg); returns
        the number of samples. Raises SensorError on a bus error."""
        src = self._read_u8(_FIFO_SRC_REG)
        n = _LEVELS if src & 0x40 else src & 0x1F
        if n == 0:
            return 0
        buf = memoryview(self._fifo)[:6 * n]
        self._read(_OUT_X_L, buf)
        self.raw = bytes(buf)
        k = self.mg_per_digit
        for i in range(3 * n):
            v = buf[2 * i] | (buf[2 * i + 1] << 8)
            if v & 0x8000:
                v -= 0x10000
            out[i] = (v >> 6) * k                   # 10-bit left-justified
        if watchdog is not None:
            watchdog.progress()     # new samples: a glass session may poll for minutes
        return n
