"""RAKwireless RAK3172 with RUI3 firmware, as seen from its UART (115200 8N1).

    link = UartLink(clock, Rak3172.BAUDRATE)
    link.attach(Rak3172(clock, network, dev_eui=bytes.fromhex("AC1F09FFFE000001")))

Follows the RUI3 5.0.0 source (RAKWireless/RAK-STM32-RUI, summarised in
/work/shared/reference/lorawan-modems.md section 1.1); file names below are relative to
`cores/STM32WLE/component/service/`:
- line input (`mode/cli/service_mode_cli.c`): CR or LF ends a line, an empty line is ignored,
  backspace edits, at most 2047 characters are kept, echo is off;
- parsing (`mode/cli/atcmd.c` At_Parser): the name ends at '=' or ' ', is matched without
  case, parameters split on ':'; `AT+X=?` queries print `AT+X=<value>\r\n`; `AT+X?` prints help;
  every reply ends with a status word and `\r\n`;
- join and send (`lora/service_lora.c`): `OK` at once, the result later as `+EVT:` lines;
  a duty-cycle block prints `Restricted_Wait_<ms>_ms` and answers `AT_BUSY_ERROR`; a payload
  too large for the data rate still sends an empty uplink, then answers `AT_PARAM_ERROR`;
- `AT+SLEEP` (`mode/cli/atcmd_sleep.c`): the handler sleeps, then returns, so its `OK` comes at
  wake-up. A character wakes the module; that first character is read corrupted (bit 7 set),
  the low-power UART quirk RAK staff describe (reference, "Known quirks").

The model keeps RUI3's flash (keys, settings, DevNonce, last JoinNonce) across `ATZ` and
`power_cut()`; the LoRaWAN session and everything in flight are lost. The LoRaWAN MAC (join,
channels, duty cycle, uplinks and retransmissions, receive windows, ADR) is the shared
`simulators.modems.lora_mac.LoraMac`; this module is RUI3's CLI, replies and events on it.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from simulators.clock import Clock
from simulators.modems.lora_mac import (JOIN_NONCE_REPEATED, JOIN_OK, LoraMac, MacNvm, Session,
                                        Timers, ceil_ms)
from simulators.network import Network

__all__ = ["Rak3172", "Nvm", "Session", "BOOT_DELAY_US", "FW_VERSION"]

# Status words, RUI3 atcmd.c atcmd_err_tbl.
OK = "OK"
AT_ERROR = "AT_ERROR"
AT_PARAM_ERROR = "AT_PARAM_ERROR"
AT_BUSY_ERROR = "AT_BUSY_ERROR"
AT_NO_NETWORK_JOINED = "AT_NO_NETWORK_JOINED"
AT_MODE_NO_SUPPORT = "AT_MODE_NO_SUPPORT"
AT_COMMAND_NOT_FOUND = "AT_COMMAND_NOT_FOUND"
AT_UNSUPPORTED_BAND = "AT_UNSUPPORTED_BAND"

BANNER_END = "Current Work Mode: LoRaWAN.\r\n"
# Format of variants/WisDuo_RAK3172_Evaluation_Board/version.c FW_REVISION.
FW_VERSION = "RUI_5.0.0_RAK3172-E"

_CLI_BUFFER = 2048          # CLI_BUFFER_SIZE; the last byte holds the NUL
_MAX_CMD_LEN = 32           # MAX_CMD_LEN, atcmd.h
_BAND_EU868 = 4
# Assumption (not in the source): time from reset to the banner.
BOOT_DELAY_US = 500_000
# Entering stop mode takes a moment: a byte that comes right behind AT+SLEEP's CR (its LF) is
# still read normally and does not wake the module.
_SLEEP_ENTRY_US = 1_000
_ACK_TIMEOUT_US = (1_000_000, 3_000_000)   # LoRaWAN 1.0.x ACK_TIMEOUT 2 s +- 1 s
_DIGITS = frozenset("0123456789")
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
# LoRaMacEventInfoStatus_t (LoRaMac-node 4.7.0): what RUI3 prints in the failure events.
_STATUS_RX2_TIMEOUT = 4
_STATUS_JOIN_FAIL = 7


@dataclass
class Nvm(MacNvm):
    """What RUI3 keeps in flash: survives ATZ and power cuts. The MAC's part (EUIs, AppKey,
    DR, ADR, DevNonce, JoinNonce, receive delays) comes from MacNvm."""
    nwm: int = 1
    band: int = _BAND_EU868
    njm: int = 1
    cfm: int = 0
    retry: int = 0
    lpm: int = 0
    lpmlvl: int = 1
    echo: int = 0
    join_start: int = 0             # AT+JOIN=<start>:<auto>:<period>:<attempts>
    auto_join: int = 0
    join_period_s: int = 8
    join_attempts: int = 0


def _isdigits(s: str) -> bool:
    return all(c in _DIGITS for c in s)


def _strtoul(s: str) -> int:
    return int(s) if s else 0


def _split_params(s: str) -> list[str]:
    # parseBuff2Param: split on ':'; a ':' at the very end opens no empty parameter.
    if not s:
        return []
    parts = s.split(":")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


class Rak3172:
    BAUDRATE = 115200

    def __init__(self, clock: Clock, network: Network, dev_eui: bytes,
                 rng: random.Random | None = None, booted: bool = True):
        self.clock = clock
        self.network = network
        self.rng = rng or random.Random(int.from_bytes(dev_eui, "big"))
        self.uart = None                      # set by UartLink.attach
        self.nvm = Nvm(dev_eui=bytes(dev_eui))
        # Probability that the character which wakes the module from AT+SLEEP is misread.
        self.wake_corruption = 1.0
        # LoRaMac-node 4.7.0 under RUI3: LoRaWAN ACK_TIMEOUT, JoinNonce must change.
        self.mac = LoraMac(clock, network, self.nvm, self.rng, ack_timeout_us=_ACK_TIMEOUT_US,
                           check_join_nonce=True)
        self._timers = Timers(clock)          # the CLI's own: boot, sleep
        self._commands = self._command_table()
        self._power_up_state()
        self._state = "ready" if booted else "off"
        if not booted:
            self._boot()

    # --- public model controls ---------------------------------------------------
    @property
    def joined(self) -> bool:
        return self.mac.joined

    @property
    def busy(self) -> bool:
        return self.mac.busy is not None

    @property
    def session(self) -> Session | None:
        return self.mac.session

    @property
    def dr(self) -> int:
        """The current data rate (AT+DR sets the setting and this; ADR moves only this)."""
        return self.mac.dr

    @dr.setter
    def dr(self, value: int) -> None:
        self.mac.dr = value

    @property
    def duty(self):
        return self.mac.duty

    def power_cut(self, off_us: int = 0) -> None:
        """Supply lost (and back after `off_us`): the session and everything pending are
        gone, flash (keys, DevNonce) stays; the banner follows the boot delay."""
        self._cancel_all()
        self._power_up_state()
        self._state = "off"
        self._later(off_us, self._boot)

    # --- UART side ---------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        for b in data:
            if self._state != "ready":
                continue                      # off or booting: the MCU is not listening
            if self._asleep and self.clock.now_us >= self._asleep_from:
                if self.rng.random() < self.wake_corruption:
                    b |= 0x80
                self._wake()
            self._cli_byte(b)

    def _out(self, text: str) -> None:
        if self.uart is not None:
            self.uart.send(text.encode("latin-1"))

    # --- life cycle --------------------------------------------------------------
    def _power_up_state(self) -> None:
        """RAM contents after a reset."""
        self.mac.reset()
        self.last_ack = False
        self._line = bytearray()
        self._special = 0                     # escape-sequence state of the CLI
        self._asleep = False
        self._asleep_from = 0
        self._wake_event = None
        self._last_recv: tuple[int, bytes] = (0, b"")

    def _boot(self) -> None:
        self._state = "booting"
        self._later(BOOT_DELAY_US, self._booted)

    def _booted(self) -> None:
        self._state = "ready"
        # service_mode_cli_init prints "\r\n" + empty prompt; rui_inner_main.c the mode line.
        mode = {0: "LoRa P2P.\r\n", 1: "LoRaWAN.\r\n", 2: "LoRa FSK.\r\n"}[self.nvm.nwm]
        self._out("\r\nCurrent Work Mode: " + mode)

    def _reboot(self) -> None:
        self._cancel_all()
        self._power_up_state()
        self._boot()

    def _later(self, delay_us: int, fn, *args):
        return self._timers.later(delay_us, fn, *args)

    def _cancel_all(self) -> None:
        self._timers.cancel_all()
        self.mac.reset()

    # --- sleep -------------------------------------------------------------------
    def _sleep(self, ms: int | None) -> None:
        self._asleep = True
        self._asleep_from = self.clock.now_us + _SLEEP_ENTRY_US
        if ms is not None:
            self._wake_event = self._later(ms * 1000, self._wake)

    def _wake(self) -> None:
        if not self._asleep:
            return
        self._asleep = False
        if self._wake_event is not None:
            self._wake_event.cancel()
            self._wake_event = None
        self._out(OK + "\r\n")               # At_Sleep returns AT_OK once udrv_sleep_ms ends

    # --- CLI line discipline (service_mode_cli_handler) ----------------------------
    def _cli_byte(self, b: int) -> None:
        if b == 0x1B:
            self._special = 1
        elif b in (0x08, 0x7F):
            self._special = 0
            if self._line:
                self._line.pop()
                self._out("\b \b")
        elif b in (0x0A, 0x0D):
            self._special = 0
            line = bytes(self._line).split(b"\0", 1)[0]
            self._line.clear()
            if line:
                if self.nvm.echo:
                    self._out("\n\r")
                self._execute(line.decode("latin-1"))
        elif self._special == 1 and b == 0x5B:
            self._special = 2
        elif self._special == 2 and b in (0x41, 0x42):
            self._special = 0                 # arrow keys walk the history: nothing to do
        else:
            self._special = 0
            if len(self._line) < _CLI_BUFFER - 1:
                self._line.append(b)
                if self.nvm.echo:
                    self._out(chr(b))

    def _execute(self, buff: str) -> None:
        status = self._parse(buff)
        if status is not None:
            self._out(status + "\r\n")        # At_Parser prints the word, the CLI the CRLF

    def _parse(self, buff: str) -> str | None:
        """At_Parser: the status word to print, or None when the handler printed its own."""
        i = next((k for k, c in enumerate(buff[:_MAX_CMD_LEN]) if c in "= "), None)
        if i is None:
            if len(buff) >= _MAX_CMD_LEN:
                return AT_ERROR
            i = len(buff)
        cmd, operat = buff[:i], buff[i:i + 1]
        help_ = cmd.endswith("?")
        if help_:
            cmd = cmd[:-1]
        entry = self._commands.get(cmd.upper())
        if entry is None:
            return AT_COMMAND_NOT_FOUND
        name, handler, perm, usage = entry
        if operat == "=" and len(cmd) + 1 == len(buff):
            return AT_PARAM_ERROR
        args = _split_params(buff[len(name) + 1:]) if operat else []
        if help_:
            if name == "AT":
                self._out("\r\nAT+<CMD>?: help on <CMD>\r\nAT+<CMD>: run <CMD>\r\n"
                          "AT+<CMD>=<value>: set the value\r\nAT+<CMD>=?: get the value\r\n")
                for n, _, p, u in self._commands.values():
                    if u:
                        self._out(f"{n},{p}: {u}\r\n")
            else:
                self._out(f"{name},{perm}: {usage}\r\n")
            return OK
        if args == ["?"] and "R" not in perm:
            return AT_PARAM_ERROR
        if args and args != ["?"] and "W" not in perm:
            return AT_PARAM_ERROR
        return handler(name, args)

    # --- command table -------------------------------------------------------------
    def _command_table(self) -> dict:
        c = {}

        def add(name, handler, perm, usage):
            c[name] = (name, handler, perm, usage)

        add("AT", self._at, "", "")
        add("ATZ", self._atz, "", "triggers a reset of the MCU")
        add("ATE", self._ate, "", "show or hide the AT command input")
        add("AT+VER", self._ver, "R", "get the version of the firmware")
        add("AT+SLEEP", self._sleep_cmd, "W", "enter sleep mode for a period of time (ms)")
        add("AT+LPM", self._lpm, "RW", "get or set the low power mode (0 = off, 1 = on)")
        add("AT+LPMLVL", self._lpmlvl, "RW", "get or set the low power mode level")
        add("AT+APPEUI", self._key("app_eui", 8), "RW",
            "get or set the application EUI (8 bytes in hex)")
        add("AT+APPKEY", self._key("app_key", 16), "RW",
            "get or set the application key (16 bytes in hex)")
        add("AT+DEVEUI", self._key("dev_eui", 8), "RW",
            "get or set the device EUI (8 bytes in hex)")
        add("AT+CFM", self._flag("cfm"), "RW", "get or set the confirm mode (0 = off, 1 = on)")
        add("AT+CFS", self._cfs, "R",
            "get the confirmation status of the last AT+SEND (0 = failure, 1 = success)")
        add("AT+JOIN", self._join_cmd, "RW", "join network")
        add("AT+NJM", self._flag("njm"), "RW",
            "get or set the network join mode (0 = ABP, 1 = OTAA)")
        add("AT+NJS", self._njs, "R", "get the join status (0 = not joined, 1 = joined)")
        add("AT+RECV", self._recv, "R", "print the last received data in hex format")
        add("AT+SEND", self._send_cmd, "W", "send data along with the application port")
        add("AT+RETY", self._retry, "RW",
            "get or set the number of retransmission of confirm packet data")
        add("AT+ADR", self._flag("adr"), "RW",
            "get or set the adaptive data rate setting (0 = off, 1 = on)")
        add("AT+DCS", self._dcs, "R",
            "get the ETSI duty cycle setting (0 = disabled, 1 = enabled)")
        add("AT+DR", self._dr_cmd, "RW", "get or set the data rate")
        add("AT+JN1DL", self._delay("jn1dl_ms", 1, 14), "RW",
            "get or set the join accept delay between the end of TX and the join RX window 1 "
            "in seconds")
        add("AT+JN2DL", self._delay("jn2dl_ms", 2, 15), "RW",
            "get or set the join accept delay between the end of TX and the join RX window 2 "
            "in seconds")
        add("AT+RX1DL", self._delay("rx1dl_ms", 1, 15), "RW",
            "get or set the delay between the end of TX and the RX window 1 in seconds (1-15)")
        add("AT+RX2DL", self._delay("rx2dl_ms", 2, 16), "RW",
            "get or set the delay between the end of TX and the RX window 2 in seconds (2-16)")
        add("AT+BAND", self._band, "RW",
            "get or set the active region (0 = EU433, 1 = CN470, 2 = RU864, 3 = IN865, "
            "4 = EU868, 5 = US915, 6 = AU915, 7 = KR920, 8 = AS923-1 , 9 = AS923-2 , "
            "10 = AS923-3 , 11 = AS923-4 , 12 = LA915)")
        add("AT+NWM", self._nwm, "RW",
            "get or set the network working mode (0 = P2P_LORA, 1 = LoRaWAN, 2 = P2P_FSK)")
        return c

    def _query(self, name: str, value) -> str:
        self._out(f"{name}={value}\r\n")
        return OK

    def _lorawan(self) -> bool:
        return self.nvm.nwm == 1

    # --- general commands --------------------------------------------------------
    def _at(self, name, args):
        return OK if not args else AT_PARAM_ERROR

    def _atz(self, name, args):
        if args:
            return AT_PARAM_ERROR
        self._reboot()                          # the reset comes before any status is printed
        return None

    def _ate(self, name, args):
        if args:
            return AT_PARAM_ERROR
        self.nvm.echo ^= 1
        return OK

    def _ver(self, name, args):
        return self._query(name, FW_VERSION) if args == ["?"] else AT_PARAM_ERROR

    def _sleep_cmd(self, name, args):
        if not args:
            self._sleep(None)                  # until a character arrives
            return None
        if len(args) != 1 or not _isdigits(args[0]):
            return AT_PARAM_ERROR
        ms = _strtoul(args[0])
        if ms == 0 or ms > 0xFFFFFFFF:
            return AT_PARAM_ERROR
        self._sleep(ms)
        return None

    def _lpm(self, name, args):
        return self._small_setting(name, args, "lpm", (0, 1))

    def _lpmlvl(self, name, args):
        return self._small_setting(name, args, "lpmlvl", (1, 2))

    def _small_setting(self, name, args, attr, allowed):
        if args == ["?"]:
            return self._query(name, getattr(self.nvm, attr))
        if len(args) == 1 and _isdigits(args[0]) and _strtoul(args[0]) in allowed:
            setattr(self.nvm, attr, _strtoul(args[0]))
            return OK
        return AT_PARAM_ERROR

    # --- keys and IDs (atcmd_key_id.c) ---------------------------------------------
    def _key(self, attr: str, size: int):
        def handler(name, args):
            if not self._lorawan():
                return AT_MODE_NO_SUPPORT
            if args == ["?"]:
                return self._query(name, getattr(self.nvm, attr).hex().upper())
            if len(args) != 1 or len(args[0]) != 2 * size \
                    or not all(ch in _HEXDIGITS for ch in args[0]):
                return AT_PARAM_ERROR
            setattr(self.nvm, attr, bytes.fromhex(args[0]))
            return OK
        return handler

    # --- LoRaWAN settings ----------------------------------------------------------
    def _flag(self, attr: str):
        def handler(name, args):
            if not self._lorawan():
                return AT_MODE_NO_SUPPORT
            return self._small_setting(name, args, attr, (0, 1))
        return handler

    def _cfs(self, name, args):
        if not self._lorawan():
            return AT_MODE_NO_SUPPORT
        return self._query(name, int(self.last_ack)) if args == ["?"] else AT_PARAM_ERROR

    def _njs(self, name, args):
        if not self._lorawan():
            return AT_MODE_NO_SUPPORT
        return self._query(name, int(self.joined)) if args == ["?"] else AT_PARAM_ERROR

    def _retry(self, name, args):
        if not self._lorawan():
            return AT_MODE_NO_SUPPORT
        return self._small_setting(name, args, "retry", range(8))

    def _dcs(self, name, args):
        if not self._lorawan():
            return AT_MODE_NO_SUPPORT
        return self._query(name, 1) if args == ["?"] else AT_PARAM_ERROR

    def _dr_cmd(self, name, args):
        if not self._lorawan():
            return AT_MODE_NO_SUPPORT
        if args == ["?"]:
            return self._query(name, self.dr)
        if len(args) != 1 or not _isdigits(args[0]):
            return AT_PARAM_ERROR
        dr = _strtoul(args[0])
        if dr > 5:                  # LoRaMac refuses a DR no enabled channel supports (DR0-5)
            return AT_PARAM_ERROR
        self.dr = self.nvm.dr = dr
        return OK

    def _delay(self, attr: str, low: int, high: int):
        def handler(name, args):
            if not self._lorawan():
                return AT_MODE_NO_SUPPORT
            if args == ["?"]:
                return self._query(name, getattr(self.nvm, attr) // 1000)
            if len(args) != 1 or not _isdigits(args[0]) \
                    or not low <= _strtoul(args[0]) <= high:
                return AT_PARAM_ERROR
            s = _strtoul(args[0])
            # The join delays must keep RX1 before RX2.
            if attr == "jn1dl_ms" and s >= self.nvm.jn2dl_ms // 1000 \
                    or attr == "jn2dl_ms" and s <= self.nvm.jn1dl_ms // 1000:
                return AT_PARAM_ERROR
            setattr(self.nvm, attr, s * 1000)
            return OK
        return handler

    def _band(self, name, args):
        if not self._lorawan():
            return AT_MODE_NO_SUPPORT
        if args == ["?"]:
            return self._query(name, self.nvm.band)
        if len(args) != 1 or not _isdigits(args[0]) or _strtoul(args[0]) > 12:
            return AT_PARAM_ERROR
        if _strtoul(args[0]) != _BAND_EU868:
            # The model speaks EU868 only; RUI3 answers this for a region not compiled in.
            return AT_UNSUPPORTED_BAND
        return OK

    def _nwm(self, name, args):
        if args == ["?"]:
            return self._query(name, self.nvm.nwm)
        if len(args) != 1 or args[0] not in ("0", "1", "2"):
            return AT_PARAM_ERROR
        self.nvm.nwm = int(args[0])
        # atcmd_p2p.c: prints "OK" without CRLF, then reboots (the banner supplies the CRLF).
        self._out(OK)
        self._reboot()
        return None

    def _recv(self, name, args):
        if not self._lorawan():
            return AT_MODE_NO_SUPPORT
        if args != ["?"]:
            return AT_PARAM_ERROR
        port, data = self._last_recv
        self._last_recv = (0, b"")            # a second read without new data is empty
        return self._query(name, f"{port}:{data.hex().upper()}")

    # --- join (atcmd_join_send.c At_Join, service_lora.c service_lora_join) -----------
    def _join_cmd(self, name, args):
        if not self._lorawan():
            return AT_MODE_NO_SUPPORT
        n = self.nvm
        if args == ["?"]:
            return self._query(name, f"{n.join_start}:{n.auto_join}:{n.join_period_s}:"
                                     f"{n.join_attempts}")
        if len(args) > 4 or not all(_isdigits(a) for a in args):
            return AT_PARAM_ERROR
        vals = [_strtoul(a) for a in args] or [1]
        if vals[0] not in (0, 1) or len(vals) > 1 and vals[1] not in (0, 1) \
                or len(vals) > 2 and not 7 <= vals[2] <= 255 \
                or len(vals) > 3 and not 0 <= vals[3] <= 255:
            return AT_PARAM_ERROR
        n.join_start = vals[0]
        if len(vals) > 1:
            n.auto_join = vals[1]
        if len(vals) > 2:
            n.join_period_s = vals[2]
        if len(vals) > 3:
            n.join_attempts = vals[3]
        if vals[0] == 0:                      # stop joining
            self.mac.cancel_join_retry()
            self.mac.join_retries = 0
            return OK
        if n.band != _BAND_EU868:
            return AT_UNSUPPORTED_BAND
        if n.njm == 0:                        # ABP: active at once (ABP keys are not modelled)
            self.mac.session = Session(dev_addr=0, join_nonce=None)
            return OK
        return self._start_join()

    def _start_join(self) -> str:
        self.mac.session = None               # NetworkActivation = NONE before the request
        if self.mac.busy:
            return AT_BUSY_ERROR
        wait = self.mac.join(self.nvm.dr, self._join_done)
        if wait:
            self._schedule_join_retry()
            self._out(f"Restricted_Wait_{ceil_ms(wait)}_ms\r\n")
            return AT_BUSY_ERROR
        return OK

    def _join_done(self, accept, why: str) -> None:
        if why == JOIN_OK:
            self.mac.join_retries = 0
            self.mac.cancel_join_retry()
            line = "+EVT:JOINED"
        else:
            self._schedule_join_retry()
            line = (f"+EVT:JOIN_FAILED_{_STATUS_JOIN_FAIL}" if why == JOIN_NONCE_REPEATED
                    else "+EVT:JOIN_FAILED_RX_TIMEOUT")
        self._out(line + "\r\n")

    def _schedule_join_retry(self) -> None:
        # service_lora.c: a failure line per attempt, then retry after the period while
        # attempts remain.
        self.mac.retry_join_later(self.nvm.join_period_s * 1_000_000, self.nvm.join_attempts,
                                  self._start_join)

    # --- send (At_Send, service_lora_send) ---------------------------------------------
    def _send_cmd(self, name, args):
        if not self._lorawan():
            return AT_MODE_NO_SUPPORT
        if len(args) != 2:
            return AT_PARAM_ERROR
        port_s, hex_s = args
        if not _isdigits(port_s):
            return AT_PARAM_ERROR
        port = _strtoul(port_s) & 0xFF        # atoi() into a uint8_t: "300" becomes 44
        if not 1 <= port <= 223:
            return AT_PARAM_ERROR
        if len(hex_s) % 2 or not 0 < len(hex_s) <= 500 \
                or not all(ch in _HEXDIGITS for ch in hex_s):
            return AT_PARAM_ERROR
        return self._send(port, bytes.fromhex(hex_s))

    def _send(self, port: int, data: bytes) -> str:
        if not self.mac.joined:
            return AT_NO_NETWORK_JOINED
        if self.mac.busy:
            return AT_BUSY_ERROR
        too_big = len(data) > self.mac.max_payload()
        if too_big:
            # "if invalid, still send null packet": unconfirmed, no FPort, no payload.
            wait = self.mac.uplink(None, b"", False, 1, self._uplink_done)
        else:
            wait = self.mac.uplink(port, data, bool(self.nvm.cfm), self.nvm.retry + 1,
                                   self._uplink_done)
        if wait:
            self._out(f"Restricted_Wait_{ceil_ms(wait)}_ms\r\n")
            return AT_BUSY_ERROR
        return AT_PARAM_ERROR if too_big else OK

    def _uplink_done(self, tx, delivery) -> None:
        acked = delivery is not None and delivery.ack
        if tx.confirmed:
            self.last_ack = acked
            self._out("+EVT:SEND_CONFIRMED_OK\r\n" if acked
                      else f"+EVT:SEND_CONFIRMED_FAILED({_STATUS_RX2_TIMEOUT})\r\n")
        else:
            self.last_ack = False
            self._out("+EVT:TX_DONE\r\n")
        # McpsConfirm runs before McpsIndication in one LoRaMacProcess pass: the RX line follows.
        if delivery is not None and delivery.downlink is not None:
            port, data = delivery.downlink
            self._last_recv = (port, data)
            self._out(f"+EVT:RX_1:{delivery.rssi}:{delivery.snr}:UNICAST:{port}:"
                      f"{data.hex()}\r\n")
