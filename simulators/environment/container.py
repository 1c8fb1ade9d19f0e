"""A glass-recycling container on a street: who throws bottles in, when it is emptied,
and how its wall shakes (the truth behind the LIS3DH on the wall).

    box = Container(seed=1)
    box.fill_percent(t_s), box.tilt_deg(t_s), box.bottles_between(t0_s, t1_s)
    box.acceleration(t_s)        # (x, y, z) in g at the sensor, gravity included

Seeded and reproducible: the events are drawn in order from one random.Random, one
day at a time, as far as anyone asks; any instant can be asked for again.

- Use: deposit sessions of a few bottles (mean ~7, 0.7-3 s apart), Mon-Sat 07-20 local
  (the German "Einwurfzeiten"), Saturday busiest, Sunday almost nobody; `bottles_per_day`
  on a weekday.
- Each bottle is an impact on the wall: a decaying burst (tau 25-60 ms) of 0.5-2.5 g that
  weakens as the container fills (glass falls on glass); a few (3 %) land softly
  (below 0.2 g) and cannot be told from noise.
- Knocks (a kick, a lid) of 0.12-0.22 g now and then, day and night; street rumble
  below 0.05 g.
- The container holds `capacity` bottles; at 100 % further bottles are left beside it.
- Emptying: when it is at least `full_at` full, on the next working morning (Mon-Fri
  06-15 local); and on a fixed schedule every `schedule_days` days whatever the fill.
  The crane lifts and tilts the container (tilt 20-35°), the glass pours out for
  4 s + 30 s x fill fraction with 1.2-2.5 g of rattle, then it is put down with a thump.
- The container rests on an uneven pavement: a seeded rest tilt of 0.5-4°.
"""
from __future__ import annotations

import bisect
import math
import random

HOUR = 3600.0
DAY = 86400.0
LOCAL_UTC_OFFSET_S = 2 * 3600      # the simulated city keeps CEST (UTC+2), clock.py
DAY_SHARE = {0: 1.0, 1: 0.9, 2: 1.0, 3: 1.0, 4: 1.2, 5: 1.6, 6: 0.05}   # Mon..Sun
IMPACT_FREQ_HZ = 23.0            # wall ringing as sampled (aliased) at 100 Hz
TWOPI = 2.0 * math.pi            # as random.py has it


def _normals(rng: random.Random, n: int) -> list[float]:
    """The standard normal draws of n calls of `rng.gauss()`, made as it makes them
    (Box-Muller in pairs, the second kept in `gauss_next`): the same numbers, and the
    generator left as those calls would leave it."""
    out = []
    nxt = rng.gauss_next
    rnd = rng.random
    while len(out) < n:
        if nxt is not None:
            out.append(nxt)
            nxt = None
            continue
        x2pi = rnd() * TWOPI
        g2rad = math.sqrt(-2.0 * math.log(1.0 - rnd()))
        out.append(math.cos(x2pi) * g2rad)
        nxt = math.sin(x2pi) * g2rad
    rng.gauss_next = nxt
    return out


def _normals_checked() -> bool:
    """Whether `_normals` makes what this Python's `random.Random.gauss` makes."""
    a, b = random.Random(7), random.Random(7)
    a.gauss(0, 1)
    b.gauss(0, 1)
    return _normals(a, 5) == [b.gauss(0, 1) for _ in range(5)] and a.getstate() == b.getstate()


if not _normals_checked():      # another Python's gauss: draw through it
    def _normals(rng: random.Random, n: int) -> list[float]:  # noqa: F811
        return [rng.gauss(0, 1) for _ in range(n)]


class Event:
    __slots__ = ("kind", "t0", "t1", "amp", "tau", "phase", "axis")

    def __init__(self, kind, t0, t1, amp, tau=0.0, phase=0.0, axis=(1.0, 0.0, 0.0)):
        self.kind, self.t0, self.t1, self.amp, self.tau = kind, t0, t1, amp, tau
        self.phase, self.axis = phase, axis


class Emptying:
    __slots__ = ("t0", "lift_s", "pour_s", "lower_s", "tilt", "amp", "fill_before", "t1")

    def __init__(self, t0, fill_before, rng):
        self.t0 = t0
        self.fill_before = fill_before
        self.lift_s = rng.uniform(12, 20)
        self.pour_s = 4.0 + 30.0 * fill_before
        self.lower_s = rng.uniform(10, 15)
        self.tilt = rng.uniform(20, 35)
        self.amp = rng.uniform(1.2, 2.5)
        self.t1 = t0 + self.lift_s + self.pour_s + self.lower_s


