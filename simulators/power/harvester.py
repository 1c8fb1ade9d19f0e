"""An energy-autonomous node's supply: a small solar cell charging a supercapacitor,
and the ADC that reads the storage voltage through a divider.

    store = SolarStore(seed, epoch_s)
    store.charge_wake(start_us, end_us, sent, airtime_us)   # after each wake
    store.voltage(t_s)

- Sun: a clear-sky curve sin(elevation) between sunrise and sunset for the city's
  latitude (51.5° N) and the day of the year, times a seeded daily cloudiness
  (0.15-1.0) and a `dark` window (e.g. snow on the cell) in which only `dark_factor`
  of it arrives. Cell: `panel_mw` peak (a 5×6 cm amorphous cell on the housing; the
  wall shades it, so 40 mW), 70 % charging efficiency.
- Storage: `farad` at up to `v_max` (two 2.7 V supercaps in series, 10 F at 5.0 V),
  self-discharge `leak_ua`. Energy ½CV².
- Load, at the regulated 3.3 V through a buck-boost of 85 %, from datasheet-level
  currents: deep sleep 10 µA (ESP32 RTC timer + RTC memory, ESP32 datasheet §3.7
  Table 8), RAK3172 sleep 2 µA, and what the accelerometer draws at the ODR the firmware
  set (`sensor_a`, from the rig: LIS3DH 11 µA at 100 Hz, 0.5 µA powered down); a
  wake's first second at 30 mA (ESP32 modem-sleep CPU), the rest
  at 20 mA when it sends (waiting on the modem) or 0.8 mA when it only light-sleeps
  between FIFO reads (ESP32 light sleep); the radio's 45 mA during the airtime
  (STM32WLE5 at 14 dBm).
- Brown-out below `v_min` (the converter's minimum input, 1.8 V): `browned_out` records it.

The storage voltage is read as board ADC code like simulators/power/battery.py:
12 bits, behind the board's divider, returned by read_u16 scaled to 16 bits.
"""
from __future__ import annotations

import math
import random

DAY = 86400.0
V_SYS = 3.3
EFF_LOAD = 0.85
EFF_CHARGE = 0.70
SLEEP_A = 10e-6 + 2e-6              # ESP32 deep sleep + RAK3172 sleep (+ the sensors' own)
ACTIVE_A = 0.030
MODEM_WAIT_A = 0.020
LIGHT_A = 0.0008
TX_A = 0.045
ACTIVE_S = 1.0
LATITUDE = math.radians(51.5)
STEP_S = 300.0


class SolarStore:
    def __init__(self, seed: int = 0, epoch_s: float = 0.0, farad: float = 10.0, v_max: float = 5.0,
                 v_min: float = 1.8, v_start: float = 4.2, panel_mw: float = 40.0,
                 dark: tuple[float, float] | None = None, dark_factor: float = 0.03,
                 leak_ua: float = 5.0, sensor_a=lambda: 0.0):
        self.seed = seed
        self.epoch_s = epoch_s
        self.c = farad
        self.v_max = v_max
        self.v_min = v_min
        self.panel_w = panel_mw / 1000.0
        self.dark = dark
        self.dark_factor = dark_factor
        self.leak_a = leak_ua * 1e-6
        self.sensor_a = sensor_a        # what the always-on sensors draw now (A)
        self.energy = 0.5 * farad * v_start ** 2
        self.t = 0.0
        self.min_v = v_start
        self.browned_out: list[float] = []
        self.consumed_j = 0.0
        self.harvested_j = 0.0
        self._cloud: dict[int, float] = {}

    # --- the sun ---------------------------------------------------------------------
    def cloudiness(self, day: int) -> float:
        if day not in self._cloud:
            self._cloud[day] = random.Random(f"clouds:{self.seed}:{day}").uniform(0.15, 1.0)
        return self._cloud[day]

    def sun_w(self, t: float) -> float:
        """Power the cell delivers at run time t (W)."""
        ut = self.epoch_s + t
        doy = (ut / DAY + 0.0) % 365.25
        decl = math.radians(23.44) * math.sin(2 * math.pi * (doy - 80) / 365.25)
        hour_angle = 2 * math.pi * ((ut % DAY) / DAY - 0.5) + math.radians(7.2)  # 7.2° E (Bochum)
        sin_el = (math.sin(LATITUDE) * math.sin(decl)
                  + math.cos(LATITUDE) * math.cos(decl) * math.cos(hour_angle))
        if sin_el <= 0:
            return 0.0
        p = self.panel_w * sin_el * self.cloudiness(int(t // DAY))
        if self.dark and self.dark[0] <= t < self.dark[1]:
            p *= self.dark_factor
        return p

    # --- the store -------------------------------------------------------------------
    def _v(self) -> float:
        return math.sqrt(2 * max(0.0, self.energy) / self.c)

    def _draw(self, joules: float, t: float) -> None:
        self.energy -= joules
        self.consumed_j += joules
        v = self._v()
        self.min_v = min(self.min_v, v)
        if v < self.v_min and (not self.browned_out or t - self.browned_out[-1] > 3600):
            self.browned_out.append(t)
        self.energy = max(self.energy, 0.0)

    def advance(self, t: float) -> None:
        """Harvest and sleep current from the last instant to run time t."""
        while t - self.t > 1e-3:
            dt = min(STEP_S - (self.t % STEP_S), t - self.t)
            if dt < 1e-3:
                dt = min(STEP_S, t - self.t)
            mid = self.t + dt / 2
            gain = self.sun_w(mid) * EFF_CHARGE * dt
            self.harvested_j += gain
            self.energy = min(self.energy + gain, 0.5 * self.c * self.v_max ** 2)
            sleep_a = SLEEP_A + self.sensor_a()
            self._draw((sleep_a * V_SYS / EFF_LOAD + self.leak_a * self._v()) * dt, mid)
            self.t += dt

    def charge_wake(self, start_us: int, end_us: int, sent: bool, airtime_us: float = 0.0) -> None:
        """Account one wake's consumption (beyond the sleep current)."""
        self.advance(start_us / 1e6)
        dur = max(0.0, (end_us - start_us) / 1e6)
        active = min(dur, ACTIVE_S)
        rest = dur - active
        amp_s = ACTIVE_A * active + (MODEM_WAIT_A if sent else LIGHT_A) * rest + TX_A * airtime_us / 1e6
        self._draw(amp_s * V_SYS / EFF_LOAD, end_us / 1e6)

    def voltage(self, t: float) -> float:
        self.advance(t)
        return self._v()


class StorageADC:
    """The ADC pin that sees the storage voltage through the board's divider.

    Faults: "absent" (divider open: the input floats to ground) and "range" (input
    shorted to the rail: full scale).
    """
    FAULT_MODES = ("absent", "range")

    def __init__(self, clock, store: SolarStore, divider: float, vref: float = 3.3, seed: int = 0):
        self.clock = clock
        self.store = store
        self.divider = divider
        self.vref = vref
        self.rng = random.Random(f"storage-adc:{seed}")
        self.measurements: list[tuple[int, float]] = []   # (t_us, true volts)
        self.fault: str | None = None

    def read_u16(self) -> int:
        v = self.store.voltage(self.clock.now_s)
        self.measurements.append((self.clock.now_us, v))
        code12 = round(v / self.divider / self.vref * 4095 + self.rng.gauss(0, 0.7))
        code12 = max(0, min(4095, code12))
        if self.fault == "absent":
            code12 = 0
        elif self.fault == "range":
            code12 = 4095
        return code12 << 4 | code12 >> 8
