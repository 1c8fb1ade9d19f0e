"""Water of a small eutrophic city lake at a sonde 2 m below the surface.

    lake = Lake(seed)
    lake.at(unix_t)   # {"temperature": 18.4, "ph": 8.1, "oxygen": 9.6, ...}

The truth is a pure function of time for a given seed (no state), so any instant can be
asked for again:

- slow drift: every quantity wanders over days (sums of seeded sinusoids), the water
  level with the weather, the barometric pressure with fronts;
- the daily cycle of photosynthesis: by day algae take up CO2 and release O2, so
  dissolved oxygen and pH rise to a maximum in the late afternoon and fall through the
  night (respiration); the water temperature follows the sun with a small amplitude;
  redox potential follows oxygen;
- pollution events (combined-sewer overflows after rain, road run-off): seeded instants,
  the first within the first day and a half, then one every 2.5 days on average. Each
  rises over about an hour and decays over hours: conductivity, chloride, ammonium,
  nitrate and bromide go up, oxygen and redox potential go down, pH dips slightly, and
  the level rises a few centimetres.

Units: hPa, °C, µS/cm, pH, mV, mg/L (nitrate as NO3-N, ammonium as NH4-N).
"""
from __future__ import annotations

import math
import random

from simulators.clock import DEFAULT_EPOCH
from simulators.environment.weather import DAY, HOUR, _SmoothNoise

RHO_G = 1000.0 * 9.80665 / 100.0    # hPa per metre of fresh water


def oxygen_saturation_mg_l(t_c: float) -> float:
    """Saturated dissolved oxygen in fresh water at 1013 hPa (Benson & Krause fit, mg/L)."""
    tk = t_c + 273.15
    ln = (-139.34411 + 1.575701e5 / tk - 6.642308e7 / tk ** 2 + 1.243800e10 / tk ** 3
          - 8.621949e11 / tk ** 4)
    return math.exp(ln)


class Lake:
    def __init__(self, seed: int = 0, depth_m: float = 2.0, utc_offset_h: float = 2.0,
                 start_unix: float = DEFAULT_EPOCH):
        rng = random.Random(f"lake:{seed}")
        self.start_unix = start_unix     # pollution events are scheduled from here
        self.depth_m = depth_m
        self.utc_offset_s = utc_offset_h * HOUR
        self._baro = _SmoothNoise(rng, (36, 120), 8.0, terms=4)          # hPa
        self._level = _SmoothNoise(rng, (48, 200), 0.05, terms=4)       # m
        self._seiche = _SmoothNoise(rng, (0.2, 1.0), 0.004, terms=4)    # m
        self._temp = _SmoothNoise(rng, (48, 150), 1.2, terms=4)         # °C
        self._cond = _SmoothNoise(rng, (48, 200), 25.0, terms=4)        # µS/cm
        self._ph = _SmoothNoise(rng, (48, 150), 0.12, terms=4)
        self._orp = _SmoothNoise(rng, (24, 120), 20.0, terms=4)         # mV
        self._sun = _SmoothNoise(rng, (12, 60), 0.3, terms=3)           # cloudiness
        self._cl = _SmoothNoise(rng, (72, 240), 4.0, terms=3)
        self._no3 = _SmoothNoise(rng, (72, 240), 0.4, terms=3)
        self._nh4 = _SmoothNoise(rng, (48, 200), 0.05, terms=3)
        self._br = _SmoothNoise(rng, (72, 240), 0.02, terms=3)
        self.events = self._pollution_events(rng)

    # --- pollution ---------------------------------------------------------------
    @staticmethod
    def _pollution_events(rng: random.Random) -> list[tuple[float, float]]:
        """(start s since the start of the run, strength 0.3..1) for a year."""
        events = []
        t = rng.uniform(6, 36) * HOUR
        while t < 366 * DAY:
            events.append((t, rng.uniform(0.3, 1.0)))
            t += rng.expovariate(1 / (60 * HOUR)) + 6 * HOUR
        return events

    def pollution(self, t_s: float) -> float:
        """Load of pollution now: 0 clean; an event rises (1 h) and decays (τ 8 h)."""
        load = 0.0
        for start, strength in self.events:
            if start > t_s:
                break
            age = t_s - start
            if age > 3 * DAY:
                continue
            rise = min(1.0, age / HOUR)
            load += strength * rise * math.exp(-max(0.0, age - HOUR) / (8 * HOUR))
        return min(load, 1.5)

    # --- the truth -----------------------------------------------------------------
    def _daylight(self, unix_t: float) -> float:
        """Photosynthesis drive, -1 (pre-dawn) .. +1 (late afternoon)."""
        local = (unix_t + self.utc_offset_s) % DAY
        amp = 1.0 - max(-0.6, min(0.6, self._sun(unix_t)))
        return amp * math.cos(2 * math.pi * (local - 16.5 * HOUR) / DAY)

    def at(self, unix_t: float) -> dict:
        """The water at the sonde at `unix_t`."""
        p = self.pollution(unix_t - self.start_unix)
        sun = self._daylight(unix_t)
        local = (unix_t + self.utc_offset_s) % DAY
        temperature = (18.0 + self._temp(unix_t)
                       + 0.6 * math.cos(2 * math.pi * (local - 17 * HOUR) / DAY))
        head_m = self.depth_m + self._level(unix_t) + self._seiche(unix_t) + 0.04 * p
        pressure_rel = head_m * RHO_G
        baro = 1013.0 + self._baro(unix_t)
        sat = oxygen_saturation_mg_l(temperature)
        oxygen = max(0.5, sat * (1.0 + 0.16 * sun) - 2.8 * p)
        ph = 7.9 + self._ph(unix_t) + 0.28 * sun - 0.15 * p
        orp = 240.0 + self._orp(unix_t) + 25.0 * (oxygen - sat) - 90.0 * p
        return {
            "pressure_rel": pressure_rel,
            "pressure_abs": baro + pressure_rel,
            "temperature": temperature,
            "conductivity": 450.0 + self._cond(unix_t) + 260.0 * p,
            "ph": ph,
            "orp": orp,
            "oxygen": oxygen,
            "chloride": 38.0 + self._cl(unix_t) + 55.0 * p,
            "nitrate": 2.2 + self._no3(unix_t) + 2.5 * p,
            "ammonium": 0.15 + abs(self._nh4(unix_t)) + 1.8 * p,
            "bromide": 0.08 + abs(self._br(unix_t)) + 0.25 * p,
        }
