"""Air temperature and humidity at a street-level site: a daily cycle plus weather.

The truth is a pure function of time for a given seed, so any instant can be asked
for again (a test compares a decoded reading with the truth at its measurement time).

- Daily cycle: minimum near sunrise, maximum mid-afternoon (about 15:00 local).
- Weather: slow fronts that shift the day's mean by a few degrees over 2-4 days, and
  quicker noise (passing clouds, wind) of a few tenths of a degree.
- Humidity follows from a dew point that drifts more slowly than the temperature, so
  relative humidity is high at night and low in the afternoon, as observed in cities.
- Pressure (station pressure at the sensor, hPa): a sea-level pressure that fronts move
  by tens of hPa over days, a small semidiurnal tide, reduced to the site's altitude.
- Rain (mm/h): stratiform rain while a front passes (low pressure), and convective cells
  (showers), most in the warm afternoon; a share of them are heavy cells whose peak
  (25-60 mm/h) lies above the DWD's 15 mm/h heavy-rain warning level for a few to tens
  of minutes. Rain is seeded per 6-hour block and held constant over each minute, so
  `rain_mm(t0, t1)` is an exact integral and any instant can be asked for again.

API other kinds may use (soil wetting, ...):

    w = Weather(seed)
    w.rain_rate_mm_h(t)      # rain intensity at unix time t, mm/h (constant per minute)
    w.rain_mm(t0, t1)        # rain that fell between t0 and t1 (unix s), mm
    w.at(t)                  # {"temperature", "humidity", "pressure", "rain_rate"}
"""
from __future__ import annotations

import math
import random

HOUR = 3600.0
DAY = 24 * HOUR
RAIN_BLOCK_S = 6 * 3600   # rain cells are seeded per block of this length
RAIN_STEP_S = 60          # the intensity is constant over each minute


class _SmoothNoise:
    """A sum of sinusoids with seeded periods and phases: continuous and repeatable."""

    def __init__(self, rng: random.Random, periods_h: tuple[float, float], amplitude: float,
                 terms: int = 6):
        self.terms = []
        for _ in range(terms):
            period = rng.uniform(*periods_h) * HOUR
            self.terms.append((2 * math.pi / period, rng.uniform(0, 2 * math.pi),
                               rng.uniform(0.5, 1.0)))
        norm = math.sqrt(sum(a * a for _, _, a in self.terms) / 2)
        self.scale = amplitude / norm

    def __call__(self, t: float) -> float:
        return self.scale * sum(a * math.sin(w * t + p) for w, p, a in self.terms)


def saturation_vapour_pressure(t_c: float) -> float:
    """Magnus formula over water (hPa), coefficients of Sonntag 1990."""
    return 6.112 * math.exp(17.62 * t_c / (243.12 + t_c))


