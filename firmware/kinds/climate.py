"""The climate kind, schema 2: air temperature and humidity (SHT4x), barometric
pressure (BME280), rain and rain intensity (tipping bucket counted by a PCF8583), battery,
and an immediate alarm uplink in heavy rain.

    take, sleep_ms = climate.plan(board, settings)   # every wake: a reading now? when next?
    values, faults = climate.measure(board, settings)
    body = climate.encode(seq, values, faults)

Body, schema 2 (docs/kinds/climate.md): CBOR array
[2, seq, status, t, rh, p, rain, rain_peak, battery] with t in 0.01 °C, rh in 0.5 %RH,
p in 0.1 hPa, rain (since the last reading) in 0.01 mm, rain_peak (the highest 5-minute
intensity since the last reading) in 0.1 mm/h, battery in mV. Status bits: 0 sht4x,
1 battery, 2 bme280, 3 pcf8583, 4 rain_gauge (a part failed; its channels are null),
5 heavy_rain (this reading is an alarm: a 5-minute window reached the warning level).

Rain watch: the PCF8583 counts tips while the node sleeps. When it is dry the node
sleeps to its next slot with the gauge line armed as a deep-sleep wake pin, so the
first tip of a shower wakes it; while it rains it wakes every 5 minutes on a grid
anchored at its slots, reads the counter (a window), and goes back to sleep without a
reading unless the window's intensity reached `rain_alarm_mm_h` (default 15, the DWD's
warning level); then a reading goes out at once, marked heavy_rain. Hysteresis: no
second alarm until the intensity has stayed below `rain_alarm_clear_mm_h` (default half
the alarm level) for `rain_alarm_rearm_min` (default 30) minutes.
"""
from micropython import const
import json
import time

import machine

from drivers import SensorError
from drivers.bme280 import BME280
from drivers.pcf8583 import PCF8583
from drivers.sht4x import SHT4x
from node.flashfs import ensure_dir
from node.log import log
from node.stuck import repeats
from payload import cbor

SCHEMA = const(2)
FAULT_SHT4X = const(1)        # status bit 0
FAULT_BATTERY = const(2)      # bit 1
FAULT_BME280 = const(4)       # bit 2
FAULT_PCF8583 = const(8)      # bit 3
FAULT_RAIN_GAUGE = const(16)  # bit 4
HEAVY_RAIN = const(32)        # bit 5: an alarm reading, not a fault
# Status bits whose reading goes as a confirmed uplink (node/delivery.py), while the day's
# downlinks allow: a heavy-rain alarm must not vanish unnoticed in a lost frame.
CONFIRM = HEAVY_RAIN

_WINDOW_MS = const(300000)    # the 5-minute intensity window
_EARLY_MS = const(2000)       # a wake this close before a grid instant counts as on it
_STUCK_CHECK_MS = const(250)  # a tip closes the reed for well under this
_STATE = "state/climate.json"
_COUNTER_WRAP = const(1000000)

_plan = None                  # what plan() decided for this wake, for measure()


def _now_ms():
    return time.time_ns() // 1000000


def _opt(settings, key, default):
    return settings.options.get(key, default)


