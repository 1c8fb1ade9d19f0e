"""AT command transport: one command at a time over a UART, its value lines and status word
back, asynchronous event lines kept in a small queue for later.

    at = AT(machine.UART(1, 115200, timeout=50), ("OK", "AT_ERROR"))
    at.command("AT+NJS=?", 1000)          # -> ["AT+NJS=1"]

The UART needs `timeout=` (ms) so that `readline()` blocks at most that long; it may return a
partial line then, which is kept until its newline comes. Dialect-neutral: the status words,
the success word, the event prefixes and the line terminator are parameters, so the RAK3172,
Wio-E5 and RN2483 dialects share this core. Noise is tolerated: bytes outside printable ASCII
are dropped from a line, empty lines are skipped, lines that are neither status nor event are
handed to the caller (or counted as strays when nobody asked).
"""
from micropython import const
import time

from node import watchdog

_MAX_LINE = const(1100)      # longest line kept (a 242-byte downlink in hex is ~520 characters)
# A quiet line is watched in steps this long, not polled every millisecond: at 115200 baud
# 115 bytes arrive in 10 ms, under half of the port's 256-byte receive buffer
# (ports/rp2/machine_uart.c, DEFAULT_BUFFER_SIZE), so nothing is lost between two looks.
_QUIET_STEP_MS = const(10)


def _starts(line, prefixes):
    # str.startswith(tuple) is not in every port's build: test the prefixes one by one.
    for p in prefixes:
        if line.startswith(p):
            return True
    return False


class ATError(Exception):
    """A command that did not end in the success word.

    `status` is the status word ("timeout" when none came), `command` the command's name
    (never its parameters, which may be keys), `lines` what else the modem said meanwhile
    (a dialect may explain an error there, e.g. RUI3's Restricted_Wait)."""

    def __init__(self, status, command="", lines=()):
        command = command.split("=")[0]
        super().__init__(status, command)
        self.status = status
        self.command = command
        self.lines = lines


class ATTimeout(ATError):
    def __init__(self, command="", lines=()):
        super().__init__("timeout", command, lines)


class AT:
    def __init__(self, uart, status_words, ok="OK", event_prefixes=("+EVT:",), eol=b"\r\n",
                 max_events=8):
        self._uart = uart
        self._status = status_words
        self._ok = ok
        self._event_prefixes = tuple(event_prefixes)
        self._eol = eol
        self._max_events = max_events
        self.events = []          # event lines, oldest first
        self.dropped_events = 0   # pushed out of a full queue
        self.strays = 0           # lines nobody asked for
        self.noisy_lines = 0      # lines that carried non-printable bytes
        self._lines = []          # complete lines read but not yet consumed
        self._partial = b""

    # --- writing ---------------------------------------------------------------
    def write_line(self, cmd):
        """Send `cmd` without waiting for an answer."""
        self._uart.write(cmd.encode() + self._eol)

    def command(self, cmd, timeout_ms):
        """Send `cmd`; return its value lines once the success word arrives.

        Raises ATError(status) for another status word and ATTimeout when none comes within
        `timeout_ms`. Events arriving meanwhile are queued, not returned."""
        self.drain()
        self.write_line(cmd)
        start = time.ticks_ms()
        watchdog.expect(timeout_ms)
        lines = []
        while time.ticks_diff(time.ticks_ms(), start) < timeout_ms:
            watchdog.waiting()
            line = self._line()
            if line is None:
                continue
            if line in self._status:
                watchdog.progress()     # the modem answered
                if line == self._ok:
                    return lines
                raise ATError(line, cmd, lines)
            lines.append(line)
        raise ATTimeout(cmd, lines)

    # --- events ----------------------------------------------------------------
    def take_event(self, prefixes):
        """Remove and return the oldest queued event starting with one of `prefixes`."""
        if isinstance(prefixes, str):
            prefixes = (prefixes,)
        for i, line in enumerate(self.events):
            if _starts(line, prefixes):
                return self.events.pop(i)
        return None

    def wait_event(self, prefixes, timeout_ms):
        """The oldest event starting with one of `prefixes` (a str or a tuple), queued or
        arriving within `timeout_ms`; None when none does. Other events stay queued."""
        start = time.ticks_ms()
        watchdog.expect(timeout_ms)     # e.g. a join's RX windows: fed while they last
        while True:
            line = self.take_event(prefixes)
            if line is not None:
                watchdog.progress()
                return line
            if time.ticks_diff(time.ticks_ms(), start) >= timeout_ms:
                return None
            watchdog.waiting()
            if self._line() is not None:
                self.strays += 1

    def drain(self, quiet_ms=0):
        """Read what has arrived until the line stays quiet for `quiet_ms`; events are queued,
        the other lines returned (a caller may want to know that something stray came).
        Not fed: on a line that never goes quiet this does not return, and the watchdog
        ends it."""
        strays = []
        start = time.ticks_ms()
        while True:
            if self._lines or self._uart.any():
                line = self._line()
                if line is not None:
                    strays.append(line)
                    self.strays += 1
                start = time.ticks_ms()
                continue
            left = quiet_ms - time.ticks_diff(time.ticks_ms(), start)
            if left <= 0:
                return strays
            time.sleep_ms(left if left < _QUIET_STEP_MS else _QUIET_STEP_MS)

    # --- reading ---------------------------------------------------------------
    def _line(self):
        """The next complete non-event line, or None after one UART read without one."""
        while self._lines or self._fill():
            line = self._lines.pop(0)
            if _starts(line, self._event_prefixes):
                if len(self.events) >= self._max_events:
                    self.events.pop(0)
                    self.dropped_events += 1
                self.events.append(line)
                continue
            return line
        return None

    def _fill(self):
        raw = self._uart.readline()
        if not raw:
            time.sleep_ms(1)      # never spin on a UART created without a timeout
            return False
        data = self._partial + raw
        if data[-1:] != b"\n":
            self._partial = data[-_MAX_LINE:]
            return False
        self._partial = b""
        for seg in data.split(b"\r"):
            seg = seg.strip(b"\n")
            clean = bytes(b for b in seg if 32 <= b < 127)
            if len(clean) != len(seg):
                self.noisy_lines += 1
            if clean:
                self._lines.append(clean.decode())
        return bool(self._lines)
