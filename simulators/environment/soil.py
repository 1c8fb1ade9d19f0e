"""Soil under a street tree: water content and temperature at three depths.

    soil = Soil(seed=3)
    soil.at(unix_t, 0)    # {"vwc": 27.4 (% volume), "temperature": 18.2 (°C)} at depth 0

Water: a three-layer bucket model on a fixed 10-minute step, integrated from the start
of the run so every value is a pure function of time and seed:
- rain from the weather model (simulators/environment/weather.py: fronts and convective
  cells, the same rain the climate node's gauge sees for the same seed) infiltrates
  the top layer; water above saturation runs off;
- each layer above field capacity drains a fraction per hour into the one below (the
  bottom one into the subsoil);
- evapotranspiration follows the sun (0 at night, up to ~0.45 mm/h at noon), taken
  from the layers by root share (0.55, 0.30, 0.15) and reduced linearly between field
  capacity and the wilting point.
Temperature: the daily wave damped and delayed with depth, T(z,t) = Tm + A e^(-z/d)
sin(wt - z/d - phi) with damping depth d = 11 cm (soil thermal diffusivity ~0.45 mm²/s),
plus a slow seeded drift of the mean.
"""
from __future__ import annotations

import math
import random

from simulators.clock import DEFAULT_EPOCH
from simulators.environment.weather import Weather

DEPTHS_CM = (10, 30, 60)
LAYER_MM = (200.0, 250.0, 350.0)        # layer thicknesses around each probe
ROOT_SHARE = (0.55, 0.30, 0.15)
THETA_SAT, THETA_FC, THETA_WP = 0.45, 0.30, 0.10
DRAIN_PER_H = 0.30                        # share of the water above field capacity
PET_PEAK_MM_H = 0.45
STEP_S = 600
DAMPING_CM = 11.0


class Soil:
    def __init__(self, seed: int = 0, start_unix: float = DEFAULT_EPOCH, depths_cm=DEPTHS_CM,
                 weather: Weather | None = None):
        self.rng = random.Random(f"soil:{seed}")
        self.weather = weather if weather is not None else Weather(seed)
        self.start = start_unix
        self.depths_cm = tuple(depths_cm)
        self.mean_c = self.rng.uniform(14.0, 18.0)
        self.amplitude_c = self.rng.uniform(5.0, 8.0)
        self.drift = [(self.rng.uniform(30, 120), self.rng.uniform(0, 2 * math.pi),
                       self.rng.uniform(0.5, 1.5)) for _ in range(2)]
        theta0 = self.rng.uniform(0.18, 0.32)
        self._theta = [[theta0 + self.rng.uniform(-0.03, 0.03) + 0.02 * i for i in range(3)]]

    def rain_mm_h(self, unix_t: float) -> float:
        return self.weather.rain_rate_mm_h(unix_t)

    # --- water ------------------------------------------------------------------------
    def _pet_mm_h(self, s: float) -> float:
        hour = (s / 3600) % 24
        return PET_PEAK_MM_H * max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.0

    def _step(self, theta: list[float], s: float) -> list[float]:
        h = STEP_S / 3600
        water = [t * mm for t, mm in zip(theta, LAYER_MM)]
        water[0] += self.weather.rain_mm(self.start + s, self.start + s + STEP_S)
        water[0] = min(water[0], THETA_SAT * LAYER_MM[0])         # the rest runs off
        pet = self._pet_mm_h(s) * h
        for i in range(3):
            th = water[i] / LAYER_MM[i]
            stress = min(1.0, max(0.0, (th - THETA_WP) / (THETA_FC - THETA_WP)))
            water[i] -= pet * ROOT_SHARE[i] * stress
            excess = water[i] - THETA_FC * LAYER_MM[i]
            if excess > 0:
                moved = excess * min(1.0, DRAIN_PER_H * h)
                water[i] -= moved
                if i < 2:
                    water[i + 1] = min(water[i + 1] + moved, THETA_SAT * LAYER_MM[i + 1])
        return [w / mm for w, mm in zip(water, LAYER_MM)]

    def vwc(self, unix_t: float, depth: int) -> float:
        """Volumetric water content at probe `depth` (0 top), % volume."""
        k = max(0.0, (unix_t - self.start) / STEP_S)
        n = int(k)
        while len(self._theta) <= n + 1:
            i = len(self._theta) - 1
            self._theta.append(self._step(self._theta[-1], i * STEP_S))
        a, b = self._theta[n][depth], self._theta[n + 1][depth]
        return 100 * (a + (b - a) * (k - n))

    # --- temperature ------------------------------------------------------------------
    def temperature(self, unix_t: float, depth: int) -> float:
        s = unix_t - self.start
        z = self.depths_cm[depth] / DAMPING_CM
        mean = self.mean_c + sum(a * math.sin(2 * math.pi * s / (p * 3600) + ph)
                                 for p, ph, a in self.drift)
        w = 2 * math.pi / 86400
        # the surface peaks at 14:00 (sin peaks at a quarter period after 08:00)
        return mean + self.amplitude_c * math.exp(-z) * math.sin(w * (s - 8 * 3600) - z)

    def at(self, unix_t: float, depth: int) -> dict:
        return {"vwc": self.vwc(unix_t, depth), "temperature": self.temperature(unix_t, depth)}
