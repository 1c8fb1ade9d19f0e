"""TRUEBNER SMT100 soil moisture and temperature probe: SDI-12 and Modbus RTU faces.

    probe = SMT100SDI12(clock, soil, depth=0, address="0", seed=3); sdi12_bus.add(probe)
    probe = SMT100Modbus(clock, soil, depth=0, unit=1, seed=3);     modbus_bus.add(probe)

Facts followed (shared/reference/sensors.md):
- §2.1: VWC from permittivity by the Topp equation; accuracy ±3 % VWC (factory
  calibration, mineral soil 0-50 %), temperature typ. ±0.2 °C; range 0-60 (100) % VWC,
  -40..+80 °C; measurement < 50 ms.
- §2.2 Modbus: 9600 8E1, FC 03 holding registers 0 temperature (raw-10000)/100 °C,
  1 VWC raw/100 %, 2 permittivity raw/100, 3 raw counts, 4 slave address (FC 06).
- §2.3 SDI-12: `aM!` answers 5 values: raw counts, permittivity, VWC %, temperature °C,
  supply voltage V. TRUEBNER's own SDI-12 command table was not found; assumed here:
  `a0015` (data within 1 s, a service request when ready, as SDI-12 §4.4.6 requires
  for ttt >= 1), all 5 values in the `aD0!` reply (29 characters <= 35), SDI-12 v1.3
  identification `a13TRUEBNERSMT100...`.
- §3 (SDI-12 v1.3/1.4): `a!`, `?!`, `aI!`, `aAb!`, `aM!`, `aMC!`, `aD0!`..`aD9!`, `aV!`;
  a break aborts a measurement whose data is not ready, and `aD0!` then answers `a`;
  CRC-16/ARC as 3 ASCII characters (§4.4.12).

The model's own error: a fixed per-probe offset and clipped noise that together stay
within the stated accuracy. The raw-counts curve (counts from permittivity) of the
manual was not found; the model uses a monotone stand-in.

Faults (simulators/sensors/faults.py) on SDI-12: absent (never answers), nack (no
reply to aD0!), crc (one character of the aD0! reply changes after the CRC was made;
the character keeps its parity, so only the CRC shows it), timeout (every reply comes
1 s late, after the recorder has given up; its next break cancels it), stuck (the
previous measurement's values again), range (VWC 150 %, -60 °C). On Modbus the bus
model shows absent/nack/crc/timeout/stuck; range is 0xFFFF in the VWC register.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from simulators.bus.modbus_rtu import ILLEGAL_DATA_ADDRESS, ILLEGAL_DATA_VALUE, ModbusException, ModbusSlave
from simulators.bus.sdi12 import REPLY_DELAY_US
from simulators.sensors.faults import MODES

ACCURACY_VWC = 3.0       # % volume, factory calibration
ACCURACY_T = 0.2         # °C typical
NOISE_VWC = 0.1
NOISE_T = 0.02
MEASURE_US = 50_000      # digital versions: < 50 ms
LATE_US = 1_000_000      # fault "timeout"
SUPPLY_V = 12.0
COUNT_JITTER = 8.0       # counts, σ of the raw oscillator count


def topp(eps: float) -> float:
    """Topp et al. (1980): volumetric water content (m³/m³) from permittivity."""
    return -5.3e-2 + 2.92e-2 * eps - 5.5e-4 * eps ** 2 + 4.3e-6 * eps ** 3


def permittivity(theta: float) -> float:
    """Inverse of `topp` on 1..80 (monotone there), by bisection."""
    lo, hi = 1.0, 80.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if topp(mid) < theta:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def counts(eps: float, jitter: float = 0.0) -> int:
    """Raw oscillator counts (a monotone stand-in: the manual's curve was not found);
    the count jitters by a few counts from one measurement to the next."""
    return max(0, min(65535, round(52000 - 420 * eps + jitter)))


def sdi12_crc(text: str) -> str:
    crc = 0
    for b in text.encode("ascii"):
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return chr(0x40 | (crc >> 12)) + chr(0x40 | ((crc >> 6) & 0x3F)) + chr(0x40 | (crc & 0x3F))


@dataclass
class Measurement:
    t_us: int
    vwc: float           # the truth, % volume
    temperature: float   # the truth, °C


class _Probe:
    """The physics of one probe at one depth: truth plus the probe's own error."""

    def _setup(self, clock, environment, depth: int, seed: int, tag: str) -> None:
        self.clock = clock
        self.environment = environment
        self.depth = depth
        self.rng = random.Random(f"smt100:{seed}:{depth}:{tag}")
        self.offset_vwc = self.rng.uniform(-1, 1) * (ACCURACY_VWC - 3 * NOISE_VWC)
        self.offset_t = self.rng.uniform(-1, 1) * (ACCURACY_T - 3 * NOISE_T)
        self.fault: str | None = None
        self.measurements: list[Measurement] = []

    def _noise(self, sigma: float) -> float:
        return max(-3 * sigma, min(3 * sigma, self.rng.gauss(0, sigma)))

    def sample(self) -> tuple[float, float, float]:
        """(VWC %, temperature °C, permittivity) as the probe measures them now."""
        truth = self.environment.at(self.clock.unix_time(), self.depth)
        self.measurements.append(Measurement(self.clock.now_us, truth["vwc"], truth["temperature"]))
        vwc = truth["vwc"] + self.offset_vwc + self._noise(NOISE_VWC)
        t = truth["temperature"] + self.offset_t + self._noise(NOISE_T)
        eps = permittivity(max(0.0, vwc) / 100)
        self.counts = counts(eps, self.rng.gauss(0, COUNT_JITTER))
        return vwc, t, eps


class SMT100SDI12(_Probe):
    FAULT_MODES = MODES

    def __init__(self, clock, environment, depth: int = 0, address: str = "0", seed: int = 0):
        self._setup(clock, environment, depth, seed, "sdi12")
        self.address = address
        self.bus = None
        self._data: str | None = None         # values of the last measurement
        self._crc = False
        self._ready_at = 0
        self._last_values: str | None = None

    # --- called by the bus --------------------------------------------------------
    def on_break(self) -> None:
        if self._data is not None and self.clock.now_us < self._ready_at:
            self._data = None                 # §4.4.6: a break aborts the measurement

    def command(self, address: str, body: str):
        """(reply text with CR LF, delay µs) or (None, 0) for no reply."""
        if self.fault == "absent":
            return None, 0
        reply = self._reply(address, body)
        if reply is None:
            return None, 0
        delay = REPLY_DELAY_US + (LATE_US if self.fault == "timeout" else 0)
        return reply + "\r\n", delay

    def _reply(self, address: str, body: str) -> str | None:
        a = self.address
        if body == "!":
            return a
        if body == "I!":
            return f"{a}13TRUEBNERSMT100010SDI12"
        if len(body) == 3 and body[0] == "A" and body[2] == "!" and body[1].isalnum():
            self.address = body[1]
            if self.bus is not None:
                self.bus.sensors.pop(a, None)
                self.bus.sensors[self.address] = self
            return self.address
        if body in ("M!", "MC!"):
            self._measure(body == "MC!")
            return f"{a}0015"
        if body == "V!":
            return f"{a}0000"
        if len(body) == 3 and body[0] == "D" and body[1].isdigit() and body[2] == "!":
            if self.fault == "nack":
                return None
            values = self._data if body[1] == "0" and self.clock.now_us >= self._ready_at else None
            text = a + (values or "")
            if self._crc:
                text += sdi12_crc(text)
                if self.fault == "crc" and values:
                    i = next(i for i in range(len(a), len(text)) if text[i] in "01234568")
                    text = text[:i] + _same_parity_swap(text[i]) + text[i + 1:]
            return text
        return None      # not a command of this sensor: no reply (§4.4)

    def _measure(self, crc: bool) -> None:
        vwc, t, eps = self.sample()
        if self.fault == "range":
            vwc, t = 150.0, -60.0
        values = f"{self.counts:+d}{eps:+.2f}{vwc:+.2f}{t:+.2f}{SUPPLY_V:+.1f}"
        if self.fault == "stuck" and self._last_values is not None:
            values = self._last_values
        self._last_values = values
        self._data = values
        self._crc = crc
        self._ready_at = self.clock.now_us + MEASURE_US
        if self.bus is not None and self.fault not in ("timeout",):
            self.bus.service_request(self._ready_at + REPLY_DELAY_US, self.address)


def _same_parity_swap(c: str) -> str:
    """A different digit with the same number of one bits (7E1 parity still right)."""
    swap = {"0": "9", "9": "0", "1": "2", "2": "4", "4": "8", "8": "1", "3": "5", "5": "6",
            "6": "3"}
    return swap[c]


class SMT100Modbus(ModbusSlave, _Probe):
    """Holding registers 0..4 (§2.2); a read of 0..3 measures."""

    def __init__(self, clock, environment, depth: int = 0, unit: int = 1, seed: int = 0):
        ModbusSlave.__init__(self, unit)
        self._setup(clock, environment, depth, seed, "modbus")
        self.stored_address = unit      # register 4: takes effect at the next power-up

    def read_holding(self, address: int, count: int) -> list[int]:
        if address + count > 5:
            raise ModbusException(ILLEGAL_DATA_ADDRESS, f"registers {address}..{address + count - 1}")
        vwc, t, eps = self.sample()
        regs = [max(0, min(0xFFFF, round(t * 100) + 10000)),
                max(0, min(10000, round(vwc * 100))),
                max(100, min(0xFFFF, round(eps * 100))),
                self.counts,
                self.stored_address]
        if self.fault == "range":
            regs[1] = 0xFFFF
        return regs[address:address + count]

    def write_single(self, address: int, value: int) -> None:
        if address != 4:
            raise ModbusException(ILLEGAL_DATA_ADDRESS, f"register {address} is read-only")
        if not 1 <= value <= 247:
            raise ModbusException(ILLEGAL_DATA_VALUE, f"address {value}")
        self.stored_address = value
