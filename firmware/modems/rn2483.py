"""Microchip RN2483 LoRaWAN module (firmware 1.0.x) over its UART (57600 8N1, auto-baud).

    modem = RN2483(machine.UART(0, 57600, timeout=100, timeout_char=10))
    modem.wake(); modem.configure(dev_eui, join_eui, app_key); modem.join(); modem.send(2, data)

Follows the "RN2483 LoRa Technology Module Command Reference User's Guide" (DS40001784;
reference: /work/shared/reference/lorawan-modems.md §1.3, §3.2). Not AT commands: `sys`,
`mac`, `radio` lines ending in CR LF, one reply line each; `mac join` and `mac tx` answer
twice, `ok` at once and the result after the receive windows (`accepted`/`denied`,
`mac_tx_ok`/`mac_rx <port> <hex>`/`mac_err`/`invalid_data_len`).

What this driver does the RN2483's way:
- wake: the module sleeps (`sys sleep`) between wakes and only a break followed by 0x55
  wakes it early; the same sequence makes it measure the baud rate (auto-baud), so every
  wake sends it and any baud mismatch is gone. A CR LF then ends whatever half line the
  module holds, and `sys get ver` must answer with the `RN2483 ` banner.
- session across module resets: the session lives in the module's RAM, `mac save` copies
  it to EEPROM with the frame counters, and after a reset `mac join abp` resumes it. A
  counter that restarted from an old saved value would be refused by the network server
  as a replay, so the driver saves whenever FCntUp crosses a multiple of SAVE_EVERY (16)
  and, when it resumes, first moves FCntUp RESUME_SKIP (32) past the saved value: every
  counter used since the last save is below saved + 16, and a gap of 32 is far inside the
  server's window (16384). 96 uplinks a day cost 6 saves a day, about 2200 a year, against
  the 100k erase/write cycles a PIC18 data EEPROM byte is rated for: decades. A session is
  resumed only for the keys it was joined with (a 4-byte fingerprint of the EUIs and AppKey,
  AES(AppKey, DevEUI | JoinEUI), in the module's user EEPROM at 0x300), and the first uplink
  after a resume goes confirmed: no ACK means the network no longer knows that session,
  the driver forgets it and resets the module, and the node joins anew (OTAA).
- duty cycle: the RN2483 answers `no_free_ch` and does not say how long. The driver keeps
  the start and airtime of its own transmissions of this wake; each channel is off for
  airtime x (dcycle + 1) (`mac get ch dcycle 0`, 302 on the default channels), so with its
  three channels blocked the wait is the soonest of the last three to end. When the
  blockers are unknown (earlier wakes), the estimate is this frame's own airtime x
  (dcycle + 1): the node sends frames of one size.
- payload limit per DR: the guide's table (51/51/51/115/222/222), checked before `mac tx`.
- `mac get status`: bit 0 is "joined" in the 16-bit word of firmware 1.0.1, bit 4 in the
  32-bit word of 1.0.3 and later; the word's length tells which.
`send` returns SENT or NOT_ACKED; anything else is a ModemError (modems/__init__.py).
"""
import binascii
import time

from cryptolib import aes
from micropython import const

from modems import (BUSY, NOT_ACKED, NOT_JOINED, NO_ANSWER, REFUSED, RESTRICTED, SENT,
                    TIMEOUT, TOO_BIG, ModemError)
from modems.at import AT
from node import watchdog
from node.airtime import toa_us

_BANNER = "RN2483 "
_MAX_PAYLOAD = (51, 51, 51, 115, 222, 222, 222, 222)
SAVE_EVERY = const(16)
RESUME_SKIP = const(32)
_U32 = const(0xFFFFFFFF)
_NVM_FP = const(0x300)
_CMD_MS = const(1000)
_SAVE_MS = const(15000)        # EEPROM writes are slow (TTN saw `mac save` take seconds)
_QUIET_MS = const(30)
_MAX_DOWNLINKS = const(8)
_JOIN_PHY = const(23)          # join request: MHDR, JoinEUI, DevEUI, DevNonce, MIC
_OVERHEAD = const(13)          # data frame: MHDR, FHDR, FPort, MIC
_CHANNELS = const(3)           # the EU868 default channels every RN2483 has on
_RESULTS = ("accepted", "denied", "mac_tx_ok", "mac_rx ", "mac_err", "invalid_data_len")


def _hex(data):
    return binascii.hexlify(data).decode().upper()


def _name(cmd):
    # The command without its value (which may be a key): "mac set appkey", "mac tx cnf".
    return " ".join(cmd.split(" ")[:3])


