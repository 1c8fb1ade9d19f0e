"""Seeed LoRa-E5 / Wio-E5 LoRaWAN module, factory AT firmware, on its UART (9600 8N1).

    modem = WioE5(machine.UART(0, 9600, timeout=100, timeout_char=10))
    modem.wake(); modem.configure(dev_eui, join_eui, app_key); modem.join(); modem.send(2, data)

Follows the Seeed "LoRa-E5 AT Command Specification" V1.0 (RisingHF PS01509 family), as
summarised with its sources in docs/modems/wioe5.md:
- every reply line echoes the command's name, `+NAME: ...`; an error is `+NAME: ERROR(n)`;
  there is no status word, so the AT transport is used with every `+` line as a tagged
  line (`event_prefixes=("+",)`) and the driver waits for the lines of its command;
- AT+JOIN and AT+MSGHEX/AT+CMSGHEX report a transaction `Start` ... `Done`; a refusal
  (`Please join network first`, `LoRaWAN modem is busy`, `Length error <n>`,
  `No band in <ms>ms`, `No free channel`, `DR error`) is one line and nothing goes on air;
- the FPort is the sticky setting AT+PORT, not an argument: it is set before a send that
  needs another one;
- AT+LOWPOWER sleeps until the UART wakes the module; the line that wakes it is lost and
  `+LOWPOWER: WAKEUP` follows, so `wake` sends `FF FF FF FF AT` (the spec's wake-up
  sequence), then `AT` again after the pause the spec asks for;
- the module has no join-status query: AT+JOIN answers `Joined already` without
  transmitting. `joined()` therefore says True only when the module woke from the sleep
  this driver put it in and its user EEPROM (AT+EEPROM) marks a session joined with the
  configured AppKey; otherwise False, and `join()` then costs no airtime if the session is
  still there;
- the AppKey is write-only: `configure` keeps the AppKey's check value (KCV, AES of a zero
  block, 3 bytes, as host_tools/keys.py) in the module's EEPROM to write the key only when
  it changed, and rejoins (AT+JOIN=FORCE) when the credentials changed;
- a module at another baud rate (AT+UART=BR) is found by trying the spec's rates; the
  driver talks at the found rate and sets the board's rate back for the module's next
  restart (AT+UART=BR takes effect at a restart);
- a module reboot shows as a lost session: `Please join network first` after a join this
  driver saw; it is counted in `resets`. The module prints no banner.
"""
import binascii
import time

import cryptolib
from micropython import const

from modems import (BUSY, NOT_ACKED, NOT_JOINED, NO_ANSWER, REFUSED, RESTRICTED, SENT,
                    TIMEOUT, TOO_BIG, ModemError)
from modems.at import AT

_BAUD_RATES = (9600, 115200, 57600, 38400, 19200, 14400, 76800, 230400)
_WAKE_PREFIX = b"\xff\xff\xff\xff"
_WAKE_PAUSE_MS = const(10)        # spec 4.30: wait after WAKEUP before the next command
_CMD_MS = const(1000)
_QUIET_MS = const(30)
_BOOT_MS = const(3000)
_MAX_DOWNLINKS = const(8)
_NO_CHANNEL_WAIT_MS = const(2000)  # "No free channel" says no wait: a best estimate
_UART_TIMEOUT_MS = const(100)     # as node/board.py opens the UART
# The module's user EEPROM (AT+EEPROM): our session marker.
_EE_KCV = const(0)                # 3 bytes: KCV of the AppKey last written
_EE_JOINED = const(3)             # 1: a session was joined with that key
_BUSY = "LoRaWAN modem is busy"


def _hex(data):
    return binascii.hexlify(data).decode().upper()


def _kcv(key):
    return cryptolib.aes(bytes(key), 1).encrypt(bytes(16))[:3]


def _value(line, name):
    """The text after `+NAME: `, or None when the line is not NAME's."""
    head = "+" + name + ":"
    if not line.startswith(head):
        return None
    return line[len(head):].strip()


def _int(s):
    s = s.strip()
    if not s.isdigit():
        raise ValueError(s)
    return int(s)


def _dr(s):
    # EU868 DR0..7, as data_rate() promises (modems/__init__.py): `DR99` is garbled
    v = _int(s)
    if v > 7:
        raise ValueError(s)
    return v


