"""The bench check before a node goes into the field: every part of the board read
once, with its identity, a reading and a verdict.

    results = selftest.run(board, cfg)     # [{"part", "identity", "reading", "verdict", "reason"}]

Identities are what each part answers about itself: SHT4x serial number (command 0x89,
datasheet §4.4), BME280 chip id (register 0xD0 = 0x60, datasheet §5.4.1), LIS3DH
WHO_AM_I (register 0x0F = 0x33), PCF8583 control register (event-counter mode, 0x20),
SMT100 on SDI-12 `aI!` (SDI-12 v1.4 §4.4.3), SMT100 on Modbus its address register
(holding register 4), the sonde its unit and whether each parameter block carries the
Parameter ID the register map expects, the modem its DevEUI. A verdict is "ok", "fail"
(the reason says why) or "untested" (a part this firmware has no check for).
"""
import gc
import time

import machine
from micropython import const

from drivers import SensorError

_GRAVITY_MIN_MG = const(700)     # at rest the accelerometer reads 1 g, whatever its tilt
_GRAVITY_MAX_MG = const(1300)
_STUCK_CHECK_MS = const(250)     # a tip closes the reed for well under this


class _Settings:
    """What the kind helpers read from node.settings.Settings."""

    def __init__(self, cfg):
        self.options = cfg


def _result(part, identity=None, reading=None, reason=None, verdict=None):
    if verdict is None:
        verdict = "fail" if reason else "ok"
    return {"part": part, "identity": identity, "reading": reading, "verdict": verdict,
            "reason": reason}


def _sht4x(board, name):
    from drivers.sht4x import SHT4x
    i2c, address = board.part_i2c(name)
    sensor = SHT4x(i2c, address)
    ident = "serial %08X" % sensor.serial_number()
    try:
        t, rh = sensor.measure()
    except SensorError as e:
        return _result(name, ident, reason=e.reason)
    return _result(name, ident, {"temperature_c": t / 100, "humidity_pct": rh / 100})


def _bme280(board, name):
    from drivers.bme280 import BME280
    i2c, address = board.part_i2c(name)
    sensor = BME280(i2c, address)          # reads and checks the chip id
    ident = "chip id 0x60 (BME280)"
    try:
        t, p, h = sensor.measure()
    except SensorError as e:
        return _result(name, ident, reason=e.reason)
    return _result(name, ident, {"temperature_c": t / 100, "pressure_hpa": round(p / 10000, 2),
                                 "humidity_pct": round(h / 1024, 1)})


def _pcf8583(board, name):
    from drivers.pcf8583 import PCF8583
    i2c, address = board.part_i2c(name)
    try:
        control = i2c.readfrom_mem(address, 0, 1)[0]
    except OSError as e:
        return _result(name, reason="no answer at 0x%02x (I2C error %s)" % (address, e))
    mode = "event counter" if control & 0x30 == 0x20 else "not counting (mode 0x%02x)" % control
    n, restarted = PCF8583(i2c, address).count()
    reading = {"tips": n}
    if restarted:
        reading["note"] = "had lost power: counting again from 0"
    return _result(name, "control 0x%02x (%s)" % (control, mode), reading)


def _rain_gauge(board, name):
    spec = board.part(name)
    line = machine.Pin(spec["pin"], machine.Pin.IN, machine.Pin.PULL_UP)
    ident = "reed switch on pin %d" % spec["pin"]
    if line.value() == 0:
        time.sleep_ms(_STUCK_CHECK_MS)
        if line.value() == 0:
            return _result(name, ident, {"line": "closed"},
                           "line held low: reed switch stuck closed (or a tip just now: run again)")
    return _result(name, ident, {"line": "open"})


