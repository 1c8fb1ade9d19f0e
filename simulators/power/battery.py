"""A node's battery and the ADC that reads it through a divider.

2×AA alkaline in series: about 3.1 V fresh, falling slowly with the charge drawn.
The RP2040 ADC is 12-bit; `read_u16()` scales it to 16 bits (MicroPython
docs/library/machine.ADC.rst), so the low 4 bits carry no information.
"""
from __future__ import annotations

import random


class Battery:
    def __init__(self, seed: int = 0, fresh_v: float = 3.10, drain_v_per_day: float = 0.0005):
        self.rng = random.Random(f"battery:{seed}")
        self.fresh_v = fresh_v
        self.drain_v_per_day = drain_v_per_day

    def voltage(self, t_s: float) -> float:
        return self.fresh_v - self.drain_v_per_day * t_s / 86400.0


class BatteryADC:
    """The ADC input that sees the battery through a resistor divider.

    Faults: "absent" (divider open: the input floats to ground) and "range" (input
    shorted to the rail: full scale).
    """
    FAULT_MODES = ("absent", "range")

    def __init__(self, clock, battery: Battery, divider: float, vref: float = 3.3):
        self.clock = clock
        self.battery = battery
        self.divider = divider
        self.vref = vref
        self.measurements: list[tuple[int, float]] = []   # (t_us, true volts)
        self.fault: str | None = None

    def read_u16(self) -> int:
        v = self.battery.voltage(self.clock.now_s)
        self.measurements.append((self.clock.now_us, v))
        code12 = round(v / self.divider / self.vref * 4095 + self.battery.rng.gauss(0, 0.7))
        code12 = max(0, min(4095, code12))
        if self.fault == "absent":
            code12 = 0
        elif self.fault == "range":
            code12 = 4095
        return code12 << 4 | code12 >> 8
