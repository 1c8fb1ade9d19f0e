"""SDI-12 data recorder (master) on a UART behind a one-wire SDI-12 adapter.

    bus = SDI12(machine.UART(1, tx=Pin(4), rx=Pin(5)))
    values, raw = bus.measure("0")      # break, aMC!, service request, aD0!... -> [b"+25.60", ...]

Follows the SDI-12 specification v1.4 (and v1.3, 2016, which the reference quotes):
§4.2 1200 baud, 7 data bits, even parity, 1 stop bit (MicroPython `bits=7, parity=0`);
§7.1 break >= 12 ms, then >= 8.33 ms marking before the command, sensor reply within
15 ms of the command's stop bit, sensors asleep after 100 ms of marking; §7.2 retries
(the whole break-command sequence, at least three times); §4.4.6 `aM!`/`aMC!` answer
`atttn`, the service request `a<CR><LF>` when data is ready; §4.4.8 `aD0!`..`aD9!`
until n values arrived; §4.4.12 CRC-16/ARC (poly 0xA001, init 0) in 3 ASCII chars.

The break: `UART.sendbreak()` holds TX low for 13 bit times on the RP2040 port (and
for one 0x00 at 0.4x the baud rate on ESP32), only 10.8 ms at 1200 baud; the driver
drops the UART to 600 baud for the break (21.7 ms) and returns to 1200 baud.

The adapter: a one-wire interface (TX and RX both on the data line) hears its own
command; the driver strips the echo of the command from the front of the reply, so it
works with adapters that suppress the echo as well.
"""
from micropython import const
import time

from drivers import SensorError

_BAUD = const(1200)
_BREAK_BAUD = const(600)       # 13 bit times at 600 baud: 21.7 ms >= 12 ms (§7.1)
_MARK_MS = const(9)            # >= 8.33 ms marking after the break (§7.1)
_CHAR_US = const(8334)         # 1 start + 7 data + 1 parity + 1 stop at 1200 baud
_REPLY_MS = const(30)          # 8.33 ms sensor marking + 15 ms to its first start bit + slack
_RETRIES = const(3)            # §7.2: the sequence at least three times
_SRQ_SLACK_MS = const(100)     # beyond ttt seconds, for the service request a<CR><LF>
_MAX_LINE = const(84)          # a + 75 value chars + CRC + CRLF (§4.4.8)


def crc16(buf, start=0, end=None):
    """SDI-12 CRC-16 (§4.4.12): poly 0xA001 reflected, init 0 (CRC-16/ARC)."""
    crc = 0
    for i in range(start, len(buf) if end is None else end):
        crc ^= buf[i]
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def crc_ascii(crc):
    """The 3 printable characters the CRC travels as (§4.4.12.2)."""
    return bytes((0x40 | (crc >> 12), 0x40 | ((crc >> 6) & 0x3F), 0x40 | (crc & 0x3F)))


def split_values(data):
    """`+1.5-2+0.25` -> [b"+1.5", b"-2", b"+0.25"]; every value starts with its sign."""
    values = []
    start = -1
    for i in range(len(data)):
        c = data[i]
        if c == 0x2B or c == 0x2D:       # + -
            if start >= 0:
                values.append(data[start:i])
            start = i
        elif not (0x30 <= c <= 0x39 or c == 0x2E) or start < 0:
            raise ValueError("not an SDI-12 value field: %r" % data)
    if start >= 0:
        values.append(data[start:])
    for v in values:
        if len(v) < 2 or len(v) > 9 or v.count(b".") > 1 or v[1:] == b".":
            raise ValueError("bad SDI-12 value %r" % v)
    return values


def scaled(value, decimals):
    """An SDI-12 value `pd.d` as an integer in units of 10**-decimals, rounded half away
    from zero, without floats: scaled(b"+21.505", 2) == 2151."""
    neg = value[0] == 0x2D
    digits = value[1:]
    dot = digits.find(b".")
    if dot < 0:
        whole, frac = digits, b""
    else:
        whole, frac = digits[:dot], digits[dot + 1:]
    frac = frac + b"0" * (decimals + 1)
    n = int(whole or b"0") * 10 ** (decimals + 1) + int(frac[:decimals + 1])
    n = (n + 5) // 10
    return -n if neg else n


def _digits(buf, start):
    for i in range(start, len(buf)):
        if not 0x30 <= buf[i] <= 0x39:
            return False
    return True


