"""A multi-parameter water-quality sonde on RS-485 Modbus RTU: the default model of the
water kind, with this project's default register map ("city-sonde-1").

    sonde = Sonde(clock, lake, unit=1, seed=seed)
    bus.add(sonde)                       # simulators/bus/modbus_rtu.py

The layout follows In-Situ's Modbus convention for the Aqua TROLL family (Aqua TROLL
400 Modbus and SDI-12 Reference Guide §7.2 "Parameter Registers"; the same block in the
RDO PRO-X manual's "Device Specific Registers"; shared/reference/sensors.md §4.1):
every measured parameter is a block of 8 holding registers

| offset | size | content |
|---|---|---|
| +0 | 2 | measured value, IEEE-754 float32 (word order: the map's `order`) |
| +2 | 1 | Parameter ID |
| +3 | 1 | Units ID |
| +4 | 1 | Data Quality ID: 0 good, 3 error (value outside the sensor's range), 7 sensor communication error (sensor not plugged in) |
| +5 | 2 | off-line sentinel value, float32 (default 0.0), returned as the value when the Data Quality ID is not 0 |
| +7 | 1 | available-units bit mask |

The register ADDRESSES and the order of the blocks are this project's default, not
In-Situ's: a real Aqua TROLL 600 places its blocks by the sensors in its ports (its
"Sensor Map Registers"), so the firmware takes the map as data (`sonde_map` in
/config.json; firmware/drivers/sonde.py). Parameter IDs 1 (temperature), 2 (pressure),
17 (pH), 19 (ORP), 20 (dissolved oxygen) and Units IDs 1 (°C), 117 (mg/L), 145 (pH),
162 (mV) are In-Situ's (sources above); the others are this project's assumption, marked
in DEFAULT_MAP. In-Situ has no bromide sensor: bromide is a generic ISE here.

Accuracy (the part's own error the model adds, never beyond it): In-Situ Aqua TROLL 600
specification as documented in docs/kinds/water.md (temperature ±0.1 °C; pressure ±0.1 %
FS of a 30 psi (2068 hPa) sensor, ±2 hPa, relative pressure against the barometer ±3 hPa;
conductivity ±0.5 % of reading + 1 µS/cm; pH ±0.1; ORP ±5 mV; RDO ±0.1 mg/L to 8 mg/L,
±0.2 mg/L above; ISEs ±10 % of reading or ±2 mg/L, whichever is greater).

Faults (simulators/sensors/faults.py, shown by the bus model): absent, nack (exception
4), crc, timeout, stuck (all by simulators/bus/modbus_rtu.py) and range: every sensor's
signal is outside its measuring range, which the sonde reports as In-Situ's do: the
sentinel value with Data Quality 3 ("error").
`missing` names parameters whose sensor is unplugged: sentinel value, Data Quality 7.
"""
from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from simulators.bus.modbus_rtu import ILLEGAL_DATA_ADDRESS, ModbusException, ModbusSlave

DQ_GOOD = 0
DQ_ERROR = 3
DQ_NO_SENSOR = 7

BLOCK = 8
# name, PDU address, Parameter ID, Units ID, unit, measuring range (lo, hi).
# IDs marked * are this project's assumption (not found in In-Situ's public documents).
DEFAULT_MAP = {
    "model": "city-sonde-1",
    "function": 3,          # read holding registers
    "order": "ABCD",        # In-Situ floats: IEEE 4-byte, high word first
    "block": BLOCK,
    "params": (
        ("pressure_rel", 0x0100, 2, 21, "hPa", (-100.0, 2068.0)),        # units 21* (mbar)
        ("pressure_abs", 0x0108, 2, 21, "hPa", (0.0, 3500.0)),           # units 21*
        ("temperature", 0x0110, 1, 1, "°C", (-5.0, 50.0)),
        ("conductivity", 0x0118, 9, 65, "µS/cm", (0.0, 65000.0)),        # 9*, 65*
        ("ph", 0x0120, 17, 145, "pH", (0.0, 14.0)),
        ("orp", 0x0128, 19, 162, "mV", (-1400.0, 1400.0)),
        ("oxygen", 0x0130, 20, 117, "mg/L", (0.0, 50.0)),
        ("chloride", 0x0138, 24, 117, "mg/L", (0.0, 1000.0)),           # 24*
        ("nitrate", 0x0140, 22, 117, "mg/L", (0.0, 100.0)),             # 22*
        ("ammonium", 0x0148, 23, 117, "mg/L", (0.0, 100.0)),            # 23*
        ("bromide", 0x0150, 90, 117, "mg/L", (0.0, 100.0)),             # 90*
    ),
}


