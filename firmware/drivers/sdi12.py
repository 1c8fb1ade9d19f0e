"""SDI-12 data recorder (master) on a UART behind a one-wire SDI-12 adapter.

    bus = SDI12(machine.UART(1, tx=Pin(4), rx=Pin(5)), echo=True)
    values, raw = bus.measure("0")      # break, aMC!, service request, aD0!... -> [b"+25.60", ...]

Follows the SDI-12 specification v1.4 (and v1.3, 2016, which the reference quotes):
§4.2 1200 baud, 7 data bits, even parity, 1 stop bit (MicroPython `bits=7, parity=0`);
§7.1 break >= 12 ms, then >= 8.33 ms marking before the command, sensor reply within
15 ms of the command's stop bit, sensors asleep after 100 ms of marking; §7.2 retries
(a command unanswered after 16.67 ms is repeated within 87 ms, three times, then the
whole break-command sequence again, three sequences in all); §4.4.6 `aM!`/`aMC!` answer
`atttn`, the service request `a<CR><LF>` when data is ready; §4.4.8 `aD0!`..`aD9!`
until n values arrived; §4.4.12 CRC-16/ARC (poly 0xA001, init 0) in 3 ASCII chars.

The break: `UART.sendbreak()` holds TX low for 13 bit times on the RP2040 port (and
for one 0x00 at 0.4x the baud rate on ESP32), only 10.8 ms at 1200 baud; the driver
drops the UART to 600 baud for the break (21.7 ms) and returns to 1200 baud.

The adapter: a one-wire interface (TX and RX both on the data line) hears its own
command (`echo=True`): the driver skips the echo when it waits for a reply's first
character and strips it from the front of the reply line. `echo=False` for an adapter
that gates RX off while the node transmits.
"""
from micropython import const
import time

from drivers import SensorError

try:
    from node import watchdog   # fed where the driver waits long or makes progress
except ImportError:             # the driver on its own, outside a node
    watchdog = None

_BAUD = const(1200)
_BREAK_BAUD = const(600)       # 13 bit times at 600 baud: 21.7 ms >= 12 ms (§7.1)
_MARK_MS = const(9)            # >= 8.33 ms marking after the break (§7.1)
_CHAR_US = const(8334)         # 1 start + 7 data + 1 parity + 1 stop at 1200 baud
_START_MS = const(25)           # first reply char complete: 15 ms to its start bit + 8.33 ms (§7.1)
_TRIES = const(4)               # the command and 3 retries without a break, 16.67..87 ms apart (§7.2)
_SEQUENCES = const(3)           # then break and repeat: the whole sequence three times (§7.2)
_POLL_MS = const(10)            # a look for a reply's start; a reply of 3 characters takes 25 ms,
                                # so it is still coming in when seen, and readline takes it whole
_SRQ_SLACK_MS = const(100)      # beyond ttt seconds, for the service request a<CR><LF>
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

    def __init__(self, uart, echo=True, part=PART, sequences=_SEQUENCES):
        self.uart = uart
        self.echo = echo          # the adapter lets the node hear its own command
        self.part = part
        self.sequences = sequences

    # --- the line -----------------------------------------------------------------
    def _init(self, baudrate, timeout_ms):
        self.uart.init(baudrate=baudrate, bits=7, parity=0, stop=1,
                       timeout=timeout_ms, timeout_char=timeout_ms)

    def _break(self, timeout_ms):
        """Break, then marking (§7.1). Every transaction starts so (the SMT100 wants a
        break before aD0! too, reference §2.3), so it never matters which sensor the
        line last spoke to or whether it has fallen asleep."""
        self.uart.flush()         # the last command fully out before the line drops
        self._init(_BREAK_BAUD, timeout_ms)
        self.uart.sendbreak()
        self._init(_BAUD, timeout_ms)
        time.sleep_ms(_MARK_MS)

    def _reply_started(self, cmd, wait_ms):
        """Whether a reply character came within `wait_ms` of writing `cmd` (the echo of
        the command, when the adapter gives one, does not count)."""
        heard = len(cmd) if self.echo else 0
        start = time.ticks_ms()
        while self.uart.any() <= heard:
            left = wait_ms - time.ticks_diff(time.ticks_ms(), start)
            if left <= 0:
                return False
            time.sleep_ms(left if left < _POLL_MS else _POLL_MS)
        return True

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

        §7.2: when no reply starts within 16.67 ms of the command (checked at 25 ms,
        the first character complete), the command is repeated at once, three times
        within 87 ms of the last, then after a new break; three such sequences.
        SensorError when none brought a valid reply."""
        cmd_ms = (len(cmd) * _CHAR_US + 999) // 1000
        line_ms = (reply_chars + 2) * _CHAR_US // 1000 + _START_MS
        for _ in range(self.sequences):
            self._break(line_ms)
            for _ in range(_TRIES):
                self._flush()
                self.uart.write(cmd)
                if not self._reply_started(cmd, cmd_ms + _START_MS):
                    continue
                reply = self._line(cmd)
                if reply is not None and (cmd[0] == 0x3F or reply[0] == cmd[0]):
                    for c in reply:
                        # printable ASCII, and 0x7F, which a CRC character can be (§4.4.12)
                        if not 0x20 <= c <= 0x7F:
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
        start = time.ticks_ms()
        limit = seconds * 1000 + _SRQ_SLACK_MS
        if watchdog is not None:
            watchdog.expect(limit)  # the sensor's ttt: may be past the timeout
        while True:
            # Blocks until the line ends or the UART's timeout (the last transaction's line
            # time) passes: the request is taken as it comes, with no polling.
            line = self.uart.readline()
            if line:
                return line.rstrip() == address.encode()
            if time.ticks_diff(time.ticks_ms(), start) >= limit:
                return False
            if watchdog is not None:
                watchdog.waiting()

    def data(self, address, index, crc=True):
        """`aDn!`: the value fields of one reply (CRC checked and removed)."""
        cmd = ("%sD%d!" % (address, index)).encode()
        last = "no answer"
        for _ in range(_SEQUENCES):
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
