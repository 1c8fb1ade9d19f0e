"""Glass-container logic on the node: impact classifier, emptying detector and fill
estimator with a per-container calibration kept on the flash.

    st = State.load(); det = Detector(st, cfg); det.feed(samples_mg, n)
    st.fill_percent(); st.save()

Samples are (x, y, z) in mg from the LIS3DH FIFO at `odr` Hz, the sensor's Y axis up.

- Impact: the vibration (sample minus a slowly following gravity estimate, largest
  axis) rises above `impact_mg` and is quiet again (below `quiet_mg` for 150 ms)
  within 0.5 s, while the container stands (tilt below `tilt_deg`). One impact = one
  bottle. Longer events (rumble, the crane's rattle) are not counted.
- Emptying: the container is tilted (gravity more than `tilt_deg` off the Y axis)
  and shakes above `loud_mg` for at least 3 s in total; it is counted once, and when
  the container stands again the loud time is the pour time.
- Fill: impacts since the last emptying / bottles per full container. The calibration:
  at each emptying the pour time gives the fill it held
  ((pour_s - pour_base_s) / pour_full_s, the glass streams out for longer the more
  there is), so impacts / that fill is one observation of the bottles per full
  container; the first replaces the configured guess, later ones are averaged
  (up to 8). The node assumes it was fitted to an empty container.
"""
import json
import math
import os

from micropython import const
from node.flashfs import ensure_dir

_FILE = "state/glass.json"
_QUIET_SAMPLES = const(15)     # 150 ms at 100 Hz ends an event
_IMPACT_MAX_SAMPLES = const(50)   # an impact is over within 0.5 s
_EMPTY_MIN_S = const(3)
_MAX_CAL = const(8)
_CALM_BATCHES = const(12)      # 3 s of FIFO reads