def _smt100(board, name, cfg):
    from kinds import soil
    spec = board.part(name)
    probe = soil._probe(board, name, spec, {}, cfg.get("soil_sdi12_crc", True))
    if spec.get("protocol", "sdi12") == "modbus":
        from drivers.modbus_rtu import ModbusError
        try:
            regs = probe.modbus.read_holding(probe.unit, 4, 1)
        except ModbusError as e:
            return _result(name, reason="Modbus unit %d: %s" % (probe.unit, e))
        ident = "Modbus unit %d, address register %d" % (probe.unit, regs[0])
    else:
        ident = "SDI-12 %s: %s" % (probe.address,
                                   probe.bus.identify(probe.address).decode().strip())
    try:
        vwc, t = probe.measure()
    except SensorError as e:
        return _result(name, ident, reason=e.reason)
    return _result(name, ident, {"vwc_pct": vwc / 100, "temperature_c": t / 100})


def _sonde(board, name, cfg):
    from kinds import water
    sonde = water._sonde(board, _Settings(cfg))
    try:
        values = sonde.measure()
    except SensorError as e:
        return _result(name, "Modbus unit %d" % sonde.unit, reason=e.reason)
    ids = [e for e in sonde.errors if "parameter id" in e[1]]
    ident = "Modbus unit %d, %d parameter blocks%s" % (
        sonde.unit, len(sonde.params), ", Parameter IDs as the map says" if not ids else "")
    reading = dict((k, None if v is None else round(v, 3)) for k, v in values.items())
    reason = "; ".join("%s %s" % e for e in sonde.errors) or None
    return _result(name, ident, reading, reason)


def _lis3dh(board, name):
    from drivers.lis3dh import LIS3DH
    i2c, address = board.part_i2c(name)
    sensor = LIS3DH(i2c, address)
    sensor.check_id()
    ident = "WHO_AM_I 0x33 (LIS3DH)"
    sensor.start()
    time.sleep_ms(100)                       # ten samples at 100 Hz into the FIFO
    buf = [0] * 96
    n = sensor.read_fifo(buf)
    if not n:
        return _result(name, ident, reason="no samples in the FIFO after 100 ms")
    x, y, z = buf[3 * n - 3], buf[3 * n - 2], buf[3 * n - 1]
    g = int((x * x + y * y + z * z) ** 0.5)
    reading = {"x_mg": x, "y_mg": y, "z_mg": z, "samples": n}
    if not _GRAVITY_MIN_MG <= g <= _GRAVITY_MAX_MG:
        return _result(name, ident, reading,
                       "|a| = %d mg at rest, not about 1000: mounting, or a faulty part" % g)
    return _result(name, ident, reading)


def _storage(board, name):
    from kinds import glass
    return _result(name, "ADC pin %d" % board.part(name)["adc_pin"], {"mv": glass._storage_mv(board)})


_CHECKS = {"sht4x": _sht4x, "bme280": _bme280, "pcf8583": _pcf8583, "rain_gauge": _rain_gauge,
           "lis3dh": _lis3dh, "storage": _storage}


def _check(board, name, cfg):
    fn = _CHECKS.get(name)
    if fn is not None:
        return fn(board, name)
    if name.startswith("smt100"):
        return _smt100(board, name, cfg)
    if name == "sonde":
        return _sonde(board, name, cfg)
    return _result(name, verdict="untested", reason="no self-test for this part")


def run(board, cfg, feed=None, modem=None):
    """Read every part of the board once. `modem()`: (identity, reading, reason) of
    the modem; `feed()` is called between parts (the watchdog)."""
    results = []
    for name in sorted(board.spec.get("parts", {})):
        try:
            results.append(_check(board, name, cfg))
        except SensorError as e:
            results.append(_result(name, reason=e.reason))
        except Exception as e:  # noqa: BLE001 - one part's failure is its verdict
            results.append(_result(name, reason="%s %s" % (type(e).__name__, e)))
        gc.collect()            # drivers come and go: keep the heap in one piece
        if feed:
            feed()
    if board.spec.get("battery"):
        try:
            results.append(_result("battery", "ADC pin %d" % board.spec["battery"]["adc_pin"],
                                   {"mv": board.battery_mv()}))
        except (SensorError, OSError) as e:
            results.append(_result("battery", reason=str(e)))
    if modem is not None:
        ident, reading, reason = modem()
        results.append(_result("modem", ident, reading, reason))
    return results
