"""A tipping-bucket rain gauge with a reed switch, 0.2 mm per tip (Davis-class).

sensors.md §1.4: a seesaw of two cups tips when one holds a fixed volume and a magnet
on it closes a reed switch for a moment; each closure is one tip. The switch goes to
GND, the line has a pull-up, so a tip is a short low pulse. On the board the line feeds
the PCF8583's event-counter input (through an RC debounce and a Schmitt trigger) and an
MCU pin that can wake the MCU from deep sleep (docs/kinds/climate.md).

The model integrates the rain the environment lets fall into the funnel:
- calibration: each part's bucket tips at 0.2 mm × (1 + e), |e| ≤ 2 % (a field
  calibration tolerance of the class of ±2 % up to 50 mm/h);
- undercatch: water that falls while the bucket is tipping is lost (0.5 s per tip), so
  a gauge catches less at high intensity (≈3.5 % at 50 mm/h);
- the reed is closed for CLOSED_S after each tip.

Faults: "stuck" = the reed switch is stuck closed (a welded contact or a magnet that
stays over it): the line stays low, no more edges reach the counter. A gauge stuck
open (jammed bucket) cannot be told from a dry day by any electronics and is not
modelled as a fault the node could flag (docs/kinds/climate.md).
"""
from __future__ import annotations

import bisect
import math
import random

from simulators.environment.weather import RAIN_STEP_S

MM_PER_TIP = 0.2
TIP_TIME_S = 0.5       # the seesaw's travel: inflow meanwhile is lost
CLOSED_S = 0.1         # the reed is closed this long per tip
CALIBRATION = 0.02     # bucket volume tolerance


class RainGauge:
    FAULT_MODES = ("stuck",)

    def __init__(self, clock, environment, seed: int = 0, mm_per_tip: float = MM_PER_TIP):
        self.clock = clock
        self.environment = environment
        rng = random.Random(f"rain_gauge:{seed}")
        self.tip_mm = mm_per_tip * (1 + rng.uniform(-CALIBRATION, CALIBRATION))
        self.fault: str | None = None
        self.measurements: list = []
        self._t = clock.unix_time()      # the bucket has been integrated up to here
        self._water = rng.uniform(0, self.tip_mm)   # what the bucket holds at the start
        self.tips: list[float] = []      # unix times of every tip so far

    def catch_rate_mm_s(self, unix_t: float) -> float:
        r = self.environment.rain_rate_mm_h(unix_t) / 3600
        if r <= 0:
            return 0.0
        # fraction of the time the bucket is tipping: tips/s × tip time
        return r * max(0.0, 1 - r / self.tip_mm * TIP_TIME_S)

    def advance(self, unix_t: float) -> None:
        """Integrate the bucket up to unix_t, recording tip times."""
        t = self._t
        while t < unix_t:
            edge = min(unix_t, (math.floor(t / RAIN_STEP_S) + 1) * RAIN_STEP_S)
            c = self.catch_rate_mm_s(t)
            if c > 0:
                while self._water + c * (edge - t) >= self.tip_mm:
                    dt = (self.tip_mm - self._water) / c
                    t += dt
                    self.tips.append(t)
                    self._water = 0.0
                self._water += c * (edge - t)
            t = edge
        self._t = max(self._t, unix_t)

    def tips_between(self, t0: float, t1: float) -> int:
        """Tips in (t0, t1] (unix s)."""
        self.advance(t1)
        return bisect.bisect_right(self.tips, t1) - bisect.bisect_right(self.tips, t0)

    def next_tip(self, t0: float, t1: float) -> float | None:
        """The first tip in (t0, t1], or None."""
        self.advance(t1)
        i = bisect.bisect_right(self.tips, t0)
        return self.tips[i] if i < len(self.tips) and self.tips[i] <= t1 else None

    def level(self) -> int:
        """The signal line now: 1 (pull-up, reed open) or 0 (reed closed)."""
        if self.fault == "stuck":
            return 0
        now = self.clock.unix_time()
        self.advance(now)
        i = bisect.bisect_right(self.tips, now)
        return 0 if i and now - self.tips[i - 1] < CLOSED_S else 1