class Container:
    def __init__(self, seed: int = 0, epoch_s: float = 0.0, capacity: tuple = (1100, 1700),
                 bottles_per_day: float = 200.0, full_at: float = 0.85, schedule_days: float = 14.0,
                 start_fill: float = 0.0):
        self.rng = random.Random(f"container:{seed}")
        self.epoch_s = epoch_s                      # unix time of t = 0 (for weekdays)
        self.capacity = int(self.rng.uniform(*capacity))
        self.bottles_per_day = bottles_per_day
        self.full_at = full_at
        self.schedule_days = schedule_days
        self.rest_tilt = self.rng.uniform(0.5, 4.0)
        self.rest_azimuth = self.rng.uniform(0, 2 * math.pi)
        self.noise_g = 0.004
        self.bottles: list[float] = []              # landing times (s) of bottles that went in
        self.impacts: list[Event] = []              # every wall event, by start time
        self._starts: list[float] = []
        self.emptyings: list[Emptying] = []
        self._fill_t: list[float] = [0.0]           # piecewise-constant fill: times
        self._fill_n: list[int] = [int(start_fill * self.capacity)]
        self._n = self._fill_n[0]
        self._made_to = 0.0                         # events exist up to here
        self._next_schedule = schedule_days * DAY * self.rng.uniform(0.3, 1.0)
        self._pending_empty: float | None = None
        self._busy_to = 0.0

    # --- generating, a day at a time -----------------------------------------------
    def _local(self, t: float) -> tuple[int, float]:
        """(weekday 0=Mon, local hour) at run time t."""
        lt = self.epoch_s + t + LOCAL_UTC_OFFSET_S
        return int(lt // DAY + 3) % 7, (lt % DAY) / HOUR      # 1970-01-01 was a Thursday

    def _ensure(self, t: float) -> None:
        while self._made_to <= t + 120:
            self._make_day(self._made_to)

    def _add(self, ev: Event) -> None:
        i = bisect.bisect(self._starts, ev.t0)
        self._starts.insert(i, ev.t0)
        self.impacts.insert(i, ev)

    def _set_fill(self, t: float, n: int) -> None:
        self._n = n
        self._fill_t.append(t)
        self._fill_n.append(n)

    def _make_day(self, day0: float) -> None:
        rng = self.rng
        end = day0 + DAY
        # sessions (a Poisson process per hour, weighted by weekday and hour)
        sessions = []
        for h in range(24):
            t_h = day0 + h * HOUR
            wd, lh = self._local(t_h)
            if not 7 <= lh < 20:
                rate = 0.02
            else:
                rate = self.bottles_per_day / 7.0 / 13.0 * DAY_SHARE[wd] * (1.3 if 16 <= lh < 19 else 1.0)
            k = 0
            x = rng.random()
            p = math.exp(-rate)
            cum = p
            while x > cum and k < 20:
                k += 1
                p *= rate / k
                cum += p
            for _ in range(k):
                sessions.append(t_h + rng.uniform(0, HOUR - 60))
        for _ in range(rng.choice((0, 1, 1, 2))):
            sessions.append(("knock", day0 + rng.uniform(0, DAY)))
        # emptying slots: scheduled, or the morning after it got full
        events = sorted(sessions, key=lambda s: s[1] if isinstance(s, tuple) else s)
        for s in events:
            t = s[1] if isinstance(s, tuple) else s
            self._maybe_empty(t)
            # one thing at a time at the container: after the last session or emptying
            busy = max(self._busy_to, self.emptyings[-1].t1 + 5 if self.emptyings else 0.0)
            if t < busy:
                t = busy + rng.uniform(5, 60)
            if isinstance(s, tuple):
                self._add(Event("knock", t, t + 0.2, rng.uniform(0.12, 0.22), rng.uniform(0.02, 0.04),
                                rng.uniform(0, 6.28), (0.9, 0.3, 0.3)))
                continue
            n = 1 + min(30, int(rng.expovariate(1 / 6.0)))
            for _ in range(n):
                self._bottle(t)
                t += rng.uniform(0.7, 3.0)
            self._busy_to = t
        self._made_to = end
        self._maybe_empty(end)

    def _bottle(self, t: float) -> None:
        rng = self.rng
        if self._n >= self.capacity:
            return                                  # full: left beside the container
        fill = self._n / self.capacity
        if rng.random() < 0.03:
            amp = rng.uniform(0.05, 0.18)
        else:
            amp = rng.uniform(0.5, 2.5) * (1 - 0.4 * fill)
        ax = (rng.uniform(0.85, 1.0), rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4))
        self._add(Event("bottle", t, t + 0.3, amp, rng.uniform(0.025, 0.06), rng.uniform(0, 6.28), ax))
        self.bottles.append(t)
        self._set_fill(t, self._n + 1)
        if self._n >= self.full_at * self.capacity and self._pending_empty is None:
            self._pending_empty = self._next_working_morning(t)

    def _next_working_morning(self, t: float) -> float:
        s = t + 2 * HOUR
        while True:
            wd, lh = self._local(s)
            if wd < 5 and 6 <= lh < 15:
                return s + self.rng.uniform(0, 1800)
            s += 1800

    def _maybe_empty(self, t: float) -> None:
        due = [x for x in (self._pending_empty, self._next_schedule) if x is not None and x <= t]
        if not due:
            return
        t0 = min(due)
        if self.emptyings and t0 < self.emptyings[-1].t1 + 600:
            t0 = self.emptyings[-1].t1 + 600
        t0 = max(t0, self._busy_to + 5)
        e = Emptying(t0, self._n / self.capacity, self.rng)
        self.emptyings.append(e)
        self._set_fill(e.t0 + e.lift_s + e.pour_s / 2, 0)
        self._pending_empty = None
        self._next_schedule = t0 + self.schedule_days * DAY

    # --- the truth ----------------------------------------------------------------
    def fill_percent(self, t: float) -> float:
        self._ensure(t)
        i = bisect.bisect_right(self._fill_t, t) - 1
        return 100.0 * self._fill_n[i] / self.capacity

    def bottles_between(self, t0: float, t1: float) -> int:
        self._ensure(t1)
        return bisect.bisect_right(self.bottles, t1) - bisect.bisect_right(self.bottles, t0)

    def emptyings_between(self, t0: float, t1: float) -> int:
        self._ensure(t1)
        return sum(1 for e in self.emptyings if t0 < e.t0 + e.lift_s <= t1)

    def _emptying_at(self, t: float):
        for e in reversed(self.emptyings):
            if e.t0 <= t < e.t1:
                return e
            if e.t1 <= t:
                return None
        return None

    def tilt_deg(self, t: float) -> float:
        self._ensure(t)
        e = self._emptying_at(t)
        tilt = self.rest_tilt
        if e is not None:
            lift_end = e.t0 + e.lift_s
            lower_start = lift_end + e.pour_s
            if t < lift_end:
                tilt += e.tilt * (t - e.t0) / e.lift_s
            elif t < lower_start:
                tilt += e.tilt
            else:
                tilt += e.tilt * (1 - (t - lower_start) / e.lower_s)
        return tilt

    def gravity(self, t: float) -> tuple[float, float, float]:
        """The static acceleration the sensor feels (+1 g along its Y axis, up, when
        level), tilted by the container's tilt."""
        th = math.radians(self.tilt_deg(t))
        s = math.sin(th)
        return (s * math.cos(self.rest_azimuth), math.cos(th), s * math.sin(self.rest_azimuth))

    def events_between(self, t0: float, t1: float) -> list[Event]:
        """Wall events (bottles, knocks) starting in [t0, t1)."""
        self._ensure(t1)
        i = bisect.bisect_left(self._starts, t0)
        j = bisect.bisect_left(self._starts, t1)
        return self.impacts[i:j]

    def emptyings_starting(self, t0: float, t1: float) -> list[Emptying]:
        self._ensure(t1)
        return [e for e in self.emptyings if t0 <= e.t0 < t1]

    def dynamic(self, t: float, rng: random.Random) -> tuple[float, float, float]:
        """The vibration at time t (g), without gravity: impacts ringing down, the rattle
        of an emptying, street rumble and noise."""
        x = y = z = 0.0
        i = bisect.bisect_right(self._starts, t)
        k = i - 1
        while k >= 0 and t - self._starts[k] < 0.5:
            ev = self.impacts[k]
            dt = t - ev.t0
            if dt < ev.t1 - ev.t0:
                v = ev.amp * math.exp(-dt / ev.tau) * math.cos(2 * math.pi * IMPACT_FREQ_HZ * dt + ev.phase)
                x += v * ev.axis[0]
                y += v * ev.axis[1]
                z += v * ev.axis[2]
            k -= 1
        e = self._emptying_at(t)
        if e is not None:
            lift_end = e.t0 + e.lift_s
            if lift_end <= t < lift_end + e.pour_s:
                a = e.amp
            else:
                a = 0.25
            x += rng.gauss(0, a * 0.6)
            y += rng.gauss(0, a * 0.4)
            z += rng.gauss(0, a * 0.4)
        n = self.noise_g
        return x + rng.gauss(0, n), y + rng.gauss(0, n), z + rng.gauss(0, n)

    def acceleration(self, t: float, rng: random.Random) -> tuple[float, float, float]:
        self._ensure(t)
        gx, gy, gz = self.gravity(t)
        dx, dy, dz = self.dynamic(t, rng)
        return gx + dx, gy + dy, gz + dz

    def accelerations(self, ts: list[float], rng: random.Random) -> list[tuple[float, float, float]]:
        """`acceleration(t, rng)` for each t of `ts` in turn: the same values and the same
        draws from `rng`, at a fraction of the cost (an accelerometer's FIFO burst)."""
        if not ts:
            return []
        self._ensure(max(ts))
        emptying = [self._emptying_at(t) for t in ts]
        z = _normals(rng, sum(6 if e is not None else 3 for e in emptying))
        starts, impacts, noise = self._starts, self.impacts, self.noise_g
        rest = None
        out = []
        j = 0
        for t, e in zip(ts, emptying):
            if e is not None:
                gx, gy, gz = self.gravity(t)
            else:
                if rest is None:
                    rest = self.gravity(t)
                gx, gy, gz = rest
            # dynamic(t, rng), inline; rng.gauss(0, s) is 0.0 + z * s
            x = y = z_ = 0.0
            k = bisect.bisect_right(starts, t) - 1
            while k >= 0 and t - starts[k] < 0.5:
                ev = impacts[k]
                dt = t - ev.t0
                if dt < ev.t1 - ev.t0:
                    v = ev.amp * math.exp(-dt / ev.tau) * math.cos(2 * math.pi * IMPACT_FREQ_HZ * dt + ev.phase)
                    x += v * ev.axis[0]
                    y += v * ev.axis[1]
                    z_ += v * ev.axis[2]
                k -= 1
            if e is not None:
                lift_end = e.t0 + e.lift_s
                if lift_end <= t < lift_end + e.pour_s:
                    a = e.amp
                else:
                    a = 0.25
                x += 0.0 + z[j] * (a * 0.6)
                y += 0.0 + z[j + 1] * (a * 0.4)
                z_ += 0.0 + z[j + 2] * (a * 0.4)
                j += 3
            out.append((gx + (x + (0.0 + z[j] * noise)), gy + (y + (0.0 + z[j + 1] * noise)),
                        gz + (z_ + (0.0 + z[j + 2] * noise))))
            j += 3
        return out

    def first_shake_above(self, t0: float, t1: float, threshold_g: float, min_s: float = 0.0) -> float | None:
        """The first instant in [t0, t1) at which the vibration (high-passed: gravity
        removed) exceeds `threshold_g` on some axis for at least `min_s`: when an
        accelerometer's activity interrupt would fire."""
        self._ensure(t1)
        best = None
        for ev in self.events_between(t0 - 0.5, t1):
            peak = ev.amp * max(abs(a) for a in ev.axis)
            if peak <= threshold_g:
                continue
            above = ev.tau * math.log(peak / threshold_g)
            if above < min_s:
                continue
            if ev.t0 >= t0:
                best = ev.t0
                break
        for e in self.emptyings:
            if e.t1 <= t0 or e.t0 >= t1:
                continue
            # the lift's rattle (0.25 g rms) crosses any wake threshold the node uses
            t = max(t0, e.t0)
            if best is None or t < best:
                best = t
        return best
