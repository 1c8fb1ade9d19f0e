"""A multi-parameter water-quality sonde on Modbus RTU, read through a register map.

    sonde = Sonde(ModbusRTU(uart, de_pin=Pin(6, Pin.OUT)), unit=1)
    values = sonde.measure()     # {"ph": 7.93, "oxygen": 9.1, ...}; None where a sensor failed

The map is data (DEFAULT_MAP, or `sonde_map` in /config.json for another sonde model):
which registers hold which quantity, the float word order, the function code, and the
size of a parameter block. With block 8 the layout is In-Situ's (Aqua TROLL 400 Modbus
and SDI-12 Reference Guide §7.2): value float32 (+0), Parameter ID (+2), Units ID (+3),
Data Quality ID (+4, 0 = good; 3 error, 7 sensor not connected: the value is then the
off-line sentinel), sentinel float32 (+5), units mask (+7). With block 2 each quantity is
a bare float32 (as on Ponsel/Aqualabo or Yosemitech probes, sensors.md §4.2-4.3).
Contiguous blocks are read in as few requests as Modbus allows (125 registers each,
Application Protocol §6.3). Modbus transport: drivers/modbus_rtu.py.

A failed transaction raises SensorError("sonde", reason); a single parameter that the
sonde reports in error, with another Parameter ID than the map expects, not a number,
outside the map's range, or of a magnitude below 1e-6 (two words in the wrong order
look like that) reads None and is listed in `errors`.
"""
from micropython import const

from drivers import SensorError
from drivers.modbus_rtu import ModbusError, float32

PART = "sonde"
_MAX_READ = const(125)
_TINY = 1e-6

# The default map (this project's "city-sonde-1", simulators/sensors/sonde.py and
# docs/kinds/water.md): name, PDU address, Parameter ID (None: not checked), lo, hi.
DEFAULT_MAP = {
    "model": "city-sonde-1",
    "function": 3,
    "order": "ABCD",
    "block": 8,
    "params": (
        ("pressure_rel", 0x0100, 2, -100.0, 2068.0),
        ("pressure_abs", 0x0108, 2, 0.0, 3500.0),
        ("temperature", 0x0110, 1, -5.0, 50.0),
        ("conductivity", 0x0118, 9, 0.0, 65000.0),
        ("ph", 0x0120, 17, 0.0, 14.0),
        ("orp", 0x0128, 19, -1400.0, 1400.0),
        ("oxygen", 0x0130, 20, 0.0, 50.0),
        ("chloride", 0x0138, 24, 0.0, 1000.0),
        ("nitrate", 0x0140, 22, 0.0, 100.0),
        ("ammonium", 0x0148, 23, 0.0, 100.0),
        ("bromide", 0x0150, 90, 0.0, 100.0),
    ),
}


class Sonde:
    def __init__(self, bus, unit=1, register_map=None):
        self.bus = bus
        self.unit = unit
        m = register_map or DEFAULT_MAP
        self.order = m.get("order", "ABCD")
        self.function = m.get("function", 3)
        self.block = m.get("block", 2)
        if self.function not in (3, 4) or self.block not in (2, 8):
            raise ValueError("sonde map: function 3/4 and block 2/8 only")
        self.params = sorted(m["params"], key=lambda p: p[1])
        self.errors = []
        self._raw = b""

    def _spans(self):
        """(first address, register count, params) of each request the map needs."""
        spans = []
        for p in self.params:
            # Merge only adjacent blocks: a sonde may refuse a read over unmapped registers.
            if (spans and p[1] == spans[-1][0] + spans[-1][1]
                    and p[1] + self.block - spans[-1][0] <= _MAX_READ):
                first, _, ps = spans[-1]
                spans[-1] = (first, p[1] + self.block - first, ps + [p])
            else:
                spans.append((p[1], self.block, [p]))
        return spans

    def measure(self):
        """Read every parameter of the map; a dict name -> float or None."""
        read = self.bus.read_holding if self.function == 3 else self.bus.read_input
        values = {}
        self.errors = []
        raw = bytearray()
        for first, count, params in self._spans():
            try:
                regs = read(self.unit, first, count)
            except ModbusError as e:
                raise SensorError(PART, "unit %d registers %d+%d: %s" % (self.unit, first, count, e))
            for r in regs:
                raw.append(r >> 8)
                raw.append(r & 0xFF)
            for p in params:
                values[p[0]] = self._value(p, regs, p[1] - first)
        self._raw = bytes(raw)
        return values

    def _value(self, p, regs, i):
        name, _, pid, lo, hi = p[0], p[1], p[2], p[3], p[4]
        v = float32(regs[i], regs[i + 1], self.order)
        if self.block == 8:
            if pid is not None and regs[i + 2] != pid:
                self.errors.append((name, "parameter id %d, map says %d" % (regs[i + 2], pid)))
                return None
            if regs[i + 4]:
                self.errors.append((name, "data quality %d" % regs[i + 4]))
                return None
        if v != v or not lo <= v <= hi:
            self.errors.append((name, "%s out of %s..%s" % (v, lo, hi)))
            return None
        if v != 0.0 and -_TINY < v < _TINY:
            # No sensor resolves 1e-6 of its unit: a float this small is two words in
            # the wrong order (a wrong map), not a measurement.
            self.errors.append((name, "%s is no measurement (word order?)" % v))
            return None
        return v

    def raw(self):
        """The register bytes of the last measure() (to tell a stuck sonde)."""
        return self._raw
