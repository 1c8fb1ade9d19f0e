"""Air temperature and humidity at a street-level site: a daily cycle plus weather.

The truth is a pure function of time for a given seed, so any instant can be asked
for again (a test compares a decoded reading with the truth at its measurement time).

- Daily cycle: minimum near sunrise, maximum mid-afternoon (about 15:00 local).
- Weather: slow fronts that shift the day's mean by a few degrees over 2-4 days, and
  quicker noise (passing clouds, wind) of a few tenths of a degree.
- Humidity follows from a dew point that drifts more slowly than the temperature, so
  relative humidity is high at night and low in the afternoon, as observed in cities.
"""
from __future__ import annotations

import math
import random

HOUR = 3600.0
DAY = 24 * HOUR


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
                 utc_offset_h: float = 2.0):
        rng = random.Random(f"weather:{seed}")
        self.mean_c = mean_c
        self.daily_amplitude_c = daily_amplitude_c
        self.utc_offset_s = utc_offset_h * HOUR
        self._fronts = _SmoothNoise(rng, (48, 120), 3.0, terms=4)
        self._gusts = _SmoothNoise(rng, (0.3, 3.0), 0.4, terms=8)
        self._dew_drift = _SmoothNoise(rng, (24, 96), 2.0, terms=4)
        self._cloud = _SmoothNoise(rng, (12, 60), 0.35, terms=3)

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

    def at(self, unix_t: float) -> dict:
        return {"temperature": self.temperature(unix_t), "humidity": self.humidity(unix_t)}
