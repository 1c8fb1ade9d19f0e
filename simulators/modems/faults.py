"""Modem faults on the wire, the same for every dialect: a fault script for a test or a run.

    faults = ModemFaults(model, "rak3172", clock, rng)
    uart_link.attach(faults)                 # sits between the node's UART and the model
    faults.windows.append((start_us, end_us, "garbage"))

The interposer passes bytes both ways untouched, except while a window is open:

- `silent`: the module hangs: it neither hears the MCU nor says anything (a latched-up
  MCU in the module, or a module without supply);
- `garbage`: noise on the line, as from a long unshielded cable or a module browning out:
  whole junk lines between the replies, and stray bytes inside them;
- `busy`: every command is answered with the dialect's busy reply (the MAC still busy with
  an earlier request) and never reaches the module;
- `reboot`: the module restarts right after it accepts a send command, mid-transmission
  (a watchdog reset inside the module, or a supply dip): the session and the frame in
  flight are gone, the module prints its reset banner;
- `baud`: the module talks at another baud rate (its setting changed behind the node's
  back, or a clock drifting out of tolerance): each side sees the other's bytes garbled.

What the module keeps across a reboot (its flash) and what it loses (the session) is the
model's business (`model.power_cut`), so each dialect reboots as its vendor says.
"""
from __future__ import annotations

import random

MODES = ("silent", "garbage", "busy", "reboot", "baud")

# Per dialect: the commands that start an uplink, and the reply to a command the MAC
# cannot take now (lorawan-modems.md §1: RUI3 atcmd.c AT_BUSY_ERROR; Seeed LoRa-E5 AT spec
# "+MSGHEX: LoRaWAN modem is busy"; RN2483 command reference 2.4.9.5 `busy`).
DIALECTS = {
    "rak3172": {"send": (b"AT+SEND=",), "busy": b"AT_BUSY_ERROR\r\n"},
    "wioe5": {"send": (b"AT+MSGHEX", b"AT+CMSGHEX", b"AT+MSG", b"AT+CMSG"),
              "busy": b"+MSGHEX: LoRaWAN modem is busy\r\n"},
    "rn2483": {"send": (b"mac tx ",), "busy": b"busy\r\n"},
}
_REBOOT_AFTER_US = 150_000      # the reset hits while the frame is on air
_REBOOT_OFF_US = 20_000
_OTHER_BAUD = {115200: 9600, 57600: 115200, 9600: 115200}


class ModemFaults:
    def __init__(self, model, dialect: str, clock, rng: random.Random | None = None):
        if dialect not in DIALECTS:
            raise ValueError(f"no fault script for modem {dialect!r}")
        self.model = model
        self.dialect = DIALECTS[dialect]
        self.clock = clock
        self.rng = rng or random.Random(0)
        self.windows: list[tuple[int, int, str]] = []   # [start_us, end_us) and mode
        self.uart = None                # the link; set by UartLink.attach
        self.model.uart = self          # the model's replies come through here
        self._line = bytearray()
        self._baud_changed = False
        self.injected = {m: 0 for m in MODES}           # what the script did, for a test

    @property
    def mode(self) -> str | None:
        now = self.clock.now_us
        for start, end, mode in self.windows:
            if start <= now < end:
                return mode
        return None

    # --- MCU -> module ---------------------------------------------------------------
    def receive(self, data: bytes) -> None:
        mode = self._sync_baud()
        if mode == "silent":
            self.injected["silent"] += 1
            return
        if mode not in ("busy", "reboot"):
            self._line.clear()
            self.model.receive(data)
            return
        # These two act on whole command lines.
        for b in data:
            self._line.append(b)
            if b != 0x0A:
                continue
            line = bytes(self._line)
            self._line.clear()
            command = line.strip()
            if mode == "busy" and command and not self._is_probe(command):
                self.injected["busy"] += 1
                self.send(self.dialect["busy"])
                continue
            self.model.receive(line)
            if mode == "reboot" and command.startswith(self.dialect["send"]):
                self.injected["reboot"] += 1
                self.clock.call_at(self.clock.now_us + _REBOOT_AFTER_US,
                                   self.model.power_cut, _REBOOT_OFF_US)

    def on_break(self) -> None:
        if self.mode != "silent" and hasattr(self.model, "on_break"):
            self.model.on_break()

    # --- module -> MCU ---------------------------------------------------------------
    def send(self, data: bytes) -> None:
        mode = self._sync_baud()
        if mode == "silent":
            return
        if mode == "garbage":
            self.injected["garbage"] += 1
            data = self._noisy(data)
        self.uart.send(data)

    # --- internals -------------------------------------------------------------------
    @staticmethod
    def _is_probe(command: bytes) -> bool:
        # A bare "AT" (or the RN2483's version query) only checks the line: answered.
        return command in (b"AT", b"sys get ver")

    def _noisy(self, data: bytes) -> bytes:
        out = bytearray()
        if self.rng.random() < 0.5:
            junk = bytes(self.rng.choice(b"#%&*+-.0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         b"\x00\x7f\x80\xc3\xfe\xff")
                         for _ in range(self.rng.randrange(3, 24)))
            out += junk + b"\r\n"
        for b in data:
            if self.rng.random() < 0.02:
                out.append(self.rng.choice((0x00, 0x80, 0xFF, 0x1B)))
            out.append(b)
        return bytes(out)

    def _sync_baud(self) -> str | None:
        mode = self.mode
        want = mode == "baud"
        if want != self._baud_changed and self.uart is not None:
            baud, bits, parity, stop = self.uart.device_format
            if want:
                self._saved_format = self.uart.device_format
                self.uart.set_device_format(_OTHER_BAUD.get(baud, 9600), bits, parity, stop)
                self.injected["baud"] += 1
            else:
                self.uart.set_device_format(*self._saved_format)
            self._baud_changed = want
        return mode
