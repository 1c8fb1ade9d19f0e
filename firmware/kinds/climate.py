"""The climate kind: air temperature and humidity (SHT4x) and battery.

    values, faults = climate.measure(board, settings)
    body = climate.encode(seq, values, faults)

Body, schema 1 (docs/payload.md): CBOR array [1, seq, status, t, rh, battery] with
t in 0.01 °C, rh in 0.1 %RH, battery in mV; a failed part's channels are null and its
status bit is set, so the rest of the reading still goes out.
"""
from micropython import const

from drivers import SensorError
from drivers.sht4x import SHT4x
from node.log import log
from node.stuck import repeats
from payload import cbor

SCHEMA = const(1)
FAULT_SHT4X = const(1)      # status bit 0
FAULT_BATTERY = const(2)    # status bit 1


def measure(board, settings):
    faults = 0
    t = rh = None
    if board.part("sht4x"):
        i2c, address = board.part_i2c("sht4x")
        try:
            sensor = SHT4x(i2c, address)
            t, rh_centi = sensor.measure()
            if repeats("sht4x", sensor.raw()):
                raise SensorError("sht4x", "stuck: the same raw words as last time")
            rh = (rh_centi + 5) // 10
        except SensorError as e:
            t = rh = None
            log("fault %s", e)
            faults |= FAULT_SHT4X
    else:
        faults |= FAULT_SHT4X
    try:
        battery = board.battery_mv()
    except SensorError as e:
        log("fault %s", e)
        battery = None
    except OSError as e:
        log("fault battery: ADC error %s", e)
        battery = None
    if battery is None:
        faults |= FAULT_BATTERY
    return (t, rh, battery), faults


def encode(seq, values, faults):
    t, rh, battery = values
    return cbor.dumps([SCHEMA, seq, faults, t, rh, battery])


def worst_case():
    """The reading whose body is the longest this kind can send (every channel at its
    widest encoding, every fault bit that still leaves it widest)."""
    return (-4000, 1000, 65535), 0
