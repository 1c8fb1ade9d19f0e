"""RAKwireless RAK3172 LoRaWAN modem, RUI3 firmware, over its AT command UART (115200 8N1).

    modem = RAK3172(machine.UART(1, 115200, timeout=50))
    modem.wake(); modem.configure(dev_eui, join_eui, app_key); modem.join(); modem.send(2, data)

Follows the RUI3 AT command manual (docs.rakwireless.com, RUI3 AT Command Manual) and the RUI3
5.0.0 source, RAKWireless/RAK-STM32-RUI, `cores/STM32WLE/component/service/`:
- `mode/cli/atcmd.c`: a reply is `AT+X=<value>` lines, then one status word;
- `lora/service_lora.c`: AT+JOIN and AT+SEND answer OK at once and report later as
  `+EVT:JOINED`, `+EVT:JOIN_FAILED_<why>`, `+EVT:TX_DONE`, `+EVT:SEND_CONFIRMED_OK`,
  `+EVT:SEND_CONFIRMED_FAILED(<n>)`, downlinks as `+EVT:RX_<slot>:<rssi>:<snr>:<UNICAST|
  MULTICAST>:<port>:<hex>`; a duty-cycle block prints `Restricted_Wait_<ms>_ms` and answers
  AT_BUSY_ERROR; a payload too big for the data rate still goes out as an EMPTY uplink
  (the frame counter advances) and answers AT_PARAM_ERROR, so `send` checks the size first;
- `mode/cli/atcmd_sleep.c`: AT+SLEEP answers OK only when the module wakes, and the character
  that wakes it may be misread, so `wake` checks that the line is quiet after its OK.
Older RUI3 3.x printed events with spaces (`+EVT:JOIN FAILED`); both spellings are accepted.

`send` returns SENT or NOT_ACKED; everything else is a ModemError whose `reason` is one of the
constants below (`wait_ms` says how long a duty-cycle block lasts).
"""
import binascii

from micropython import const

from modems import (BUSY, NOT_ACKED, NOT_JOINED, NO_ANSWER, REFUSED, RESTRICTED, SENT,
                    TIMEOUT, TOO_BIG, ModemError, max_payload)
from modems.at import AT, ATError, ATTimeout

_STATUS_WORDS = (
    "OK", "AT_ERROR", "AT_PARAM_ERROR", "AT_BUSY_ERROR", "AT_TEST_PARAM_OVERFLOW",
    "AT_NO_CLASSB_ENABLE", "AT_NO_NETWORK_JOINED", "AT_RX_ERROR", "AT_MODE_NO_SUPPORT",
    "AT_COMMAND_NOT_FOUND", "AT_UNSUPPORTED_BAND",
)
_BANNER = "Current Work Mode:"     # printed after every reset, like the events
_JOIN_RESULTS = ("+EVT:JOINED", "+EVT:JOIN_FAILED", "+EVT:JOIN FAILED")
_SEND_RESULTS = ("+EVT:TX_DONE", "+EVT:TX DONE", "+EVT:SEND_CONFIRMED_", "+EVT:SEND CONFIRMED ")
_RX = ("+EVT:RX_",)
_RESTRICTED = "Restricted_Wait_"
_CMD_MS = const(1000)
_QUIET_MS = const(50)
_MAX_DOWNLINKS = const(8)


def _hex(data):
    return binascii.hexlify(data).decode().upper()


