"""The glass kind: fill level of a glass-recycling container from the impacts of the
bottles thrown in (LIS3DH on the wall), on an energy-autonomous node (solar + supercap).

    take, sleep_ms = glass.plan(board, settings)   # node/wake.py: read now or sleep
    values, faults = glass.measure(board, settings); body = glass.encode(seq, values, faults)

The node wakes on the LIS3DH's INT1 (activity) at the first bottle of a session, stays
awake in light sleep reading the FIFO every 250 ms until the container has been quiet
for `glass_quiet_s`, and deep-sleeps until the next reading slot or the next session.
A reading goes out every `interval_s`, stretched x4 when the store is low and x12 (at
most 24 h; no waking on impacts, the LIS3DH powered down between readings) when it is
critical.

Body, schema 8 (glass v2, docs/kinds/glass.md): CBOR array [8, seq, status, fill %,
impacts, emptyings, tilt °, storage 20 mV, energy state]; status bit 0 lis3dh, bit 1
storage. In 20 mV steps the store's whole range (to 5.0 V) is one CBOR byte; schema 5
(10 mV, two) is still decoded.
"""
import time

import machine
from micropython import const

from drivers import SensorError
from drivers.lis3dh import LIS3DH
from glass import Detector, State
from node.log import log
from node.stuck import repeats
from payload import cbor

SCHEMA = const(8)
_STORAGE_STEP_MV = const(20)    # the wire unit of the storage voltage
FAULT_LIS3DH = const(1)
FAULT_STORAGE = const(2)
_ODR = const(100)
_FS_G = const(4)
_POLL_MS = const(250)          # the FIFO holds 320 ms at 100 Hz
_DUE_S = const(2)              # a slot this close counts as due
_MAX_INTERVAL_S = const(86400)
_HYSTERESIS_MV = const(150)
_MAX_SESSION_MS = const(600000)   # a container that never goes quiet (knocked over)
_PIN_WAKE = const(2)           # machine.wake_reason() of an ESP32 ext0 wake

DEFAULTS = {
    "glass_wake_mg": 200,          # INT1 activity threshold
    "glass_impact_mg": 250,        # an impact peaks above this
    "glass_quiet_mg": 80,
    "glass_loud_mg": 250,
    "glass_tilt_deg": 12,          # tilted: being emptied
    "glass_quiet_s": 6,            # a session ends after this long without activity
    "glass_capacity": 1400,        # bottles per full container, before calibration
    "glass_pour_base_s": 5.5,      # pour time of an empty container (s)
    "glass_pour_full_s": 28.8,     # extra pour time of a full one (s)
    "glass_low_mv": 3300,          # store below: energy low, interval x4
    "glass_critical_mv": 2500,     # below: critical, interval x12, no impact wakes
}

_run = {}                          # this wake: the part, its detector, the fault seen


def _cfg(settings):
    o = settings.options
    c = {}
    for k, v in DEFAULTS.items():
        c[k[6:]] = o.get(k, v)
    return c


