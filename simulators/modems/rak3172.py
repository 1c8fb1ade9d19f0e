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
`power_cut()`; the LoRaWAN session and everything in flight are lost. Radio arithmetic (time on
air, duty cycle, payload limits) comes from `simulators.network.eu868`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from simulators.clock import Clock
from simulators.network import Network, eu868

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
# Assumptions (not in the source): time from reset to the banner, and how long the radio
# listens in an empty receive window (LoRaMac-node opens it for a few symbols).
BOOT_DELAY_US = 500_000
# Entering stop mode takes a moment: a byte that comes right behind AT+SLEEP's CR (its LF) is
# still read normally and does not wake the module.
_SLEEP_ENTRY_US = 1_000
_RX_WINDOW_SYMBOLS = 8
_ACK_TIMEOUT_US = (1_000_000, 3_000_000)   # LoRaWAN 1.0.x ACK_TIMEOUT 2 s +- 1 s
_DIGITS = frozenset("0123456789")
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")
# LoRaMacEventInfoStatus_t (LoRaMac-node 4.7.0): what RUI3 prints in the failure events.
_STATUS_RX2_TIMEOUT = 4
_STATUS_JOIN_FAIL = 7


@dataclass
class Nvm:
    """What RUI3 keeps in flash: survives ATZ and power cuts."""
    dev_eui: bytes
    app_eui: bytes = bytes(8)
    app_key: bytes = bytes(16)
    nwm: int = 1
    band: int = _BAND_EU868
    njm: int = 1
    cfm: int = 0
    retry: int = 0
    dr: int = 0
    adr: int = 1
    lpm: int = 0
    lpmlvl: int = 1
    echo: int = 0
    jn1dl_ms: int = 5000
    jn2dl_ms: int = 6000
    rx1dl_ms: int = 1000
    rx2dl_ms: int = 2000
    dev_nonce: int = 0              # last DevNonce used (LoRaWAN 1.0.4 counter)
    join_nonce: int | None = None   # JoinNonce of the last accepted join
    join_start: int = 0             # AT+JOIN=<start>:<auto>:<period>:<attempts>
    auto_join: int = 0
    join_period_s: int = 8
    join_attempts: int = 0


@dataclass
class Session:
    dev_addr: int
    join_nonce: int | None
    fcnt_up: int = 0


@dataclass
class _Tx:
    """One uplink in flight (retransmissions of a confirmed frame reuse its FCnt)."""
    port: int | None
    data: bytes
    confirmed: bool
    dr: int
    fcnt: int
    trials: int
    trial: int = 1


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