class State:
    """What the node remembers about its container between wakes (on the flash)."""

    KEYS = ("slot", "up_imp", "up_emp", "since", "cap", "cal", "emp_on", "emp_loud",
            "emp_tilt", "emp_calm", "energy", "tilt")

    def __init__(self, d):
        self.slot = d.get("slot")          # RTC seconds of the next reading, None: now
        self.up_imp = d.get("up_imp", 0)   # impacts since the last uplink
        self.up_emp = d.get("up_emp", 0)   # emptyings since the last uplink
        self.since = d.get("since", 0)     # impacts since the last emptying
        self.cap = d.get("cap")            # bottles per full container (calibrated)
        self.cal = d.get("cal", 0)         # emptyings the calibration has seen
        self.emp_on = d.get("emp_on", 0)   # an emptying is under way (counted)
        self.emp_loud = d.get("emp_loud", 0)   # loud samples while tilted, this emptying
        self.emp_tilt = d.get("emp_tilt", 0)   # the container is tilted (with hysteresis)
        self.emp_calm = d.get("emp_calm", 0)   # batches standing since it was tilted
        self.energy = d.get("energy", 0)   # 0 ok, 1 low, 2 critical
        self.tilt = d.get("tilt")          # last tilt, degrees

    @classmethod
    def load(cls):
        for path in (_FILE, _FILE + ".new"):     # .new: a save cut between its two steps
            try:
                with open(path) as f:
                    return cls(json.load(f))
            except (OSError, ValueError):
                pass
        return cls({})

    def save(self):
        ensure_dir("state")
        d = {}
        for k in self.KEYS:
            d[k] = getattr(self, k)
        tmp = _FILE + ".new"
        with open(tmp, "w") as f:
            json.dump(d, f)
        try:
            os.remove(_FILE)
        except OSError:
            pass
        os.rename(tmp, _FILE)

    def capacity(self, guess):
        return self.cap if self.cap else guess

    def fill_percent(self, guess):
        p = (self.since * 100 + self.capacity(guess) // 2) // self.capacity(guess)
        return 100 if p > 100 else int(p)

    def emptied(self, pour_s, cfg):
        """An emptying ended after `pour_s` of pouring: calibrate, start counting anew.
        Returns the fill fraction the pour time says it held."""
        frac = (pour_s - cfg["pour_base_s"]) / cfg["pour_full_s"]
        frac = 0.05 if frac < 0.05 else 1.0 if frac > 1.0 else frac
        if frac >= 0.3 and self.since >= 30:
            obs = self.since / frac
            n = self.cal if self.cal < _MAX_CAL else _MAX_CAL
            self.cap = int(obs if not self.cap or n == 0 else (self.cap * n + obs) / (n + 1))
            self.cal += 1
        self.since = 0
        return frac


class Detector:
    def __init__(self, state, cfg, odr=100):
        self.st = state
        self.odr = odr
        self.impact_mg = cfg["impact_mg"]
        self.quiet_mg = cfg["quiet_mg"]
        self.loud_mg = cfg["loud_mg"]
        self.wake_mg = cfg["wake_mg"]
        self.tilt_deg = cfg["tilt_deg"]
        self.cfg = cfg
        self.g = None                 # gravity estimate (mg)
        self.in_event = False
        self.ev_len = 0
        self.ev_peak = 0
        self.quiet = 0
        self.active = 0               # samples above wake_mg in the last feed
        self.tilt = None
        self.n = 0                    # samples in the last non-empty feed
        self.ended = []               # pour times of emptyings that ended (log)

    def _tilt_of(self, x, y, z):
        m = math.sqrt(x * x + y * y + z * z)
        if m < 1:
            return 0.0
        c = y / m
        c = 1.0 if c > 1 else -1.0 if c < -1 else c
        return math.degrees(math.acos(c))

    def feed(self, buf, n):
        """Classify n samples (x, y, z in mg) from buf."""
        if n == 0:
            self.active = 0
            return
        self.n = n
        sx = sy = sz = 0
        for i in range(n):
            sx += buf[3 * i]
            sy += buf[3 * i + 1]
            sz += buf[3 * i + 2]
        mx, my, mz = sx // n, sy // n, sz // n
        self.tilt = self._tilt_of(mx, my, mz)
        st = self.st
        # Tilted from tilt_deg on; standing again only after _CALM_BATCHES batches
        # below two thirds of it (the rattle of a pour shakes a batch's mean).
        if self.tilt >= self.tilt_deg:
            st.emp_tilt = 1
            st.emp_calm = 0
        elif st.emp_tilt and self.tilt < self.tilt_deg * 2 / 3:
            st.emp_calm += 1
            if st.emp_calm >= _CALM_BATCHES:
                st.emp_tilt = 0
                st.emp_calm = 0
        tilted = st.emp_tilt
        if self.g is None:
            self.g = [mx, my, mz]
        g = self.g
        active = 0
        loud = 0
        impact_mg, quiet_mg = self.impact_mg, self.quiet_mg
        for i in range(n):
            x = buf[3 * i]
            y = buf[3 * i + 1]
            z = buf[3 * i + 2]
            dx = x - g[0]
            dy = y - g[1]
            dz = z - g[2]
            d = abs(dx)
            if abs(dy) > d:
                d = abs(dy)
            if abs(dz) > d:
                d = abs(dz)
            k = 16 if d < quiet_mg else 64
            g[0] += dx // k
            g[1] += dy // k
            g[2] += dz // k
            if d >= self.wake_mg:
                active += 1
            if tilted and d >= self.loud_mg:
                loud += 1
            if d < quiet_mg:
                self.quiet += 1
            else:
                self.quiet = 0
            if self.in_event:
                self.ev_len += 1
                if d > self.ev_peak:
                    self.ev_peak = d
                if self.quiet >= _QUIET_SAMPLES:
                    self.in_event = False
                    if (self.ev_len - _QUIET_SAMPLES <= _IMPACT_MAX_SAMPLES and not tilted
                            and not st.emp_on):
                        st.up_imp += 1
                        st.since += 1
            elif d >= impact_mg:
                self.in_event = True
                self.ev_len = 1
                self.ev_peak = d
        self.active = active
        if tilted:
            st.emp_loud += loud
            if not st.emp_on and st.emp_loud >= _EMPTY_MIN_S * self.odr:
                st.emp_on = 1
                st.up_emp += 1
        else:
            if st.emp_on:
                self.ended.append(st.emp_loud / self.odr)
                st.emptied(st.emp_loud / self.odr, self.cfg)
            st.emp_on = 0
            st.emp_loud = 0
