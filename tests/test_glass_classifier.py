"""The glass node's classifier and fill estimator on MicroPython, with synthetic FIFO
samples: a bottle is one impact, a knock and a rumble are none, a tilted pour is one
emptying, and the pour time calibrates the bottles per full container."""
from __future__ import annotations

import json

from simulators.interpreter import run_script

SCRIPT = r"""
import json, math
from glass import Detector, State
CFG = {"impact_mg": 250, "quiet_mg": 80, "loud_mg": 250, "wake_mg": 200, "tilt_deg": 12,
       "pour_base_s": 5.5, "pour_full_s": 28.8}
st = State({})
det = Detector(st, CFG)
t = [0]
def sig(dyn, tilt=2.0, n=32):
    buf = [0] * 96
    for i in range(n):
        th = math.radians(tilt)
        d = dyn(t[0])
        buf[3 * i] = int(1000 * math.sin(th) + d)
        buf[3 * i + 1] = int(1000 * math.cos(th))
        buf[3 * i + 2] = int(d / 3)
        t[0] += 1
    det.feed(buf, n)
def burst(t0, amp, tau=4.0):
    return lambda k: amp * math.exp(-(k - t0) / tau) * math.cos(1.4 * (k - t0)) if k >= t0 else 0
quiet = lambda k: 0
out = {}
for _ in range(4): sig(quiet)
sig(burst(t[0] + 5, 1500)); sig(quiet); sig(quiet)
out["bottle"] = st.up_imp
sig(burst(t[0] + 5, 180)); sig(quiet); sig(quiet)
out["knock"] = st.up_imp
for _ in range(20): sig(lambda k: 120 * math.sin(0.9 * k))
out["rumble"] = st.up_imp
for i in range(40):
    sig(burst(t[0] + 3, 1000)); sig(quiet)
out["since"] = st.since
# an emptying: lift, 20 s of pour with 1.5 g of rattle, lower
seed = [12345]
def rnd(k):
    seed[0] = (seed[0] * 1103515245 + 12345) & 0x7FFFFFFF
    return (seed[0] / 0x7FFFFFFF - 0.5) * 3000
for i in range(20): sig(quiet, tilt=2 + i)
for i in range(int(20 * 100 / 32)): sig(rnd, tilt=25)
for i in range(20): sig(quiet, tilt=22 - i)
for i in range(16): sig(quiet)
out["emptyings"] = st.up_emp
out["since_after"] = st.since
out["cap"] = st.cap
out["pour"] = det.ended
print(json.dumps(out))
"""


def test_bottles_knocks_rumble_and_an_emptying_are_told_apart():
    r = run_script(SCRIPT)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["bottle"] == 1
    assert out["knock"] == 1 and out["rumble"] == 1
    assert out["since"] == 41
    assert out["emptyings"] == 1 and out["since_after"] == 0
    pour = out["pour"][0]
    # loud time: the samples of the 20 s pour whose rattle exceeds 250 mg (~80 %)
    assert 15 <= pour <= 21, pour
    # 41 impacts in a container the pour says was (pour - 5.5) / 28.8 full
    assert abs(out["cap"] - 41 / ((pour - 5.5) / 28.8)) <= 1