def _ceil_ms(us: int) -> int:
    return -(-us // 1000)


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
        self.duty = eu868.DutyCycle(self.rng)   # regulatory: survives resets
        self._events: list = []
        self._commands = self._command_table()
        self._power_up_state()
        self._state = "ready" if booted else "off"
        if not booted:
            self._boot()

    # --- public model controls ---------------------------------------------------
    @property
    def joined(self) -> bool:
        return self.session is not None

    @property
    def busy(self) -> bool:
        return self._busy is not None

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
        self.session: Session | None = None
        self.dr = self.nvm.dr
        self.last_ack = False
        self._busy: str | None = None        # "join" or "send" while the MAC is busy
        self._line = bytearray()
        self._special = 0                     # escape-sequence state of the CLI
        self._asleep = False
        self._asleep_from = 0
        self._wake_event = None
        self._join_retry = 0
        self._auto_join_event = None
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
        now = self.clock.now_us
        self._events = [e for e in self._events if not e.cancelled and e.at_us >= now]
        ev = self.clock.call_later(delay_us, fn, *args)
        self._events.append(ev)
        return ev

    def _cancel_all(self) -> None:
        for ev in self._events:
            ev.cancel()
        self._events = []

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
            self._cancel_auto_join()
            self._join_retry = 0
            return OK
        if n.band != _BAND_EU868:
            return AT_UNSUPPORTED_BAND
        if n.njm == 0:                        # ABP: active at once (ABP keys are not modelled)
            self.session = Session(dev_addr=0, join_nonce=None)
            return OK
        return self._start_join()

    def _start_join(self) -> str:
        self.session = None                   # NetworkActivation = NONE before the request
        if self._busy:
            return AT_BUSY_ERROR
        channel, wait = self.duty.pick_channel(self.clock.now_us)
        if wait:
            self._schedule_join_retry()
            self._out(f"Restricted_Wait_{_ceil_ms(wait)}_ms\r\n")
            return AT_BUSY_ERROR
        self.nvm.dev_nonce = (self.nvm.dev_nonce + 1) & 0xFFFF   # persisted before use
        dr = self.nvm.dr
        toa = eu868.airtime_us(dr, eu868.JOIN_REQUEST_PHY_LEN)
        self.duty.record(self.clock.now_us, channel, toa)
        self._busy = "join"
        self._later(toa, self._join_sent, self.nvm.dev_nonce, dr, self.clock.now_us)
        return OK

    def _join_sent(self, dev_nonce: int, dr: int, t_start: int) -> None:
        accept = self.network.join_request(self.nvm.dev_eui, self.nvm.app_eui, self.nvm.app_key,
                                           dev_nonce, t_us=t_start)
        if accept is None:
            self._later(self.nvm.jn2dl_ms * 1000 + self._rx_window_us(eu868.RX2_DR),
                        self._join_done, None, "+EVT:JOIN_FAILED_RX_TIMEOUT")
            return
        rx1 = self.nvm.jn1dl_ms * 1000 + eu868.airtime_us(dr, eu868.JOIN_ACCEPT_PHY_LEN,
                                                           uplink=False)
        if accept.join_nonce == self.nvm.join_nonce:
            # LoRaMacCrypto rejects a JoinNonce equal to the stored one (1.0.x check).
            self._later(rx1, self._join_done, None, f"+EVT:JOIN_FAILED_{_STATUS_JOIN_FAIL}")
        else:
            self._later(rx1, self._join_done, accept, "+EVT:JOINED")

    def _join_done(self, accept, line: str) -> None:
        self._busy = None
        if accept is not None:
            self.session = Session(dev_addr=accept.dev_addr, join_nonce=accept.join_nonce)
            self.nvm.join_nonce = accept.join_nonce
            self.dr = self.nvm.dr
            self._join_retry = 0
            self._cancel_auto_join()
        else:
            self._schedule_join_retry()
        self._out(line + "\r\n")

    def _schedule_join_retry(self) -> None:
        # service_lora.c: a failure line per attempt, then retry after the period while
        # attempts remain.
        self._cancel_auto_join()
        self._join_retry += 1
        if self._join_retry > self.nvm.join_attempts:
            self._join_retry = 0
        else:
            self._auto_join_event = self._later(self.nvm.join_period_s * 1_000_000,
                                                self._start_join)

    def _cancel_auto_join(self) -> None:
        if self._auto_join_event is not None:
            self._auto_join_event.cancel()
            self._auto_join_event = None

    @staticmethod
    def _rx_window_us(dr: int) -> int:
        sf, bw = eu868.DATA_RATES[dr]
        return _RX_WINDOW_SYMBOLS * (2 ** sf) * 1_000_000 // bw

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
        if self.session is None:
            return AT_NO_NETWORK_JOINED
        if self._busy:
            return AT_BUSY_ERROR
        dr = self.dr
        too_big = len(data) > eu868.max_payload(dr)
        if too_big:
            # "if invalid, still send null packet": unconfirmed, no FPort, no payload.
            tx = _Tx(None, b"", False, dr, self.session.fcnt_up, trials=1)
        else:
            tx = _Tx(port, data, bool(self.nvm.cfm), dr, self.session.fcnt_up,
                     trials=self.nvm.retry + 1 if self.nvm.cfm else 1)
        channel, wait = self.duty.pick_channel(self.clock.now_us)
        if wait:
            self._out(f"Restricted_Wait_{_ceil_ms(wait)}_ms\r\n")
            return AT_BUSY_ERROR
        self.session.fcnt_up += 1
        self._busy = "send"
        self._transmit(tx, channel)
        return AT_PARAM_ERROR if too_big else OK

    def _transmit(self, tx: _Tx, channel: int) -> None:
        toa = eu868.airtime_us(tx.dr, eu868.phy_len_uplink(len(tx.data)))
        self.duty.record(self.clock.now_us, channel, toa)
        self._later(toa, self._uplink_sent, tx, self.clock.now_us, toa, channel)

    def _uplink_sent(self, tx: _Tx, t_start: int, toa: int, channel: int) -> None:
        delivery = self.network.uplink(self.nvm.dev_eui, tx.port, tx.data, tx.confirmed, tx.dr,
                                       tx.fcnt, t_start, toa, channel)
        answered = delivery.received and (delivery.downlink is not None
                                          or tx.confirmed and delivery.ack)
        if answered:
            dl = delivery.downlink
            dl_len = eu868.phy_len_uplink(len(dl[1]) if dl else 0)
            at = self.nvm.rx1dl_ms * 1000 + eu868.airtime_us(tx.dr, dl_len, uplink=False)
            self._later(at, self._uplink_done, tx, delivery)
            return
        rx2_end = self.nvm.rx2dl_ms * 1000 + self._rx_window_us(eu868.RX2_DR)
        if tx.confirmed and tx.trial < tx.trials:
            self._later(rx2_end + self.rng.randrange(*_ACK_TIMEOUT_US), self._retransmit, tx)
        else:
            self._later(rx2_end, self._uplink_done, tx, None)

    def _retransmit(self, tx: _Tx) -> None:
        channel, wait = self.duty.pick_channel(self.clock.now_us)
        if wait:                              # the MAC holds the retry until the band is free
            self._later(wait, self._retransmit, tx)
            return
        tx.trial += 1
        self._transmit(tx, channel)

    def _uplink_done(self, tx: _Tx, delivery) -> None:
        self._busy = None
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