def _is_hex(v, n):
    return len(v) == n and all(c in "0123456789ABCDEFabcdef" for c in v)


def _is_uint(v):
    return 0 < len(v) <= 10 and v.isdigit()


def _word(v):
    return v in _WORDS


def _is_result(v):
    for r in _RESULTS:
        if v.startswith(r):
            return True
    return False


# What a `get` answers, by its name: anything else on the line is noise, not the value.
_VALUES = {
    "deveui": lambda v: _is_hex(v, 16),
    "appeui": lambda v: _is_hex(v, 16),
    "devaddr": lambda v: _is_hex(v, 8),
    "dr": lambda v: len(v) == 1 and "0" <= v <= "7",      # EU868 DR0..7: `8` is noise
    "adr": lambda v: v in ("on", "off"),
    "retx": _is_uint,
    "upctr": _is_uint,
    "ch dcycle 0": _is_uint,
    "status": lambda v: len(v) in (4, 8) and _is_hex(v, len(v)),
}
# Replies that answer a command by themselves (2.4: `mac set`, `mac join`, `mac tx`, ...).
_WORDS = ("ok", "invalid_param", "keys_not_init", "no_free_ch", "silent", "busy",
          "mac_paused", "not_joined", "frame_counter_err_rejoin_needed", "invalid_data_len")


class _Wire(AT):
    """The shared line reader, for a dialect where every command answers one line."""

    def next_line(self, timeout_ms):
        start = time.ticks_ms()
        while time.ticks_diff(time.ticks_ms(), start) < timeout_ms:
            line = self._line()
            if line is not None:
                return line
        return None


