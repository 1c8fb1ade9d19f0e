"""The water kind: a multi-parameter sonde on RS-485 Modbus RTU (11 quantities) and battery.

    values, faults = water.measure(board, settings)
    body = water.encode(seq, values, faults)

Body, schema 4 (docs/kinds/water.md): CBOR array [4, seq, status, h'<24 bytes>'], the
byte string holding the 12 channels as big-endian 16-bit integers (format below),
0x8000 (int16) / 0xFFFF (uint16) standing for null. Packed so that the worst case
(seq 0xFFFFFFFF, all flags) is a 34-byte body, a 47-byte frame, inside EU868 DR0's 51.

Config keys (/config.json): `sonde_unit` (Modbus unit, default the board's or 1),
`sonde_map` (register map of another sonde model, drivers/sonde.py), `sonde_timeout_ms`
(response timeout, default 500).
"""
from micropython import const

import machine

from drivers import SensorError
from drivers.modbus_rtu import ModbusRTU
from drivers.sonde import Sonde
from node.log import log
from node.stuck import repeats
from payload import cbor, packed

SCHEMA = const(4)
FAULT_SONDE = const(1)      # status bit 0
FAULT_BATTERY = const(2)    # status bit 1

# channel, wire divisor (wire = value * divisor), struct code; the battery comes last.
CHANNELS = (
    ("pressure_rel", 10, "h"),     # 0.1 hPa
    ("pressure_abs", 10, "H"),     # 0.1 hPa
    ("temperature", 100, "h"),     # 0.01 °C
    ("conductivity", 1, "H"),      # 1 µS/cm
    ("ph", 100, "H"),              # 0.01 pH
    ("orp", 10, "h"),              # 0.1 mV
    ("oxygen", 100, "H"),          # 0.01 mg/L
    ("chloride", 10, "H"),         # 0.1 mg/L
    ("nitrate", 100, "H"),         # 0.01 mg/L
    ("ammonium", 100, "H"),        # 0.01 mg/L
    ("bromide", 100, "H"),         # 0.01 mg/L
)
_FORMAT = ">" + "".join(c[2] for c in CHANNELS) + "H"    # + battery in mV
_PARITY = {"none": None, "even": 0, "odd": 1}


def _sonde(board, settings):
    spec = board.part("sonde")
    pins = board.spec["uart"][str(spec["id"])]
    baud = spec.get("baudrate", 9600)
    # Modbus over Serial Line §2.5.1: 8 data bits, even parity by default, 1 stop bit.
    uart = machine.UART(spec["id"], baudrate=baud, bits=8,
                        parity=_PARITY[spec.get("parity", "even")], stop=1,
                        tx=machine.Pin(pins["tx"]), rx=machine.Pin(pins["rx"]),
                        timeout=20, timeout_char=5)
    de = spec.get("de_pin")
    de = None if de is None else machine.Pin(de, machine.Pin.OUT, value=0)
    opts = settings.options
    bus = ModbusRTU(uart, de_pin=de, baudrate=baud,
                    timeout_ms=opts.get("sonde_timeout_ms", 500))
    return Sonde(bus, unit=opts.get("sonde_unit", spec.get("unit", 1)),
                 register_map=opts.get("sonde_map"))


def _wire(v, divisor, code):
    if v is None:
        return None
    x = v * divisor
    x = int(x + 0.5) if x >= 0 else -int(-x + 0.5)
    return x if packed.fits(x, code) else None


def measure(board, settings):
    faults = 0
    wire = [None] * len(CHANNELS)
    if board.part("sonde"):
        try:
            sonde = _sonde(board, settings)
            got = sonde.measure()
            if repeats("sonde", sonde.raw()):
                raise SensorError("sonde", "stuck: the same registers as last time")
            for name, reason in sonde.errors:
                log("fault sonde: %s %s", name, reason)
                faults |= FAULT_SONDE
            for i, (name, divisor, code) in enumerate(CHANNELS):
                wire[i] = _wire(got.get(name), divisor, code)
                if wire[i] is None and got.get(name) is not None:
                    log("fault sonde: %s %s does not fit the wire", name, got[name])
                    faults |= FAULT_SONDE
        except SensorError as e:
            wire = [None] * len(CHANNELS)
            log("fault %s", e)
            faults |= FAULT_SONDE
    else:
        faults |= FAULT_SONDE
    battery = board.battery_reading()
    if battery is None:
        faults |= FAULT_BATTERY
    wire.append(battery)
    return tuple(wire), faults


def encode(seq, values, faults):
    return cbor.dumps([SCHEMA, seq, faults, packed.pack(_FORMAT, values)])


def worst_case():
    """The longest body: every field is fixed-width, so any reading will do; all flags."""
    return (None,) * len(CHANNELS) + (None,), FAULT_SONDE | FAULT_BATTERY