def _load():
    try:
        with open(_STATE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _save(st):
    ensure_dir("state")
    with open(_STATE, "w") as f:
        json.dump(st, f)


def _gauge_line(board):
    """The gauge's signal pin (pull-up, the reed pulls it low), or None."""
    spec = board.part("rain_gauge")
    if not spec:
        return None
    return machine.Pin(spec["pin"], machine.Pin.IN, machine.Pin.PULL_UP)


def _read_rain(board):
    """(tips counted, restarted, fault bits, reason)."""
    faults = 0
    line = _gauge_line(board)
    if line is not None and line.value() == 0:
        time.sleep_ms(_STUCK_CHECK_MS)
        if line.value() == 0:
            log("fault rain_gauge: line held low (reed switch stuck closed)")
            faults |= FAULT_RAIN_GAUGE
    if not board.part("pcf8583"):
        return None, False, faults | FAULT_PCF8583
    i2c, address = board.part_i2c("pcf8583")
    try:
        n, restarted = PCF8583(i2c, address).count()
    except SensorError as e:
        log("fault %s", e)
        return None, False, faults | FAULT_PCF8583
    if restarted:
        log("pcf8583: counter had lost power; counting again from 0")
    return n, restarted, faults


def _fresh(now, count):
    return {"anchor": now, "slot": now, "w0": count, "r0": count, "peak": 0,
            "rain": False, "alarm": False, "quiet": 0, "last": now}


def plan(board, settings):
    """Decide this wake: (take a reading now, ms to sleep after it). Reads the rain
    counter, closes a 5-minute window when the wake is on the grid, and keeps the slot
    grid; the outcome (rain, peak, alarm) is kept for measure()."""
    global _plan
    now = _now_ms()
    interval = settings.interval_ms
    st = _load()
    count, restarted, faults = _read_rain(board)
    if st is None or now < st.get("last", 0) or now > st["slot"] + 2 * interval:
        # First wake, or the clock or the schedule was lost: a slot starts here.
        st = _fresh(now, count)
    elif machine.reset_cause() != machine.DEEPSLEEP_RESET:
        # Powered up (or reset): a reading now and the slot grid from here, as a
        # technician installing the node expects; the rain counted so far is kept.
        st["anchor"] = st["slot"] = now
    st["last"] = now
    tip_um = int(float(_opt(settings, "rain_mm_per_tip", 0.2)) * 1000 + 0.5)
    alarm_mmh = float(_opt(settings, "rain_alarm_mm_h", 15))
    clear_mmh = float(_opt(settings, "rain_alarm_clear_mm_h", alarm_mmh / 2))
    rearm = int(_opt(settings, "rain_alarm_rearm_min", 30)) * 60000 // _WINDOW_MS
    if count is not None and (restarted or st["w0"] is None or st["r0"] is None):
        st["w0"] = 0 if restarted else count
        st["r0"] = 0 if restarted else count
    since_w0 = (count - st["w0"]) % _COUNTER_WRAP if count is not None else 0
    # On a 5-minute grid instant? Then the window that ends here is closed.
    k = (now - st["anchor"] + _EARLY_MS) // _WINDOW_MS
    on_grid = now - st["anchor"] + _EARLY_MS - k * _WINDOW_MS <= 2 * _EARLY_MS
    alarm_now = False
    tips = since_w0
    if on_grid and count is not None:
        st["w0"] = count
        mmh10 = tips * tip_um * 12 // 100          # 0.1 mm/h
        st["peak"] = max(st["peak"], mmh10)
        st["rain"] = tips > 0
        if mmh10 >= alarm_mmh * 10:
            st["quiet"] = 0
            if not st["alarm"]:
                st["alarm"] = True
                alarm_now = True
                log("heavy rain: %d tips in 5 min = %d.%d mm/h", tips, mmh10 // 10, mmh10 % 10)
        elif mmh10 < clear_mmh * 10:
            st["quiet"] += 1
            if st["alarm"] and st["quiet"] >= rearm:
                st["alarm"] = False
                log("heavy rain over: alarm re-armed")
        else:
            st["quiet"] = 0
    elif since_w0:
        st["rain"] = True           # woken by the first tip of a shower
    slot_due = now + _EARLY_MS >= st["slot"]
    if slot_due:
        while st["slot"] <= now + _EARLY_MS:
            st["slot"] += interval
    take = slot_due or alarm_now
    reading = None
    if take:
        rain = peak = None
        if count is not None and not faults & FAULT_RAIN_GAUGE:
            rain = min(0xFFFF, (count - st["r0"]) % _COUNTER_WRAP * tip_um // 10)  # 0.01 mm
            peak = min(0xFFFF, st["peak"])
        if count is not None:
            st["r0"] = count
            st["peak"] = 0
        reading = (rain, peak, faults | (HEAVY_RAIN if alarm_now else 0))
    # The next wake: the next window end while it rains, else the next slot with the
    # gauge line as a wake pin (not when the line is held low: it would wake at once).
    raining = st["rain"] and count is not None
    if raining:
        nxt = st["anchor"] + ((now - st["anchor"] + _EARLY_MS) // _WINDOW_MS + 1) * _WINDOW_MS
        nxt = min(nxt, st["slot"])
    else:
        nxt = st["slot"]
        line = _gauge_line(board)
        if line is not None and not faults & FAULT_RAIN_GAUGE and count is not None:
            line.irq(trigger=getattr(machine.Pin, "WAKE_LOW", machine.Pin.IRQ_FALLING),
                     wake=machine.DEEPSLEEP)
    _save(st)
    _plan = reading
    if not take:
        log("rain watch: %d tips %s, next wake in %d s", tips,
            "in the window just closed" if on_grid else "since the window began", (nxt - now) // 1000)
    return take, max(0, nxt - now)


def _sht4x(board):
    if not board.part("sht4x"):
        return None, None, FAULT_SHT4X
    i2c, address = board.part_i2c("sht4x")
    try:
        sensor = SHT4x(i2c, address)
        t, rh_centi = sensor.measure()
        if repeats("sht4x", sensor.raw()):
            raise SensorError("sht4x", "stuck: the same raw words as last time")
        return t, (rh_centi + 25) // 50, 0          # 0.5 %RH steps
    except SensorError as e:
        log("fault %s", e)
        return None, None, FAULT_SHT4X


def _bme280(board):
    if not board.part("bme280"):
        return None, FAULT_BME280
    i2c, address = board.part_i2c("bme280")
    try:
        sensor = BME280(i2c, address)
        _t, p, _h = sensor.measure()
        if repeats("bme280", sensor.raw()):
            raise SensorError("bme280", "stuck: the same raw data as last time")
        return (p + 500) // 1000, 0                  # 0.01 Pa -> 0.1 hPa
    except SensorError as e:
        log("fault %s", e)
        return None, FAULT_BME280


def measure(board, settings):
    global _plan
    if _plan is None:
        try:
            plan(board, settings)
        except Exception as e:  # noqa: BLE001 - the other parts' readings still go out
            log("fault pcf8583: rain watch failed: %s %s", type(e).__name__, e)
            _plan = (None, None, FAULT_PCF8583)
    rain, peak, faults = _plan
    _plan = None
    t, rh, f = _sht4x(board)
    faults |= f
    p, f = _bme280(board)
    faults |= f
    battery = board.battery_reading()
    if battery is None:
        faults |= FAULT_BATTERY
    return (t, rh, p, rain, peak, battery), faults


def encode(seq, values, faults):
    t, rh, p, rain, peak, battery = values
    return cbor.dumps([SCHEMA, seq, faults, t, rh, p, rain, peak, battery])


def worst_case():
    """The reading whose body is the longest this kind can send: every channel at its
    widest encoding (16-bit values take 3 CBOR bytes; rain is capped at 65535 = 655 mm),
    status with an alarm and a fault so that it takes 2 bytes."""
    return (-4000, 200, 11000, 65535, 65535, 65535), HEAVY_RAIN | FAULT_SHT4X | FAULT_RAIN_GAUGE
