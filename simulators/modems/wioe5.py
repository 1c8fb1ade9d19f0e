"""Seeed LoRa-E5 / Wio-E5 with its factory AT firmware, as seen from its UART (9600 8N1).

    link = UartLink(clock, WioE5.BAUDRATE)
    link.attach(WioE5(clock, network, dev_eui=bytes.fromhex("2CF7F12024900138")))

The firmware is closed; the model follows the Seeed "LoRa-E5 AT Command Specification" V1.0
as quoted by the libraries and captured logs listed in /work/shared/reference/
lorawan-modems.md section 1.2 (the RisingHF PS01509 command family), section numbers below:
- line input: a command ends with LF (CR is dropped); 0xFF bytes are ignored, so the wake
  prefix `FF FF FF FF` may lead any command (EnviroDIY LoRa_AT_WioE5.h, andresoliva
  LoRa-E5 send it to modules that are awake); a line left without its LF for the UART
  timeout (`AT+UART=TIMEOUT`) is dropped with `+INFO: Input timeout` (CampusIoT log);
- replies echo the command's name: `AT` -> `+AT: OK`, `AT+X...` -> `+X: ...`; errors are
  `+X: ERROR(<n>)` with the codes of section 2.4: -1 parameter invalid, -10 command unknown,
  -11 wrong format, -12 unavailable in the current mode, -20 too many parameters, -21 line
  longer than 528 bytes, -23 invalid character;
- 4.3 ID, 4.20 KEY (APPKEY is write-only; the reply echoes it), 4.23 MODE (factory default
  LWABP), 4.12 ADR, 4.11 PORT (sticky FPort of MSGHEX/CMSGHEX, 1-255, default 8), 4.13 DR
  (`AT+DR=EU868` the scheme, `AT+DR=DRn` the rate; the query prints `+DR: DRn`, with
  ` (ADR DRm)` when ADR moved it, then `+DR: EU868 DRm  SFx BW125K`), 4.17 RETRY (0-254,
  fewer than 2 means one transmission; 3 to 10 s between tries), 4.28 LW (LEN: the largest
  payload now, VER: `V102B`, DC: the duty-cycle limit, on by default for EU868);
- 4.24 JOIN: `+JOIN: Start`, `+JOIN: NORMAL` (or `FORCE`), after the join windows
  `+JOIN: Network joined` and `+JOIN: NetID 000013 DevAddr 26:01:23:45`, or
  `+JOIN: Join failed`, then `+JOIN: Done`; a join while joined (not FORCE) answers
  `+JOIN: Joined already` and transmits nothing;
- 4.7/4.8 MSGHEX/CMSGHEX: `+MSGHEX: Start` (`+CMSGHEX: Wait ACK` too), after the windows
  `FPENDING`, `ACK Received`, `PORT: <n>; RX: "<HEX>"`, `RXWIN<w>, RSSI <r>, SNR <s>`, then
  `Done`; refusals, each a single line with nothing transmitted: `Please join network
  first`, `LoRaWAN modem is busy`, `Length error <max>`, `No band in <ms>ms` (duty cycle);
- 4.30 LOWPOWER: `+LOWPOWER: SLEEP`, then asleep until UART activity (or `=<ms>`); the line
  that wakes it is not executed and `+LOWPOWER: WAKEUP` is printed (devMobile's capture);
  the spec asks for a short pause before the next command (devMobile: 10 ms);
- 4.4 RESET: `+RESET: OK`, then the module restarts; `AT+UART=BR, <rate>` (9600, 14400,
  19200, 38400, 57600, 76800, 115200, 230400; RisingHF change log) takes effect then;
- 4.29 EEPROM: `AT+EEPROM=<AA>[,<VV>]` -> `+EEPROM: <AA>, <VV>`, a user byte area (used by
  disk91's library to keep credentials on the module).

Not modelled (the model refuses rather than pretends): schemes other than EU868, ABP and
TEST mode traffic, AUTOON low power, classes B and C. Assumptions, not in any source read:
the boot time (BOOT_DELAY_US), no banner after a restart, the 1 s default UART timeout, the
RETRY default 0, the DevNonce as a counter kept in flash (the firmware is LoRaWAN 1.0.2,
whose DevNonce may be random; reference section 3.2 lists it as unknown), the session lost
at a restart while keys, IDs and settings stay.

The LoRaWAN MAC (joins, duty cycle, uplinks, windows, ADR) is the shared
`simulators.modems.lora_mac.LoraMac`; this module is the AT firmware's parser and replies.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from simulators.clock import Clock
from simulators.modems.lora_mac import JOIN_OK, LoraMac, MacNvm, Timers, ceil_ms
from simulators.network import Network, eu868

__all__ = ["WioE5", "Nvm", "BOOT_DELAY_US", "FW_VERSION", "BAUD_RATES"]

FW_VERSION = "4.0.11"                  # +VER of the LoRa-E5 in the captured logs
LW_VERSION = "V102B"                   # AT+LW=VER: LoRaWAN 1.0.2 rev B
BAUD_RATES = (9600, 14400, 19200, 38400, 57600, 76800, 115200, 230400)
SCHEMES = ("EU868", "US915", "US915HYBRID", "CN779", "EU433", "AU915", "AU915OLD", "CN470",
           "AS923", "KR920", "IN865", "RU864", "CN470PREQUEL", "STE920", "JP920")
MAX_LINE = 528                         # ERROR(-21) beyond
MAX_PARAMS = 15                        # ERROR(-20) beyond
EEPROM_SIZE = 256
# Assumptions (see the module docstring).
BOOT_DELAY_US = 1_000_000
WAKE_US = 3_000                        # from the waking byte to +LOWPOWER: WAKEUP
_SLEEP_ENTRY_US = 2_000                # a byte right behind AT+LOWPOWER's LF still counts
# 4.17 RETRY: "Random delay 3 - 10s between each retry".
_RETRY_DELAY_US = (3_000_000, 10_000_001)

E_PARAM, E_UNKNOWN, E_FORMAT, E_MODE, E_PARAMS, E_LENGTH, E_CHAR = -1, -10, -11, -12, -20, -21, -23


@dataclass
class Nvm(MacNvm):
    """What the module keeps in flash: IDs, keys and settings (and, assumed, DevNonce)."""
    dev_addr: int = 0
    app_skey: bytes = bytes(16)
    nwk_skey: bytes = bytes(16)
    mode: str = "LWABP"                 # spec Table 4-2: the factory default
    scheme: str = "EU868"
    port: int = 8
    retry: int = 0
    duty_cycle: bool = True
    baud: int = 9600
    uart_timeout_ms: int = 1000
    eeprom: bytearray = field(default_factory=lambda: bytearray(EEPROM_SIZE))


def _hex_arg(s: str) -> bytes | None:
    """Hex given plain, quoted, or with spaces, colons or dashes between bytes."""
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        s = s[1:-1]
    s = "".join(ch for ch in s if ch not in " :-")
    if len(s) % 2 or any(ch not in "0123456789abcdefABCDEF" for ch in s):
        return None
    return bytes.fromhex(s)


def _colons(b: bytes) -> str:
    return ":".join(f"{x:02X}" for x in b)


class WioE5:
    BAUDRATE = 9600

    def __init__(self, clock: Clock, network: Network, dev_eui: bytes,
                 rng: random.Random | None = None, booted: bool = True):
        self.clock = clock
        self.network = network
        self.rng = rng or random.Random(int.from_bytes(dev_eui, "big"))
        self.uart = None                      # set by UartLink.attach
        self.nvm = Nvm(dev_eui=bytes(dev_eui), dev_addr=int.from_bytes(dev_eui[4:], "big"))
        # A LoRaWAN 1.0.2 stack: it does not compare JoinNonces; 4.17's retry delay.
        self.mac = LoraMac(clock, network, self.nvm, self.rng, ack_timeout_us=_RETRY_DELAY_US,
                           check_join_nonce=False)
        self._timers = Timers(clock)
        self._power_up_state()
        self._state = "ready" if booted else "off"
        if not booted:
            self._boot()

    # --- public model controls ---------------------------------------------------
    @property
    def joined(self) -> bool:
        return self.mac.joined

    @property
    def asleep(self) -> bool:
        return self._sleep != "awake"

    def power_cut(self, off_us: int = 0) -> None:
        """Supply lost (and back after `off_us`): the session and whatever was in flight
        are gone, the flash (IDs, keys, settings, EEPROM) stays."""
        self._timers.cancel_all()
        self._power_up_state()
        self._state = "off"
        self._timers.later(off_us, self._boot)

    # --- UART side ---------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        for b in data:
            if self._state != "ready":
                continue                      # off or booting: nobody listens
            if self._sleep == "asleep" and self.clock.now_us >= self._asleep_from:
                self._wake_by_uart()
            if self._sleep == "waking":
                self._discard = self._discard and b != 0x0A
                continue                      # the UART is not up yet: the byte is lost
            if self._discard:                 # the rest of the line that woke the module
                self._discard = b != 0x0A
                continue
            self._byte(b)

    def _out(self, text: str) -> None:
        if self.uart is not None:
            self.uart.send(text.encode("latin-1"))

    def _say(self, name: str, text: str) -> None:
        self._out(f"+{name}: {text}\r\n")

    def _error(self, name: str, code: int) -> None:
        self._say(name, f"ERROR({code})")

    # --- life cycle --------------------------------------------------------------
    def _power_up_state(self) -> None:
        """RAM after a restart."""
        self.mac.reset()
        self.mac.duty_cycle = self.nvm.duty_cycle
        self._line = bytearray()
        self._line_timer = None
        self._sleep = "awake"                 # awake | asleep | waking
        self._asleep_from = 0
        self._sleep_timer = None
        self._discard = False

    def _boot(self) -> None:
        self._state = "booting"
        self._timers.later(BOOT_DELAY_US, self._booted)

    def _booted(self) -> None:
        self._state = "ready"
        # The stored rate applies from the restart on (the RisingHF change log; libraries
        # reset right after AT+UART=BR).
        set_format = getattr(self.uart, "set_device_format", None)
        if set_format is not None and self.uart.device_format[0] != self.nvm.baud:
            set_format(self.nvm.baud, *self.uart.device_format[1:])

    def _restart(self) -> None:
        self._timers.cancel_all()
        self._power_up_state()
        self._boot()

    # --- sleep -------------------------------------------------------------------
    def _go_to_sleep(self, ms: int | None) -> None:
        self._sleep = "asleep"
        self._asleep_from = self.clock.now_us + _SLEEP_ENTRY_US
        if ms:
            self._sleep_timer = self._timers.later(ms * 1000, self._woken)

    def _wake_by_uart(self) -> None:
        self._sleep = "waking"
        self._discard = True
        if self._sleep_timer is not None:
            self._sleep_timer.cancel()
            self._sleep_timer = None
        self._timers.later(WAKE_US, self._woken)

    def _woken(self) -> None:
        if self._sleep == "awake":
            return
        self._sleep = "awake"
        self._sleep_timer = None
        self._say("LOWPOWER", "WAKEUP")

    # --- line discipline -----------------------------------------------------------
    def _byte(self, b: int) -> None:
        if b == 0xFF:
            return                            # the wake prefix
        if b == 0x0A:
            if self._line_timer is not None:
                self._line_timer.cancel()
                self._line_timer = None
            line = bytes(self._line).replace(b"\r", b"")
            self._line.clear()
            if line.strip():
                self._execute(line)
            return
        if not self._line and self.nvm.uart_timeout_ms:
            self._line_timer = self._timers.later(self.nvm.uart_timeout_ms * 1000,
                                                  self._input_timeout)
        if len(self._line) <= MAX_LINE:
            self._line.append(b)

    def _input_timeout(self) -> None:
        self._line_timer = None
        if self._line:
            self._line.clear()
            self._say("INFO", "Input timeout")

    # --- parsing -------------------------------------------------------------------
    def _execute(self, raw: bytes) -> None:
        line = raw.decode("latin-1").strip()
        head = line[:2].upper()
        rest = line[2:]
        if head != "AT" or rest and rest[0] != "+":
            self._error("AT", E_UNKNOWN)
            return
        if not rest:
            self._say("AT", "OK")
            return
        body = rest[1:]
        cut = next((i for i, ch in enumerate(body) if not ch.isalnum()), len(body))
        name = body[:cut].upper()
        arg = body[cut + 1:].strip()
        if not name:
            self._error("AT", E_FORMAT)
            return
        if len(raw) > MAX_LINE:
            self._error(name, E_LENGTH)
            return
        if any(not 32 <= ord(ch) < 127 for ch in line):
            self._error(name, E_CHAR)
            return
        if cut < len(body) and body[cut] not in "= ?":
            self._error(name, E_FORMAT)
            return
        if arg == "?":
            arg = ""                          # AT+X=? is the query, like AT+X
        handler = getattr(self, "_cmd_" + name, None)
        if handler is None:
            self._error(name, E_UNKNOWN)
            return
        args = [a.strip() for a in arg.split(",")] if arg else []
        if len(args) > MAX_PARAMS:
            self._error(name, E_PARAMS)
            return
        handler(name, arg, args)

    def _lorawan_mode(self, name: str) -> bool:
        """LoRaWAN traffic needs OTAA here: ABP and TEST traffic are not modelled."""
        if self.nvm.mode != "LWOTAA":
            self._error(name, E_MODE)
            return False
        return True

    # --- general commands ----------------------------------------------------------
    def _cmd_VER(self, name, arg, args):
        if args:
            self._error(name, E_PARAM)
            return
        self._say(name, FW_VERSION)

    def _cmd_RESET(self, name, arg, args):
        if args:
            self._error(name, E_PARAM)
            return
        self._say(name, "OK")
        self._restart()

    def _cmd_LOWPOWER(self, name, arg, args):
        if not args:
            ms = None
        elif len(args) == 1 and args[0].isdigit() and 0 < int(args[0]) <= 0xFFFFFFFF:
            ms = int(args[0])
        elif args == ["AUTOOFF"]:
            self._say(name, "AUTOOFF")        # the default: nothing to change
            return
        else:
            self._error(name, E_PARAM)        # AUTOON is not modelled
            return
        self._say(name, "SLEEP")
        self._go_to_sleep(ms)

    def _cmd_UART(self, name, arg, args):
        if not args or len(args) > 2:
            self._error(name, E_PARAM)
            return
        what = args[0].upper()
        if what == "BR":
            if len(args) == 2:
                if not args[1].isdigit() or int(args[1]) not in BAUD_RATES:
                    self._error(name, E_PARAM)
                    return
                self.nvm.baud = int(args[1])  # takes effect at the next restart
            self._say(name, f"BR, {self.nvm.baud}")
        elif what == "TIMEOUT":
            if len(args) == 2:
                if not args[1].isdigit() or int(args[1]) > 120_000:
                    self._error(name, E_PARAM)
                    return
                self.nvm.uart_timeout_ms = int(args[1])
            self._say(name, f"TIMEOUT, {self.nvm.uart_timeout_ms}")
        else:
            self._error(name, E_PARAM)

    def _cmd_EEPROM(self, name, arg, args):
        def byte(s):
            v = _hex_arg(s)
            return v[0] if v is not None and len(v) == 1 else None
        if not 1 <= len(args) <= 2:
            self._error(name, E_PARAM)
            return
        addr = byte(args[0])
        value = byte(args[1]) if len(args) == 2 else None
        if addr is None or len(args) == 2 and value is None:
            self._error(name, E_PARAM)
            return
        if value is not None:
            self.nvm.eeprom[addr] = value
        self._say(name, f"{addr:02X}, {self.nvm.eeprom[addr]:02X}")

    # --- identity and keys ------------------------------------------------------------
    _IDS = {"DEVADDR": ("DevAddr", 4), "DEVEUI": ("DevEui", 8), "APPEUI": ("AppEui", 8)}

    def _id_value(self, key: str) -> bytes:
        if key == "DEVADDR":
            return self.nvm.dev_addr.to_bytes(4, "big")
        return self.nvm.dev_eui if key == "DEVEUI" else self.nvm.app_eui

    def _cmd_ID(self, name, arg, args):
        if not args:
            for key in ("DEVADDR", "DEVEUI", "APPEUI"):
                self._say(name, f"{self._IDS[key][0]}, {_colons(self._id_value(key))}")
            return
        key = args[0].upper()
        if key not in self._IDS or len(args) > 2:
            self._error(name, E_PARAM)
            return
        label, size = self._IDS[key]
        if len(args) == 2:
            value = _hex_arg(args[1])
            if value is None or len(value) != size:
                self._error(name, E_PARAM)
                return
            if key == "DEVADDR":
                self.nvm.dev_addr = int.from_bytes(value, "big")
            elif key == "DEVEUI":
                self.nvm.dev_eui = value
            else:
                self.nvm.app_eui = value
        self._say(name, f"{label}, {_colons(self._id_value(key))}")

    def _cmd_KEY(self, name, arg, args):
        # Keys are write-only: there is no query form.
        attrs = {"APPKEY": "app_key", "APPSKEY": "app_skey", "NWKSKEY": "nwk_skey"}
        if len(args) != 2 or args[0].upper() not in attrs:
            self._error(name, E_PARAM)
            return
        value = _hex_arg(args[1])
        if value is None or len(value) != 16:
            self._error(name, E_PARAM)
            return
        setattr(self.nvm, attrs[args[0].upper()], value)
        self._say(name, f"{args[0].upper()} {value.hex().upper()}")

    # --- LoRaWAN settings ---------------------------------------------------------------
    def _cmd_MODE(self, name, arg, args):
        if args:
            mode = args[0].upper()
            if len(args) != 1 or mode not in ("LWOTAA", "LWABP", "TEST"):
                self._error(name, E_PARAM)
                return
            if mode != self.nvm.mode:
                self.nvm.mode = mode
                self.mac.session = None       # another activation: the session is gone
        self._say(name, self.nvm.mode)

    def _cmd_ADR(self, name, arg, args):
        if args:
            if len(args) != 1 or args[0].upper() not in ("ON", "OFF"):
                self._error(name, E_PARAM)
                return
            self.nvm.adr = int(args[0].upper() == "ON")
        self._say(name, "ON" if self.nvm.adr else "OFF")

    def _cmd_PORT(self, name, arg, args):
        if args:
            if len(args) != 1 or not args[0].isdigit() or not 1 <= int(args[0]) <= 255:
                self._error(name, E_PARAM)
                return
            self.nvm.port = int(args[0])
        self._say(name, str(self.nvm.port))

    def _cmd_RETRY(self, name, arg, args):
        if args:
            if len(args) != 1 or not args[0].isdigit() or int(args[0]) > 254:
                self._error(name, E_PARAM)
                return
            self.nvm.retry = int(args[0])
        self._say(name, str(self.nvm.retry))

    def _dr_lines(self, name: str) -> None:
        cur = self.mac.dr
        adr = f" (ADR DR{cur})" if cur != self.nvm.dr else ""
        self._say(name, f"DR{self.nvm.dr}{adr}")
        sf, bw = eu868.DATA_RATES[cur]
        self._say(name, f"{self.nvm.scheme} DR{cur}  SF{sf} BW{bw // 1000}K")

    def _cmd_DR(self, name, arg, args):
        if not args:
            self._dr_lines(name)
            return
        value = args[0].upper()
        if len(args) != 1:
            self._error(name, E_PARAM)
        elif value == "SCHEME":
            self._say(name, self.nvm.scheme)
        elif value in SCHEMES:
            if value != "EU868":              # the model speaks EU868 only
                self._error(name, E_PARAM)
                return
            self.nvm.scheme = value
            self._say(name, value)
        elif value.startswith("DR") and value[2:].isdigit() or value.isdigit():
            dr = int(value[2:] if value.startswith("DR") else value)
            if dr > 15:
                self._error(name, E_PARAM)
                return
            if dr > 5:                        # no default EU868 channel carries DR6/DR7
                self._say(name, "DR error")
                return
            self.nvm.dr = self.mac.dr = dr
            self._dr_lines(name)
        else:
            self._error(name, E_PARAM)

    def _cmd_LW(self, name, arg, args):
        what = args[0].upper() if args else ""
        if what == "LEN" and len(args) == 1:
            self._say(name, f"LEN, {self.mac.max_payload()}")
        elif what == "VER" and len(args) == 1:
            self._say(name, f"VER, {LW_VERSION}")
        elif what == "DC" and len(args) <= 2:
            if len(args) == 2:
                if args[1].upper() not in ("ON", "OFF"):
                    self._error(name, E_PARAM)
                    return
                self.nvm.duty_cycle = self.mac.duty_cycle = args[1].upper() == "ON"
            self._say(name, f"DC, {'ON' if self.nvm.duty_cycle else 'OFF'}, 0")
        else:
            self._error(name, E_PARAM)

    # --- join (4.24) -----------------------------------------------------------------
    def _cmd_JOIN(self, name, arg, args):
        force = [a.upper() for a in args] == ["FORCE"]
        if args and not force:
            self._error(name, E_PARAM)        # AUTO / DRn joins are not modelled
            return
        if self.nvm.mode != "LWOTAA":
            self._say(name, "Not in OTAA mode")
            return
        if self.mac.busy:
            self._say(name, "LoRaWAN modem is busy")
            return
        if self.mac.joined and not force:
            self._say(name, "Joined already")
            return
        wait = self.mac.join(self.mac.dr, self._join_done)
        if wait:
            self._say(name, f"No band in {ceil_ms(wait)}ms")
            return
        self.mac.session = None               # the request is on air: a new session comes
        self._say(name, "Start")
        self._say(name, "FORCE" if force else "NORMAL")

    def _join_done(self, accept, why: str) -> None:
        if why == JOIN_OK:
            self.nvm.dev_addr = accept.dev_addr
            self._say("JOIN", "Network joined")
            self._say("JOIN", f"NetID {accept.net_id:06X} DevAddr "
                              f"{_colons(accept.dev_addr.to_bytes(4, 'big'))}")
        else:
            self._say("JOIN", "Join failed")
        self._say("JOIN", "Done")

    # --- uplinks (4.7, 4.8) -------------------------------------------------------------
    def _cmd_MSGHEX(self, name, arg, args):
        self._message(name, arg, confirmed=False)

    def _cmd_CMSGHEX(self, name, arg, args):
        self._message(name, arg, confirmed=True)

    def _message(self, name: str, arg: str, confirmed: bool) -> None:
        data = _hex_arg(arg) if arg else b""
        if data is None:
            self._error(name, E_PARAM)
            return
        if not self._lorawan_mode(name):
            return
        if not self.mac.joined:
            self._say(name, "Please join network first")
            return
        if self.mac.busy:
            self._say(name, "LoRaWAN modem is busy")
            return
        if len(data) > self.mac.max_payload():
            self._say(name, f"Length error {self.mac.max_payload()}")
            return
        trials = self.nvm.retry if self.nvm.retry >= 2 else 1
        wait = self.mac.uplink(self.nvm.port if data else None, data, confirmed, trials,
                               lambda tx, delivery: self._message_done(name, tx, delivery))
        if wait:
            self._say(name, f"No band in {ceil_ms(wait)}ms")
            return
        self._say(name, "Start")
        if confirmed:
            self._say(name, "Wait ACK")

    def _message_done(self, name: str, tx, delivery) -> None:
        if delivery is not None:
            if delivery.fpending:
                self._say(name, "FPENDING")
            if tx.confirmed and delivery.ack:
                self._say(name, "ACK Received")
            if delivery.downlink is not None:
                port, data = delivery.downlink
                self._say(name, f'PORT: {port}; RX: "{data.hex().upper()}"')
            self._say(name, f"RXWIN{delivery.window or 1}, RSSI {delivery.rssi}, "
                            f"SNR {float(delivery.snr):.1f}")
        self._say(name, "Done")