class WioE5:
    def __init__(self, uart, baudrate=9600):
        self._uart = uart
        self._baud = baudrate             # the board's rate
        self._at = AT(uart, (), ok="", event_prefixes=("+",), max_events=16)
        self.downlinks = []       # (port, bytes), oldest first; the caller pops them
        self.resets = 0           # reboots seen: a session this driver knew was gone
        self.bad_events = 0
        self._woke = False        # the module answered WAKEUP: it slept since we left it
        self._joined = None       # known session state (None: unknown)
        self._had_session = False  # this driver saw the module hold a session
        self._rejoin = False      # credentials changed: the next join is a forced one
        self._changed = False
        self._port = None

    # --- link ------------------------------------------------------------------
    def wake(self, tries=4):
        """Make sure the module listens (waking it, finding its baud rate if needed)."""
        if self._hello(tries):
            return
        here = self._baud
        for rate in _BAUD_RATES:
            if rate == here:
                continue
            self._reinit(rate)
            if self._hello(2):
                # Talk at its rate now; the board's rate comes back at its next restart.
                try:
                    self._ask("AT+UART=BR, %d" % here, "UART")
                except ModemError:
                    pass
                return
        self._reinit(here)
        raise ModemError(NO_ANSWER, "no answer to AT")

    def sleep(self, ms=0):
        """AT+LOWPOWER: asleep until the next `wake` (the module needs no timer)."""
        line = self._ask("AT+LOWPOWER", "LOWPOWER")
        if line != "SLEEP":
            raise ModemError(REFUSED, "AT+LOWPOWER")

    def reset(self, boot_ms=_BOOT_MS):
        """AT+RESET and wait until the module answers again; the session is gone, IDs,
        keys and settings stay in its flash."""
        self._ask("AT+RESET", "RESET")
        self._woke = False
        start = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), start) < boot_ms:
            if self._hello(1):
                self._set_joined(False)
                return
        raise ModemError(NO_ANSWER, "no answer after AT+RESET")

    # --- settings ----------------------------------------------------------------
    def configure(self, dev_eui, join_eui, app_key, dr=None, adr=True):
        """OTAA on EU868 with these keys; writes only what differs (flash wear)."""
        if len(dev_eui) != 8 or len(join_eui) != 8 or len(app_key) != 16:
            raise ValueError("DevEUI and JoinEUI are 8 bytes, AppKey 16")
        self._changed = False
        if self._ask("AT+MODE", "MODE") != "LWOTAA":
            self._change("AT+MODE=LWOTAA", "MODE", "LWOTAA")
        if self._ask("AT+DR=SCHEME", "DR") != "EU868":
            self._change("AT+DR=EU868", "DR", "EU868")
        for label, eui in (("DevEui", dev_eui), ("AppEui", join_eui)):
            want = "%s, %s" % (label, ":".join(_hex(eui[i:i + 1]) for i in range(8)))
            if self._ask("AT+ID=" + label, "ID") != want:
                self._change("AT+ID=%s,\"%s\"" % (label, _hex(eui)), "ID", want)
        kcv = _kcv(app_key)
        if self._eeprom(_EE_KCV, 3) != kcv:
            self._change_credentials()
            line = self._ask("AT+KEY=APPKEY,\"%s\"" % _hex(app_key), "KEY")
            if not line.startswith("APPKEY"):
                raise ModemError(REFUSED, "AT+KEY")     # never the reply: it holds the key
            for i in range(3):
                self._eeprom_write(_EE_KCV + i, kcv[i])
        if self._ask("AT+RETRY", "RETRY") not in ("0", "1"):
            self._expect("AT+RETRY=0", "RETRY", "0")   # one transmission: the node retries
        want = "ON" if adr else "OFF"
        if self._ask("AT+ADR", "ADR") != want:
            self._expect("AT+ADR=" + want, "ADR", want)
        if dr is not None and self._dr_setting() != dr:
            self._ask("AT+DR=DR%d" % dr, "DR")
            if self._dr_setting() != dr:
                raise ModemError(REFUSED, "AT+DR")

    def _change(self, cmd, name, want):
        self._change_credentials()
        self._expect(cmd, name, want)

    def _change_credentials(self):
        # The session (if any) is of the old credentials: mark it gone before the first
        # write, so that a cut in between cannot leave a marker that lies.
        if not self._changed:
            self._changed = True
            self._rejoin = True
            self._set_joined(False)

    def data_rate(self):
        """The data rate in use (ADR's when it moved it)."""
        first = self._ask("AT+DR", "DR", lines=2)[0]
        try:
            if "(ADR DR" in first:
                return _dr(first.split("(ADR DR")[1].rstrip(")"))
            if first.startswith("DR"):
                return _dr(first[2:])
        except ValueError:
            pass
        raise ModemError(REFUSED, "AT+DR=" + first)

    def max_payload(self):
        """AT+LW=LEN: the room now, MAC commands waiting to ride along included."""
        v = self._ask("AT+LW=LEN", "LW")
        try:
            if v.startswith("LEN,"):
                return _int(v[4:])
        except ValueError:
            pass
        raise ModemError(REFUSED, "AT+LW=LEN")

    # --- network -------------------------------------------------------------------
    def joined(self):
        if self._joined is None:
            self._joined = self._woke and self._eeprom(_EE_JOINED, 1) == b"\x01"
            self._had_session = self._joined
        return self._joined

    def join(self, timeout_ms=20000):
        """One OTAA join: True joined (or still joined), False no accept."""
        cmd = "AT+JOIN=FORCE" if self._rejoin else "AT+JOIN"
        ok = None
        for v in self._transaction(cmd, "JOIN", timeout_ms):
            if v == "Joined already":
                ok = True
                break
            if v == "Not in OTAA mode":
                raise ModemError(REFUSED, "AT+JOIN: not in OTAA mode")
            if v == "Network joined":
                ok = True
            elif v == "Join failed":
                ok = False
            elif v == "Done":
                break
        if ok is None:
            raise ModemError(TIMEOUT, "no join result")
        self._rejoin = self._rejoin and not ok
        self._set_joined(ok)
        return ok

    def send(self, port, data, confirmed=False, timeout_ms=30000):
        """Uplink `data` on `port`: SENT or NOT_ACKED, else a ModemError."""
        if not 1 <= port <= 223:
            raise ValueError("port is 1..223")
        if self._port is None:
            self._port = self._int_reply("AT+PORT", "PORT")
        if self._port != port:
            self._expect("AT+PORT=%d" % port, "PORT", str(port))
            self._port = port
        name = "CMSGHEX" if confirmed else "MSGHEX"
        acked = False
        done = False
        for v in self._transaction("AT+%s=\"%s\"" % (name, _hex(data)), name, timeout_ms):
            if v == "Please join network first":
                if self._had_session:
                    self.resets += 1      # only a restart ends an OTAA session here
                    self._had_session = False
                self._forget_session()
                raise ModemError(NOT_JOINED, "AT+" + name)
            if v.startswith("Length error"):
                raise ModemError(TOO_BIG, "AT+%s %d bytes" % (name, len(data)))
            if v == "ACK Received":
                acked = True
            elif v.startswith("PORT:"):
                self._downlink(v)
            elif v == "Done":
                done = True
                break
        if not done:
            # The module may have restarted mid-transaction: trust no session marker.
            self._forget_session()
            raise ModemError(TIMEOUT, "no Done to AT+" + name)
        self._joined = self._had_session = True
        return NOT_ACKED if confirmed and not acked else SENT

    # --- internals -----------------------------------------------------------------
    def _reinit(self, rate):
        self._uart.init(baudrate=rate, timeout=_UART_TIMEOUT_MS, timeout_char=10)

    def _hello(self, tries):
        """AT until `+AT: OK` with a quiet line behind it; notes a wake from sleep."""
        for i in range(tries):
            self._flush()
            if i == 0:
                self._uart.write(_WAKE_PREFIX)
            self._at.write_line("AT")
            line = self._at.wait_event(("+AT:", "+LOWPOWER: WAKEUP"), 500)
            if line == "+LOWPOWER: WAKEUP":
                self._woke = True
                time.sleep_ms(_WAKE_PAUSE_MS)
                continue
            if line == "+AT: OK" and not self._at.drain(_QUIET_MS):
                return True
        return False

    def _flush(self):
        self._at.drain()
        del self._at.events[:]

    def _lines(self, cmd, timeout_ms):
        """Send `cmd`; yield each `+` line as it comes until `timeout_ms` passes."""
        self._flush()
        self._at.write_line(cmd)
        start = time.ticks_ms()
        while True:
            left = timeout_ms - time.ticks_diff(time.ticks_ms(), start)
            if left <= 0:
                return
            line = self._at.wait_event("+", left)
            if line is None:
                return
            yield line

    def _ask(self, cmd, name, lines=1, timeout_ms=_CMD_MS):
        """The value of NAME's reply line (a list of `lines` values if more than one)."""
        what = cmd.split("=")[0].split(" ")[0]      # never the value: it may be a key
        got = []
        for line in self._lines(cmd, timeout_ms):
            v = _value(line, name)
            if v is None:
                if line.endswith(_BUSY):
                    raise ModemError(BUSY, what)
                continue                  # a stray line (garbage, a late WAKEUP)
            if v.startswith("ERROR("):
                raise ModemError(REFUSED, "%s %s" % (what, v))
            if v == _BUSY:
                raise ModemError(BUSY, what)
            got.append(v)
            if len(got) == lines:
                return got[0] if lines == 1 else got
        raise ModemError(TIMEOUT, what)

    def _expect(self, cmd, name, want):
        if self._ask(cmd, name) != want:
            raise ModemError(REFUSED, cmd.split("=")[0])

    def _int_reply(self, cmd, name):
        v = self._ask(cmd, name)
        try:
            return _int(v)
        except ValueError:
            raise ModemError(REFUSED, cmd)

    def _dr_setting(self):
        first = self._ask("AT+DR", "DR", lines=2)[0]
        try:
            return _int(first.split(" ")[0][2:]) if first.startswith("DR") else None
        except ValueError:
            return None

    def _transaction(self, cmd, name, timeout_ms):
        """The values of NAME's lines of a JOIN or MSGHEX transaction; refusals raise."""
        what = cmd.split("=")[0]
        for line in self._lines(cmd, timeout_ms):
            v = _value(line, name)
            if v is None:
                continue
            if v.startswith("ERROR("):
                raise ModemError(REFUSED, "%s %s" % (what, v))
            if v == _BUSY:
                raise ModemError(BUSY, what)
            if v.startswith("No band in"):
                raise ModemError(RESTRICTED, what, _band_ms(v))
            if v == "No free channel":
                raise ModemError(RESTRICTED, what, _NO_CHANNEL_WAIT_MS)
            if v == "DR error":
                raise ModemError(REFUSED, what + " DR error")
            yield v

    def _eeprom(self, addr, n):
        out = bytearray()
        for a in range(addr, addr + n):
            v = self._ask("AT+EEPROM=%02X" % a, "EEPROM")
            parts = v.split(",")
            try:
                if len(parts) != 2 or int(parts[0], 16) != a:
                    raise ValueError(v)
                out.append(int(parts[1].strip(), 16) & 0xFF)
            except ValueError:
                raise ModemError(REFUSED, "AT+EEPROM")
        return bytes(out)

    def _eeprom_write(self, addr, value):
        self._ask("AT+EEPROM=%02X,%02X" % (addr, value), "EEPROM")

    def _set_joined(self, joined):
        """Keep the session marker in the module's EEPROM (written only on change)."""
        self._joined = joined
        self._had_session = self._had_session or joined
        if self._eeprom(_EE_JOINED, 1) != (b"\x01" if joined else b"\x00"):
            self._eeprom_write(_EE_JOINED, 1 if joined else 0)

    def _forget_session(self):
        # Best effort: the error that brought us here is the one to report.
        self._joined = False
        try:
            self._set_joined(False)
        except ModemError:
            pass

    def _downlink(self, v):
        # PORT: <n>; RX: "<HEX>"
        try:
            port_s, rx = v[5:].split(";", 1)
            port = _int(port_s)
            rx = rx.strip()
            if port > 255 or not rx.startswith("RX:"):
                raise ValueError(v)
            data = binascii.unhexlify(rx[3:].strip().strip('"'))
        except ValueError:
            self.bad_events += 1
            return
        if len(self.downlinks) >= _MAX_DOWNLINKS:
            self.downlinks.pop(0)
        self.downlinks.append((port, data))


def _band_ms(v):
    # "No band in <ms>ms": digits only, so a garbled line never gives a negative wait
    s = v[len("No band in"):].strip()
    if s.endswith("ms"):
        s = s[:-2]
    return int(s) if s.isdigit() else _NO_CHANNEL_WAIT_MS