class SDI12:
    PART = "sdi12"

    def __init__(self, uart, part=PART, retries=_RETRIES):
        self.uart = uart
        self.part = part
        self.retries = retries
        self._cmd = bytearray(6)

    # --- the line -----------------------------------------------------------------
    def _init(self, baudrate, timeout_ms):
        self.uart.init(baudrate=baudrate, bits=7, parity=0, stop=1,
                       timeout=timeout_ms, timeout_char=timeout_ms)

    def _break(self, timeout_ms):
        """Break, then marking (§7.1): every command starts so (the SMT100 wants a break
        before aD0! too), which also makes every retry a complete sequence (§7.2)."""
        self._init(_BREAK_BAUD, timeout_ms)
        self.uart.sendbreak()
        self._init(_BAUD, timeout_ms)
        time.sleep_ms(_MARK_MS)

    def _flush(self):
        n = self.uart.any()
        if n:
            self.uart.read(n)

    def _line(self, cmd):
        """One reply line for `cmd`, echo stripped, CR LF stripped; None if none came."""
        line = self.uart.readline()
        if not line:
            return None
        if line.startswith(cmd):
            line = line[len(cmd):]
        if len(line) < 3 or line[-2:] != b"\r\n":
            return None
        return line[:-2]

    def transaction(self, cmd, reply_chars=_MAX_LINE):
        """Send `cmd` (e.g. b"0M!") after a break; the reply, starting with the address.

        Retries the whole sequence; SensorError when no valid reply came."""
        timeout = (len(cmd) + reply_chars + 2) * _CHAR_US // 1000 + _REPLY_MS
        for _ in range(self.retries):
            self._break(timeout)
            self._flush()
            self.uart.write(cmd)
            reply = self._line(cmd)
            if reply is not None and (cmd[0] == 0x3F or reply[0] == cmd[0]):
                for c in reply:
                    if not 0x20 <= c < 0x7F:
                        reply = None
                        break
                if reply is not None:
                    return reply
        raise SensorError(self.part, "no answer to %s" % cmd.decode())

    # --- commands (§4.4) ----------------------------------------------------------
    def acknowledge(self, address):
        """`a!`: True when the sensor at `address` answers."""
        try:
            return self.transaction(address.encode() + b"!", 1) == address.encode()
        except SensorError:
            return False

    def query_address(self):
        """`?!`: the address of the one sensor on the bus (several answer at once)."""
        reply = self.transaction(b"?!", 1)
        if len(reply) != 1:
            raise SensorError(self.part, "address query answered %r" % reply)
        return chr(reply[0])

    def identify(self, address):
        """`aI!`: the identification line, e.g. b"13TRUEBNERSMT100..." (address removed)."""
        return self.transaction(address.encode() + b"I!", 36)[1:]

    def start(self, address, crc=True):
        """`aM!` / `aMC!`: (seconds until data, number of values) from `atttn`."""
        cmd = address.encode() + (b"MC!" if crc else b"M!")
        reply = self.transaction(cmd, 5)
        if len(reply) != 5 or not _digits(reply, 1):
            raise SensorError(self.part, "%s answered %r, not atttn" % (cmd.decode(), reply))
        return int(reply[1:4]), reply[4] - 0x30

    def wait_service_request(self, address, seconds):
        """Wait up to `seconds` (ttt) for `a<CR><LF>` (§4.4.6); True if it came."""
        if seconds == 0:
            return True     # no service request when ttt is 000
        self._init(_BAUD, seconds * 1000 + _SRQ_SLACK_MS)
        line = self.uart.readline()
        return bool(line) and line.rstrip() == address.encode()

    def data(self, address, index, crc=True):
        """`aDn!`: the value fields of one reply (CRC checked and removed)."""
        cmd = ("%sD%d!" % (address, index)).encode()
        last = "no answer"
        for _ in range(self.retries):
            reply = self.transaction(cmd)
            if crc:
                if len(reply) < 4 or crc_ascii(crc16(reply, 0, len(reply) - 3)) != reply[-3:]:
                    last = "CRC mismatch in %r" % reply
                    continue     # §4.4.12: ask for the data again
                reply = reply[:-3]
            try:
                return split_values(reply[1:])
            except ValueError as e:
                last = str(e)
        raise SensorError(self.part, "%s: %s" % (cmd.decode(), last))

    def measure(self, address, crc=True):
        """A whole measurement: aM!/aMC!, the service request, then aD0!, aD1!... until
        the n values announced have come. Returns (values, raw) with raw the value
        fields as sent (for a caller that checks for a stuck sensor)."""
        seconds, n = self.start(address, crc)
        if n == 0:
            raise SensorError(self.part, "measurement at %s gives no values" % address)
        if not self.wait_service_request(address, seconds):
            # §4.4.6: without the service request the recorder asks once ttt has passed.
            pass
        values = []
        raw = b""
        for index in range(10):
            got = self.data(address, index, crc)
            if not got:
                break
            values.extend(got)
            raw += b"".join(got)
            if len(values) >= n:
                break
        if len(values) != n:
            raise SensorError(self.part, "%d values announced, %d came" % (n, len(values)))
        return values, raw