class Weather:
    def __init__(self, seed: int = 0, mean_c: float = 17.0, daily_amplitude_c: float = 5.0,
                 utc_offset_h: float = 2.0, altitude_m: float = 100.0, heavy_share: float = 0.12):
        rng = random.Random(f"weather:{seed}")
        self.seed = seed
        self.altitude_m = altitude_m
        self.heavy_share = heavy_share     # share of convective cells that are heavy
        self._cell_cache: dict[int, list] = {}
        self._rate_cache: dict[int, float] = {}
        self.mean_c = mean_c
        self.daily_amplitude_c = daily_amplitude_c
        self.utc_offset_s = utc_offset_h * HOUR
        self._fronts = _SmoothNoise(rng, (48, 120), 3.0, terms=4)
        self._gusts = _SmoothNoise(rng, (0.3, 3.0), 0.4, terms=8)
        self._dew_drift = _SmoothNoise(rng, (24, 96), 2.0, terms=4)
        self._cloud = _SmoothNoise(rng, (12, 60), 0.35, terms=3)
        # Drawn after the temperature's terms, so the v1 temperature stays as it was.
        self._pressure_fronts = _SmoothNoise(rng, (36, 144), 9.0, terms=4)

    def temperature(self, unix_t: float) -> float:
        local = (unix_t + self.utc_offset_s) % DAY
        # Peak at 15:00 local; clouds damp the daily swing.
        amp = self.daily_amplitude_c * (1.0 - max(-0.5, min(0.5, self._cloud(unix_t))))
        daily = amp * math.cos(2 * math.pi * (local - 15 * HOUR) / DAY)
        return self.mean_c + daily + self._fronts(unix_t) + self._gusts(unix_t)

    def dew_point(self, unix_t: float) -> float:
        return self.mean_c - 7.5 + 0.6 * self._fronts(unix_t) + self._dew_drift(unix_t)

    def humidity(self, unix_t: float) -> float:
        t = self.temperature(unix_t)
        td = min(self.dew_point(unix_t), t)
        return min(100.0, 100.0 * saturation_vapour_pressure(td) / saturation_vapour_pressure(t))

    # --- pressure ------------------------------------------------------------------
    def sea_level_pressure(self, unix_t: float) -> float:
        """hPa: fronts (tens of hPa over days) plus the semidiurnal tide (about 1 hPa)."""
        local = (unix_t + self.utc_offset_s) % DAY
        tide = 0.6 * math.cos(4 * math.pi * (local - 10 * HOUR) / DAY)
        return 1013.0 + self._pressure_fronts(unix_t) + tide

    def pressure(self, unix_t: float) -> float:
        """Station pressure at the sensor (hPa), the barometric formula for the site's
        altitude (ICAO standard atmosphere)."""
        return self.sea_level_pressure(unix_t) * (1 - 2.25577e-5 * self.altitude_m) ** 5.25588

    # --- rain -----------------------------------------------------------------------
    def _cells(self, block: int) -> list[tuple[float, float, float, float]]:
        """Rain cells starting in the 6-hour block: (start, rise s, fall s, peak mm/h)."""
        cells = self._cell_cache.get(block)
        if cells is not None:
            return cells
        rng = random.Random(f"rain:{self.seed}:{block}")
        t0 = block * RAIN_BLOCK_S
        cells = []
        mid = t0 + RAIN_BLOCK_S / 2
        # Fronts: steady light rain where the pressure is low.
        if self._pressure_fronts(mid) < -4 and rng.random() < 0.6:
            start = t0 + rng.uniform(0, RAIN_BLOCK_S * 0.5)
            dur = rng.uniform(2, 5) * HOUR
            cells.append((start, dur * 0.3, dur * 0.7, rng.uniform(0.5, 2.5)))
        # Convective showers, most in the afternoon (12-20 h local).
        local_h = ((t0 + self.utc_offset_s) % DAY) / HOUR
        afternoon = 10 <= local_h < 18 or 12 <= (local_h + 6) % 24 < 18
        p_shower = 0.35 if afternoon else 0.12
        if rng.random() < p_shower:
            for _ in range(rng.randint(1, 3)):
                start = t0 + rng.uniform(0, RAIN_BLOCK_S)
                if rng.random() < self.heavy_share:
                    peak = rng.uniform(25, 60)        # heavy cell
                    rise, fall = rng.uniform(4, 10) * 60, rng.uniform(15, 35) * 60
                else:
                    peak = rng.uniform(1, 12)
                    rise, fall = rng.uniform(5, 15) * 60, rng.uniform(10, 40) * 60
                cells.append((start, rise, fall, peak))
        self._cell_cache[block] = cells
        return cells

    def _rate_exact(self, unix_t: float) -> float:
        block = int(unix_t // RAIN_BLOCK_S)
        rate = 0.0
        for b in (block - 1, block):
            for start, rise, fall, peak in self._cells(b):
                dt = unix_t - start
                if 0 <= dt < rise:
                    rate += peak * dt / rise
                elif rise <= dt < rise + fall:
                    rate += peak * (1 - (dt - rise) / fall)
        return rate

    def rain_rate_mm_h(self, unix_t: float) -> float:
        """Rain intensity (mm/h) at unix time t: constant over each whole minute."""
        minute = math.floor(unix_t / RAIN_STEP_S)
        rate = self._rate_cache.get(minute)
        if rate is None:
            rate = round(self._rate_exact((minute + 0.5) * RAIN_STEP_S), 4)
            if len(self._rate_cache) > 200_000:
                self._rate_cache.clear()
            self._rate_cache[minute] = rate
        return rate

    def rain_mm(self, t0: float, t1: float) -> float:
        """Rain (mm) that fell between unix times t0 and t1: the exact integral of the
        minute-by-minute intensity."""
        if t1 <= t0:
            return 0.0
        total = 0.0
        t = t0
        while t < t1:
            edge = min(t1, (math.floor(t / RAIN_STEP_S) + 1) * RAIN_STEP_S)
            total += self.rain_rate_mm_h(t) * (edge - t) / HOUR
            t = edge
        return total

    def at(self, unix_t: float) -> dict:
        return {"temperature": self.temperature(unix_t), "humidity": self.humidity(unix_t),
                "pressure": self.pressure(unix_t), "rain_rate": self.rain_rate_mm_h(unix_t)}