def accuracy(name: str, value: float) -> float:
    """The sonde's stated accuracy for `name` at `value` (docs/kinds/water.md)."""
    if name == "temperature":
        return 0.1
    if name == "pressure_abs":
        return 2.0
    if name == "pressure_rel":
        return 3.0
    if name == "conductivity":
        return 0.005 * abs(value) + 1.0
    if name == "ph":
        return 0.1
    if name == "orp":
        return 5.0
    if name == "oxygen":
        return 0.1 if value <= 8.0 else 0.2
    return max(2.0, 0.1 * abs(value))          # the ISEs


def float_registers(value: float, order: str) -> list[int]:
    b = struct.pack(">f", value)
    b = {"ABCD": b, "CDAB": b[2:] + b[:2], "BADC": bytes((b[1], b[0], b[3], b[2])),
         "DCBA": b[::-1]}[order]
    return [(b[0] << 8) | b[1], (b[2] << 8) | b[3]]


@dataclass
class Measurement:
    t_us: int
    truth: dict


class Sonde(ModbusSlave):
    response_delay_us = 40_000      # reading its sensors takes the sonde a moment
    late_us = 2_000_000

    def __init__(self, clock, environment, unit: int = 1, seed: int = 0,
                 register_map: dict = DEFAULT_MAP, order: str | None = None):
        super().__init__(unit)
        self.clock = clock
        self.environment = environment
        self.map = register_map
        self.order = order or register_map["order"]
        self.rng = random.Random(f"sonde:{seed}:{unit}")
        # Each sensor's calibration error: a fixed share of its stated accuracy.
        self.offset = {p[0]: self.rng.uniform(-0.5, 0.5) for p in register_map["params"]}
        self.missing: set[str] = set()
        self.measurements: list[Measurement] = []
        self._blocks = {p[1]: p for p in register_map["params"]}

    def _noise(self) -> float:
        return max(-0.3, min(0.3, self.rng.gauss(0, 0.1)))

    def _value(self, name: str, truth: float, lo: float, hi: float) -> float:
        v = truth + (self.offset[name] + self._noise()) * accuracy(name, truth)
        if lo == 0.0:
            v = max(0.0, v)          # a concentration reads 0, not below
        return v

    def read_holding(self, address: int, count: int) -> list[int]:
        block = self.map["block"]
        regs: dict[int, int] = {}
        truth = None
        for start, (name, _, pid, uid, _unit, (lo, hi)) in self._blocks.items():
            if start + block <= address or start >= address + count:
                continue
            if truth is None:
                truth = self.environment.at(self.clock.unix_time())
                self.measurements.append(Measurement(self.clock.now_us, truth))
            if name in self.missing:
                value, dq = 0.0, DQ_NO_SENSOR
            elif self.fault == "range":
                # The sensor's raw signal lies outside what it can measure: In-Situ's
                # sonde then returns the sentinel with Data Quality 3 (guide §7.2, pH).
                value, dq = 0.0, DQ_ERROR
            else:
                value, dq = self._value(name, truth[name], lo, hi), DQ_GOOD
            words = (float_registers(value, self.order) + [pid, uid, dq]
                     + float_registers(0.0, self.order) + [1])
            for i, w in enumerate(words[:block]):
                regs[start + i] = w
        if any(a not in regs for a in range(address, address + count)):
            raise ModbusException(ILLEGAL_DATA_ADDRESS, "outside the parameter blocks")
        return [regs[a] for a in range(address, address + count)]