class RN2483:
    def __init__(self, uart):
        self._uart = uart
        self._at = _Wire(uart, (), event_prefixes=(_BANNER,))
        self.downlinks = []       # (port, bytes), oldest first; the caller pops them
        self.resets = 0           # unasked banners: each one cost the module its RAM session
        self.bad_events = 0
        self.version = None
        self._fp = None           # fingerprint of the configured keys
        self._verify = False      # the session was resumed: the next uplink goes confirmed
        self._sent = []           # (ticks_ms, airtime_us) of this wake's transmissions

    # --- link ------------------------------------------------------------------
    def wake(self, tries=4):
        """Break + 0x55 (wakes the module, re-measures the baud rate), then the banner."""
        for _ in range(tries):
            self._uart.sendbreak()
            self._uart.write(b"\x55")
            self._at.write_line("")      # ends any half line; its invalid_param is a stray
            self._at.drain(_QUIET_MS)
            self._scan()
            self._at.write_line("sys get ver")
            line = self._at.wait_event((_BANNER,), 500)
            if line is not None:
                self.version = line
                return
        raise ModemError(NO_ANSWER, "no banner after break + 0x55")

    def sleep(self, ms):
        """`sys sleep`: its `ok` comes when the module wakes, and `wake` absorbs it."""
        self._at.drain()
        self._at.write_line("sys sleep %d" % min(max(ms, 100), _U32))
        self._uart.flush()            # out of the TX FIFO before the MCU sleeps too

    def reset(self, boot_ms=3000):
        """`sys reset`: the banner answers; RAM (and so the session) is gone, the EEPROM
        stays. The UART is back at 57600, so `wake` re-syncs."""
        self._at.drain()
        self._scan()
        self._at.write_line("sys reset")
        if self._at.wait_event((_BANNER,), boot_ms) is None:
            raise ModemError(TIMEOUT, "sys reset")
        self.wake()

    # --- settings ----------------------------------------------------------------
    def configure(self, dev_eui, join_eui, app_key, dr=None, adr=True):
        """OTAA on EU868 with these keys. `mac set` only changes the module's RAM (the
        EEPROM is written by `mac save`, at a join and every SAVE_EVERY uplinks), so
        nothing here wears it; still only what differs is written."""
        if len(dev_eui) != 8 or len(join_eui) != 8 or len(app_key) != 16:
            raise ValueError("DevEUI and JoinEUI are 8 bytes, AppKey 16")
        self._fp = aes(bytes(app_key), 1).encrypt(bytes(dev_eui) + bytes(join_eui))[:4]
        self._ensure("deveui", _hex(dev_eui))
        self._ensure("appeui", _hex(join_eui))
        self._ok("mac set appkey " + _hex(app_key))      # write-only: cannot be compared
        if dr is not None and self.data_rate() != dr:
            self._ok("mac set dr %d" % dr)
        self._ensure("adr", "on" if adr else "off")
        # The node resends what was not acknowledged on its next wake: no retries in the
        # module, whose retransmissions would wait out the duty cycle for minutes.
        self._ensure("retx", "0")

    def data_rate(self):
        return int(self._get("dr"))

    def max_payload(self):
        return _MAX_PAYLOAD[self.data_rate()]

    # --- network -------------------------------------------------------------------
    def joined(self):
        v = self._get("status")
        return bool(int(v, 16) & (1 if len(v) == 4 else 0x10))

    def join(self, timeout_ms=20000):
        """Resume the session saved for these keys (`mac join abp`), else one OTAA attempt:
        True joined, False no accept."""
        if self._resume():
            return True
        dr = self.data_rate()
        reply = self._start("mac join otaa", _JOIN_PHY, dr)
        if reply != "ok":
            raise self._error(reply, "mac join otaa", _JOIN_PHY, dr)
        result = self._result(timeout_ms, "mac join otaa")
        if result != "accepted":
            if result == "denied":
                return False
            raise ModemError(REFUSED, "mac join otaa: " + result[:20])
        self._verify = False
        self._persist()
        return True

    def send(self, port, data, confirmed=False, timeout_ms=20000):
        """Uplink `data` on `port`: SENT or NOT_ACKED, else a ModemError."""
        if not 1 <= port <= 223:
            raise ValueError("port is 1..223")
        dr = self.data_rate()
        if len(data) > _MAX_PAYLOAD[dr]:
            raise ModemError(TOO_BIG, "%d bytes > %d at DR%d" % (len(data), _MAX_PAYLOAD[dr], dr))
        cnf = bool(confirmed) or self._verify
        before = self._counter()
        cmd = "mac tx %s %d %s" % ("cnf" if cnf else "uncnf", port, _hex(data))
        reply = self._start(cmd, len(data) + _OVERHEAD, dr)
        if reply == "frame_counter_err_rejoin_needed":
            self._forget()                     # FCntUp rolled over: this session is spent
            raise ModemError(NOT_JOINED, reply)
        if reply != "ok":
            raise self._error(reply, _name(cmd), len(data) + _OVERHEAD, dr)
        result = self._result(timeout_ms, _name(cmd))
        if result == "invalid_data_len":
            raise ModemError(TOO_BIG, "modem refused %d bytes at DR%d" % (len(data), dr))
        if result == "mac_err" and not cnf:
            raise ModemError(REFUSED, "mac_err")
        acked = result != "mac_err"
        if result.startswith("mac_rx "):
            self._downlink(result)
        elif result not in ("mac_tx_ok", "mac_err"):
            raise ModemError(REFUSED, "mac tx: " + result[:20])
        if self._verify:
            if not acked:
                # The network did not answer the resumed session: it is not known there.
                self._forget()
                return NOT_ACKED
            self._verify = False
        if self._counter() // SAVE_EVERY != before // SAVE_EVERY:
            self._save()
        return SENT if acked else NOT_ACKED

    # --- session persistence ---------------------------------------------------------
    def _resume(self):
        """After a module reset: resume the session saved for the configured keys."""
        if self._fp is None or self._get("devaddr") == "00000000":
            return False
        if self._nvm_fp() != self._fp:
            return False
        saved = self._counter()
        if self._counter() != saved:           # the floor of every counter: read it twice
            raise ModemError(REFUSED, "mac get upctr: unstable")
        if saved + RESUME_SKIP > _U32:
            return False
        self._ok("mac set upctr %d" % (saved + RESUME_SKIP))
        self._ok("mac join abp")
        if self._result(_CMD_MS, "mac join abp") != "accepted":
            return False
        self._save()                           # the skipped-to counter is the new floor
        self._verify = True
        return True

    def _persist(self):
        """After an OTAA accept: the session, its counters and the keys' fingerprint."""
        if self._nvm_fp() != self._fp:
            for i in range(4):
                self._ok("sys set nvm %X %02X" % (_NVM_FP + i, self._fp[i]))
        self._save()

    def _forget(self):
        """Make the saved session unusable, then drop the RAM one (a reset): the node's
        next join is OTAA."""
        first = self._fp[0] if self._fp else 0
        self._ok("sys set nvm %X %02X" % (_NVM_FP, first ^ 0xFF))
        self._verify = False
        self.reset()

    def _nvm_fp(self):
        out = bytearray(4)
        for i in range(4):
            v = self._reply("sys get nvm %X" % (_NVM_FP + i),
                            lambda v: v == "invalid_param" or _is_hex(v, 2))
            if v == "invalid_param":
                return None
            out[i] = int(v, 16)
        return bytes(out)

    def _save(self):
        self._ok("mac save", _SAVE_MS)

    def _counter(self):
        return int(self._get("upctr"))

    # --- commands ---------------------------------------------------------------------
    def _reply(self, cmd, valid, timeout_ms=_CMD_MS):
        """Send `cmd`; its reply: the first line `valid` accepts. Other lines (noise on the
        wire, a late reply to something earlier) are strays."""
        self._at.drain()
        self._at.write_line(cmd)
        line = self._wait(valid, timeout_ms, False)
        if line is None:
            raise ModemError(TIMEOUT, _name(cmd))
        return line

    def _wait(self, valid, timeout_ms, reset_ends):
        """The first line `valid` accepts within `timeout_ms`, or None. Banners are resets
        (with `reset_ends`, the end of the wait: what was asked is lost with the RAM)."""
        start = time.ticks_ms()
        watchdog.expect(timeout_ms)          # e.g. a join's second reply: fed while it lasts
        while time.ticks_diff(time.ticks_ms(), start) < timeout_ms:
            watchdog.waiting()
            line = self._at.next_line(100)
            if self._at.take_event((_BANNER,)) is not None:
                self.resets += 1
                self._scan()
                if reset_ends:
                    return _BANNER
            if line is None:
                continue
            if valid(line):
                watchdog.progress()          # the module answered
                return line
            self._at.strays += 1
        return None

    def _ok(self, cmd, timeout_ms=_CMD_MS):
        reply = self._reply(cmd, _word, timeout_ms)
        if reply != "ok":
            raise self._error(reply, _name(cmd), 0, 0)

    def _get(self, name):
        valid = _VALUES[name]
        v = self._reply("mac get " + name, lambda v: v == "invalid_param" or valid(v))
        if v == "invalid_param":
            raise ModemError(REFUSED, "mac get %s: invalid_param" % name)
        return v

    def _ensure(self, name, value):
        if self._get(name).upper() != value.upper():
            self._ok("mac set %s %s" % (name, value))

    def _start(self, cmd, phy_len, dr):
        """Send a join or tx; resume a paused MAC once. The first reply."""
        reply = self._reply(cmd, _word)
        if reply == "mac_paused":
            self._ok("mac resume")
            reply = self._reply(cmd, _word)
        if reply == "ok":
            self._sent.append((time.ticks_ms(), toa_us(phy_len, dr)))
            del self._sent[:-_CHANNELS]
        return reply

    def _result(self, timeout_ms, name):
        """The second reply of a join or tx; a module reset on the way is an error."""
        line = self._wait(_is_result, timeout_ms, True)
        if line is None:
            raise ModemError(TIMEOUT, "no result to " + name)
        if line == _BANNER:
            raise ModemError(TIMEOUT, "modem reset during " + name)
        return line

    def _error(self, reply, name, phy_len, dr):
        if reply == "no_free_ch":
            return ModemError(RESTRICTED, name, self._wait_estimate(phy_len, dr))
        if reply == "busy":
            return ModemError(BUSY, name)
        if reply == "not_joined":
            return ModemError(NOT_JOINED, name)
        if reply == "invalid_data_len":
            return ModemError(TOO_BIG, name)
        if reply in ("invalid_param", "keys_not_init", "silent", "mac_paused"):
            return ModemError(REFUSED, "%s: %s" % (name, reply))
        return ModemError(REFUSED, "%s: garbled reply" % name)

    def _wait_estimate(self, phy_len, dr):
        try:
            d = int(self._get("ch dcycle 0"))
        except ModemError:
            d = 302
        now = time.ticks_ms()
        # ms until each of this wake's transmissions frees its channel
        free = [time.ticks_diff(t, now) + -(-a * (d + 1) // 1000) for t, a in self._sent]
        pending = [f for f in free if f > 0]
        if len(pending) >= _CHANNELS:
            return min(pending)
        return -(-toa_us(phy_len, dr) * (d + 1) // 1000)

    def _scan(self):
        """Banners nobody asked for: the module restarted (its RAM session is gone)."""
        while self._at.take_event((_BANNER,)) is not None:
            self.resets += 1

    def _downlink(self, line):
        # mac_rx <port> <hex>
        parts = line.split(" ")
        try:
            if len(parts) != 3 or not parts[1].isdigit() or not 1 <= int(parts[1]) <= 223:
                raise ValueError(line)
            data = binascii.unhexlify(parts[2])
        except ValueError:
            self.bad_events += 1
            return
        if len(self.downlinks) >= _MAX_DOWNLINKS:
            self.downlinks.pop(0)
        self.downlinks.append((int(parts[1]), data))