def _storage_mv(board):
    spec = board.part("storage")
    if not spec:
        raise SensorError("storage", "not on this board")
    try:
        raw = machine.ADC(spec["adc_pin"]).read_u16()
    except OSError as e:
        raise SensorError("storage", "ADC error %s" % e)
    mv = int(raw * spec.get("vref", 3.3) * spec["divider"] * 1000 // 65535)
    if not spec.get("min_mv", 1000) <= mv <= spec.get("max_mv", 6000):
        raise SensorError("storage", "%d mV is not a storage voltage" % mv)
    return mv


def _energy_level(level, mv, cfg):
    """0 ok, 1 low, 2 critical, with hysteresis on the way up."""
    low, crit = cfg["low_mv"], cfg["critical_mv"]
    if mv < crit or (level == 2 and mv < crit + _HYSTERESIS_MV):
        return 2
    if mv < low or (level >= 1 and mv < low + _HYSTERESIS_MV):
        return 1
    return 0


def _interval_s(settings, level):
    s = settings.interval_ms // 1000
    s = s * (1, 4, 12)[level]
    return s if s < _MAX_INTERVAL_S else _MAX_INTERVAL_S


def _part(board):
    if "acc" not in _run:
        i2c, address = board.part_i2c("lis3dh")
        _run["acc"] = LIS3DH(i2c, address)
        _run["buf"] = [0] * 96
    return _run["acc"]


def _poll(acc, det):
    n = acc.read_fifo(_run["buf"])
    det.feed(_run["buf"], n)
    return n


def _session(board, st, cfg, slot, event):
    """Read the FIFO until the container is quiet (or the slot is due)."""
    acc = _part(board)
    if acc.start(_ODR, _FS_G, cfg["wake_mg"]):
        log("lis3dh configured")
        machine.lightsleep(_POLL_MS + 100)     # let the FIFO fill
    elif event:
        machine.lightsleep(_POLL_MS)           # let the burst that woke us reach the FIFO
    det = Detector(st, cfg, _ODR)
    _run["det"] = det
    quiet_polls = cfg["quiet_s"] * 1000 // _POLL_MS
    imp0 = st.up_imp
    polls = idle = 0
    while True:
        _poll(acc, det)
        polls += 1
        idle = 0 if det.active or st.emp_on else idle + 1
        if slot is not None and time.time() >= slot - _DUE_S:
            break
        if idle >= quiet_polls or (polls == 1 and idle and not event) or polls * _POLL_MS >= _MAX_SESSION_MS:
            break
        machine.lightsleep(_POLL_MS)
    acc.clear_interrupt()
    if st.energy == 2:
        acc.power_down()                       # critical: no impact wakes, save its 11 µA
    for pour in det.ended:
        log("emptying ended: pour %d s, capacity %s bottles after %d emptyings", pour, st.cap, st.cal)
    if polls > 1:
        log("session: %d polls, %d impacts", polls, st.up_imp - imp0)


def _arm(board, st):
    spec = board.part("lis3dh") or {}
    pin = spec.get("int1_pin")
    if pin is None or st.energy == 2 or _run.get("fault"):
        return
    p = machine.Pin(pin, machine.Pin.IN)
    p.irq(trigger=getattr(machine.Pin, "WAKE_HIGH", machine.Pin.IRQ_RISING), wake=machine.DEEPSLEEP)


def plan(board, settings):
    """Serve the accelerometer, then (True, ms from now to the next slot) when a
    reading is due now, else (False, ms to sleep until the slot); node/wake.py takes
    the time this call spent off both."""
    started = time.ticks_ms()
    cfg = _cfg(settings)
    st = State.load()
    _run["state"] = st
    try:
        st.energy = _energy_level(st.energy, _storage_mv(board), cfg)
    except SensorError:
        pass
    now = time.time()
    slot = st.slot
    if slot is not None and slot - now > _interval_s(settings, st.energy):
        slot = now                          # the clock was set back: read now
    if board.part("lis3dh"):
        try:
            event = machine.wake_reason() == getattr(machine, "PIN_WAKE", _PIN_WAKE)
            _session(board, st, cfg, slot, event)
        except SensorError as e:
            _run["fault"] = e
            log("fault %s", e)
    now = time.time()
    spent = time.ticks_diff(time.ticks_ms(), started)
    interval = _interval_s(settings, st.energy)
    _arm(board, st)
    if slot is None or now >= slot - _DUE_S:
        st.slot = now + interval
        settings.interval_ms = interval * 1000
        if interval != settings.options.get("interval_s", 900):
            log("energy %d: interval %d s", st.energy, interval)
        st.save()
        return True, interval * 1000 + spent
    st.save()
    return False, (slot - now) * 1000 + spent


def measure(board, settings):
    cfg = _cfg(settings)
    st = _run.get("state") or State.load()
    faults = 0
    fill = imp = emp = tilt = None
    fault = _run.get("fault")
    if board.part("lis3dh") and fault is None:
        try:
            acc = _part(board)
            det = _run.get("det")
            if det is None or det.tilt is None:
                det = Detector(st, cfg, _ODR)
                acc.start(_ODR, _FS_G, cfg["wake_mg"])
                machine.lightsleep(_POLL_MS + 100)
                if _poll(acc, det) == 0:
                    raise SensorError("lis3dh", "FIFO empty: the part does not sample")
            n = det.n
            b = _run["buf"]
            sx = sy = sz = 0
            for i in range(n):
                sx += b[3 * i]
                sy += b[3 * i + 1]
                sz += b[3 * i + 2]
            mag2 = (sx // n) ** 2 + (sy // n) ** 2 + (sz // n) ** 2
            if mag2 > 2500 * 2500 or mag2 < 300 * 300:
                raise SensorError("lis3dh", "out of range: |a| = %d mg at rest" % int(mag2 ** 0.5))
            if repeats("lis3dh", acc.raw):
                raise SensorError("lis3dh", "stuck: the same FIFO bytes as last time")
            tilt = int(det.tilt + 0.5)
        except SensorError as e:
            fault = e
            log("fault %s", e)
    elif board.part("lis3dh") is None:
        fault = SensorError("lis3dh", "not on this board")
    if fault is not None:
        faults |= FAULT_LIS3DH
    else:
        fill = st.fill_percent(cfg["capacity"])
        imp, emp = st.up_imp, st.up_emp
        st.tilt = tilt
        st.up_imp = st.up_emp = 0
    try:
        mv = _storage_mv(board)
        volts = (mv + _STORAGE_STEP_MV // 2) // _STORAGE_STEP_MV
        energy = st.energy
    except SensorError as e:
        log("fault %s", e)
        volts = energy = None
        faults |= FAULT_STORAGE
    st.save()
    return (fill, imp, emp, tilt, volts, energy), faults


def encode(seq, values, faults):
    return cbor.dumps([SCHEMA, seq, faults] + list(values))


def worst_case():
    """Longest body: impacts and emptyings in two-byte heads, the rest at their widest
    (storage: 6.0 V, the largest `max_mv` allows, is 300 steps, a 3-byte integer)."""
    return (100, 65535, 255, 180, 300, 2), 0
