"""The soil kind: water content and temperature at up to 3 depths (TRUEBNER SMT100), battery.

    values, faults = soil.measure(board, settings)
    body = soil.encode(seq, values, faults)

Body, schema 7 (soil v2, docs/kinds/soil.md): CBOR array [7, seq, status, packed], packed
= the 7 channels vwc_1, t_1, vwc_2, t_2, vwc_3, t_3, battery as one byte string of
big-endian 16-bit integers (vwc uint16 in 0.1 % (volume), t int16 in 0.01 °C, battery
uint16 in mV; payload/packed.py). As separate CBOR integers (schema 3, which decoders
keep) a typical body was 27 bytes; packed it is 21, and a soil uplink at SF9 takes 308
ms on air instead of 329, under TTN's 30 s a day at 15 minutes.

Depth i is board part `smt100_<i>`; the board file says
whether the probes are on SDI-12 (`"protocol": "sdi12"`, `"address"`) or Modbus RTU
(`"protocol": "modbus"`, `"unit"`, `"de_pin"`). A depth with no probe on the board is
null with its status bit clear ("not fitted"); a probe that fails is null with its
status bit set. Config key `soil_sdi12_crc` (default true): aMC! (data with CRC) or aM!.
"""
from micropython import const

import machine

from drivers import SensorError
from drivers.smt100 import SMT100Modbus, SMT100SDI12
from node.log import log
from node.stuck import repeats
from payload import cbor, packed

SCHEMA = const(7)
DEPTHS = const(3)
_FORMAT = ">HhHhHhH"        # vwc_1, t_1, vwc_2, t_2, vwc_3, t_3, battery
FAULT_BATTERY = const(8)    # status bit 3; bits 0..2 are the probes smt100_1..3
_SDI12_BAUD = const(1200)
_MODBUS_BAUD = const(9600)


def _sdi12_bus(board, uart_id):
    from drivers.sdi12 import SDI12
    spec = board.spec["uart"][str(uart_id)]
    uart = machine.UART(uart_id, baudrate=_SDI12_BAUD, bits=7, parity=0, stop=1,
                        tx=machine.Pin(spec["tx"]), rx=machine.Pin(spec["rx"]),
                        timeout=100, timeout_char=100)
    return SDI12(uart, echo=spec.get("sdi12_echo", True))


def _modbus_bus(board, uart_id, part_spec):
    from drivers.modbus_rtu import ModbusRTU
    spec = board.spec["uart"][str(uart_id)]
    baud = part_spec.get("baudrate", _MODBUS_BAUD)
    uart = machine.UART(uart_id, baudrate=baud, bits=8, parity=0, stop=1,
                        tx=machine.Pin(spec["tx"]), rx=machine.Pin(spec["rx"]),
                        timeout=200, timeout_char=10)
    de = part_spec.get("de_pin")
    de_pin = None if de is None else machine.Pin(de, machine.Pin.OUT, value=0)
    return ModbusRTU(uart, de_pin=de_pin, baudrate=baud)


def _probe(board, name, spec, buses, crc):
    key = (spec.get("protocol", "sdi12"), spec["id"])
    bus = buses.get(key)
    if key[0] == "modbus":
        if bus is None:
            bus = buses[key] = _modbus_bus(board, spec["id"], spec)
        return SMT100Modbus(bus, spec.get("unit", 1), part=name)
    if key[0] != "sdi12":
        raise SensorError(name, "unknown protocol %r in the board file" % key[0])
    if bus is None:
        bus = buses[key] = _sdi12_bus(board, spec["id"])
    return SMT100SDI12(bus, spec.get("address", "0"), crc, part=name)


def measure(board, settings):
    crc = settings.options.get("soil_sdi12_crc", True)
    faults = 0
    values = []
    buses = {}
    for i in range(DEPTHS):
        name = "smt100_%d" % (i + 1)
        spec = board.part(name)
        vwc = t = None
        if spec:
            try:
                probe = _probe(board, name, spec, buses, crc)
                vwc_centi, t = probe.measure()
                if repeats(name, probe.raw()):
                    raise SensorError(name, "stuck: the same raw values as last time")
                vwc = (vwc_centi + 5) // 10
            except SensorError as e:
                vwc = t = None
                log("fault %s", e)
                faults |= 1 << i
        values.append(vwc)
        values.append(t)
    battery = board.battery_reading()
    if battery is None:
        faults |= FAULT_BATTERY
    values.append(battery)
    return tuple(values), faults


def encode(seq, values, faults):
    """A value that does not fit its 16-bit field goes as null, with its part's status
    bit set: never as a wrapped number or as the null pattern itself."""
    wire = []
    for i, (v, code) in enumerate(zip(values, _FORMAT[1:])):
        if v is not None and not packed.fits(v, code):
            v = None
            faults |= FAULT_BATTERY if i == 2 * DEPTHS else 1 << (i // 2)
        wire.append(v)
    return cbor.dumps([SCHEMA, seq, faults, packed.pack(_FORMAT, wire)])


def worst_case():
    """The longest body: every field is fixed-width, so any reading will do; all flags."""
    return (None,) * (2 * DEPTHS + 1), 0xF
