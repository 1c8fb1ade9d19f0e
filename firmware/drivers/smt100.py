"""TRUEBNER SMT100 soil moisture and temperature probe: its SDI-12 and Modbus faces.

    probe = SMT100SDI12(SDI12(uart), address="0")          # or SMT100Modbus(ModbusRTU(uart), unit=1)
    vwc_centi_pct, t_centi_c = probe.measure()

Scaling per the SMT100 manual facts (shared/reference/sensors.md §2.1-§2.3):
- SDI-12 (§2.3): `aM!`/`aMC!` announce 5 values, in the order raw counts, permittivity,
  volumetric water content %, temperature °C, supply voltage V.
- Modbus RTU (§2.2): holding registers 0 temperature (raw-10000)/100 °C, 1 water content
  raw/100 % (valid 0..10000; 0x2711..0xFFFF mean no valid reading), 2 permittivity raw/100.
Range (§2.1): 0..100 % VWC (0..60 % specified), -40..+80 °C; outside it the probe is
broken or not in soil, and the reading is refused.
Results are integers in hundredths (% VWC x100, °C x100).
"""
from micropython import const

from drivers import SensorError
from drivers.sdi12 import scaled

_VWC_MAX = const(10000)     # 100.00 %
_T_MIN = const(-4000)       # -40.00 °C
_T_MAX = const(8000)        # +80.00 °C
_SDI12_VALUES = const(5)
_REG_TEMPERATURE = const(0)


def _centi(v):
    return "%s%d.%02d" % ("-" if v < 0 else "", abs(v) // 100, abs(v) % 100)


def _check(part, vwc, t):
    if not 0 <= vwc <= _VWC_MAX:
        raise SensorError(part, "water content %s %% out of range" % _centi(vwc))
    if not _T_MIN <= t <= _T_MAX:
        raise SensorError(part, "temperature %s °C out of range" % _centi(t))
    return vwc, t


class SMT100SDI12:
    PART = "smt100"

    def __init__(self, bus, address="0", crc=True, part=PART):
        self.bus = bus
        self.address = address
        self.crc = crc
        self.part = part
        self._raw = b""

    def raw(self):
        """The value fields of the last measurement as sent (to tell a stuck probe)."""
        return self._raw

    def measure(self):
        """(VWC in 0.01 %, temperature in 0.01 °C) from one aMC!/aD0! measurement."""
        try:
            values, self._raw = self.bus.measure(self.address, self.crc)
        except SensorError as e:
            raise SensorError(self.part, "SDI-12 address %s: %s" % (self.address, e.reason))
        if len(values) != _SDI12_VALUES:
            raise SensorError(self.part, "%d values, the SMT100 sends 5" % len(values))
        return _check(self.part, scaled(values[2], 2), scaled(values[3], 2))


class SMT100Modbus:
    PART = "smt100"

    def __init__(self, modbus, unit=1, part=PART):
        self.modbus = modbus
        self.unit = unit
        self.part = part
        self._raw = b""

    def raw(self):
        return self._raw

    def measure(self):
        """(VWC in 0.01 %, temperature in 0.01 °C) from holding registers 0..3 (FC 03):
        temperature, water content, permittivity, raw counts (kept to tell a stuck probe)."""
        from drivers.modbus_rtu import ModbusError
        try:
            regs = self.modbus.read_holding(self.unit, _REG_TEMPERATURE, 4)
        except ModbusError as e:
            raise SensorError(self.part, "Modbus unit %d: %s" % (self.unit, e.reason))
        except OSError as e:
            raise SensorError(self.part, "Modbus unit %d: UART error %s" % (self.unit, e))
        if len(regs) != 4:
            raise SensorError(self.part, "Modbus unit %d: %d registers" % (self.unit, len(regs)))
        raw = bytearray(8)
        for i in range(4):
            raw[2 * i] = regs[i] >> 8
            raw[2 * i + 1] = regs[i] & 0xFF
        self._raw = bytes(raw)
        if regs[1] > _VWC_MAX:
            raise SensorError(self.part, "water content register 0x%04x: no valid reading" % regs[1])
        return _check(self.part, regs[1], regs[0] - 10000)