class RAK3172:
    def __init__(self, uart):
        self._at = AT(uart, _STATUS_WORDS, event_prefixes=("+EVT:", _BANNER))
        self.downlinks = []       # (port, bytes), oldest first; the caller pops them
        self.resets = 0           # banners seen: each one means the session is gone
        self.bad_events = 0
        self._cfm = None          # AT+CFM as last set here (None: unknown)

    # --- link ------------------------------------------------------------------
    def wake(self, tries=5):
        """Make sure the modem listens: send AT until an OK that nothing stray follows."""
        for _ in range(tries):
            self._at.drain()
            try:
                self._at.command("AT", 500)
            except ATError:
                continue
            # That OK may be the late answer to AT+SLEEP, our own AT (its first byte misread
            # by the waking UART) then answering AT_COMMAND_NOT_FOUND: trust a quiet line only.
            if not self._at.drain(_QUIET_MS):
                self._scan()
                return
        raise ModemError(NO_ANSWER, "no OK to AT")

    def sleep(self, ms):
        """Put the modem to sleep for `ms`; its OK comes at wake-up and `wake` absorbs it."""
        self._at.drain()
        self._at.write_line("AT+SLEEP=%d" % ms)

    def reset(self, boot_ms=3000):
        """Restart the module (ATZ: no answer, it reboots) and wait until it answers; the
        LoRaWAN session is gone, the keys and settings stay in its flash."""
        self._at.drain()
        self._at.write_line("ATZ")
        self._at.wait_event((_BANNER,), boot_ms)
        self._cfm = None
        self.wake()

    # --- settings ----------------------------------------------------------------
    def configure(self, dev_eui, join_eui, app_key, dr=None, adr=True):
        """OTAA on EU868 with these keys; writes only what differs (flash wear, and some
        writes reset the modem)."""
        if len(dev_eui) != 8 or len(join_eui) != 8 or len(app_key) != 16:
            raise ValueError("DevEUI and JoinEUI are 8 bytes, AppKey 16")
        if self._get("AT+NWM") != "1":
            # atcmd_p2p.c: the modem answers OK, then reboots into LoRaWAN mode.
            self._command("AT+NWM=1", 5000)
            self.wake()
        self._ensure("AT+BAND", "4")
        self._ensure("AT+NJM", "1")
        self._ensure("AT+DEVEUI", _hex(dev_eui))
        self._ensure("AT+APPEUI", _hex(join_eui))
        self._ensure("AT+APPKEY", _hex(app_key))
        self._ensure("AT+CFM", "0")
        self._cfm = False
        if dr is not None:
            self._ensure("AT+DR", str(dr))
        self._ensure("AT+ADR", "1" if adr else "0")

    def data_rate(self):
        v = self._get("AT+DR")
        # A garbled answer is the modem's failure, reported as such (never an IndexError).
        if not v.isdigit() or int(v) > 7:
            raise ModemError(REFUSED, "AT+DR=" + v)
        return int(v)

    def max_payload(self):
        return max_payload(self.data_rate())

    # --- network -------------------------------------------------------------------
    def joined(self):
        return self._get("AT+NJS") == "1"

    def join(self, timeout_ms=20000):
        """One OTAA join attempt: True when joined, False when the network did not answer."""
        self._purge(_JOIN_RESULTS)
        # start, no auto-join, period 8 s, no retries: exactly one result event follows.
        self._command("AT+JOIN=1:0:8:0")
        self._purge(_JOIN_RESULTS)    # whatever came before our OK belongs to an older join
        line = self._at.wait_event(_JOIN_RESULTS, timeout_ms)
        self._scan()
        if line is None:
            raise ModemError(TIMEOUT, "no join result")
        return line == "+EVT:JOINED"

    def send(self, port, data, confirmed=False, timeout_ms=20000, rx_grace_ms=100):
        """Uplink `data` on `port`: SENT or NOT_ACKED, else a ModemError."""
        if not 1 <= port <= 223:
            raise ValueError("port is 1..223")
        dr = self.data_rate()
        if len(data) > max_payload(dr):
            # Checked here because RUI3 would send an empty frame instead.
            raise ModemError(TOO_BIG, "%d bytes > %d at DR%d" % (len(data), max_payload(dr), dr))
        confirmed = bool(confirmed)
        if self._cfm != confirmed:
            self._command("AT+CFM=%d" % confirmed)
            self._cfm = confirmed
        self._purge(_SEND_RESULTS)
        try:
            self._command("AT+SEND=%d:%s" % (port, _hex(data)))
        except ModemError as e:
            if e.reason != REFUSED or e.detail != "AT_PARAM_ERROR":
                raise
            # Pending MAC commands shrank the room: the empty frame went out; let it finish.
            self._at.wait_event(_SEND_RESULTS, timeout_ms)
            self._scan()
            raise ModemError(TOO_BIG, "modem refused %d bytes at DR%d" % (len(data), dr))
        self._purge(_SEND_RESULTS)    # results before our OK are an older uplink's
        line = self._at.wait_event(_SEND_RESULTS, timeout_ms)
        if line is None:
            self._scan()
            raise ModemError(TIMEOUT, "no send result")
        # The downlink, if any, is printed right after the result (before it is tolerated).
        rx = self._at.wait_event(_RX, rx_grace_ms)
        if rx is not None:
            self._downlink(rx)
        self._scan()
        return NOT_ACKED if "FAILED" in line else SENT

    # --- internals -------------------------------------------------------------------
    def _command(self, cmd, timeout_ms=_CMD_MS):
        name = cmd.split("=")[0]      # details name the command, never its (secret) value
        try:
            return self._at.command(cmd, timeout_ms)
        except ATTimeout:
            raise ModemError(TIMEOUT, name)
        except ATError as e:
            if e.status == "AT_BUSY_ERROR":
                for line in e.lines:
                    if line.startswith(_RESTRICTED):
                        raise ModemError(RESTRICTED, name, _wait_ms(line))
                raise ModemError(BUSY, name)
            if e.status == "AT_NO_NETWORK_JOINED":
                raise ModemError(NOT_JOINED, name)
            raise ModemError(REFUSED, e.status)

    def _get(self, name):
        want = name + "="
        for line in self._command(name + "=?"):
            if line.startswith(want):
                return line[len(want):]
        raise ModemError(REFUSED, "no value for " + name)

    def _ensure(self, name, value):
        if self._get(name).upper() != value:
            self._command(name + "=" + value)

    def _purge(self, prefixes):
        while self._at.take_event(prefixes) is not None:
            pass

    def _scan(self):
        """Take downlinks and reset banners out of the event queue."""
        events = self._at.events
        i = 0
        while i < len(events):
            line = events[i]
            if line.startswith(_RX[0]):
                self._downlink(events.pop(i))
            elif line.startswith(_BANNER):
                events.pop(i)
                self.resets += 1
            else:
                i += 1

    def _downlink(self, line):
        # +EVT:RX_<slot>:<rssi>:<snr>:<UNICAST|MULTICAST>:<port>:<hex>
        parts = line.split(":")
        try:
            if len(parts) != 7 or not parts[5].isdigit() or int(parts[5]) > 255:
                raise ValueError(line)
            port = int(parts[5])
            data = binascii.unhexlify(parts[6])
        except ValueError:
            self.bad_events += 1
            return
        if len(self.downlinks) >= _MAX_DOWNLINKS:
            self.downlinks.pop(0)
        self.downlinks.append((port, data))


def _wait_ms(line):
    # "Restricted_Wait_<ms>_ms": digits only, so a garbled line never gives a negative wait
    s = line[len(_RESTRICTED):].split("_")[0]
    return int(s) if s.isdigit() else 0
