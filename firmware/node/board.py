"""The board file (/board.json): buses, pins, modem and parts of this board.

    board = Board.load()
    i2c = board.i2c(0)

The same file is read by the host tools and the simulator (boards/*.json in the repo).
"""
import json

import machine

from drivers import SensorError
from node.log import log

BOARD_FILE = "board.json"


class BoardError(Exception):
    pass


class Board:
    def __init__(self, spec):
        self.spec = spec
        self.name = spec.get("name", "?")
        self._i2c = {}

    @classmethod
    def load(cls, path=BOARD_FILE):
        try:
            with open(path) as f:
                return cls(json.load(f))
        except OSError:
            raise BoardError("no board file %s on the flash" % path)
        except ValueError:
            raise BoardError("board file %s is not valid JSON" % path)

    def i2c(self, bus_id):
        bus = self._i2c.get(bus_id)
        if bus is None:
            spec = self.spec["i2c"][str(bus_id)]
            bus = machine.I2C(bus_id, scl=machine.Pin(spec["scl"]), sda=machine.Pin(spec["sda"]),
                              freq=spec.get("freq", 400000))
            self._i2c[bus_id] = bus
        return bus

    def uart(self, uart_id, baudrate, timeout_ms=100):
        spec = self.spec["uart"][str(uart_id)]
        return machine.UART(uart_id, baudrate=baudrate, tx=machine.Pin(spec["tx"]),
                            rx=machine.Pin(spec["rx"]), timeout=timeout_ms, timeout_char=10)

    def part(self, name):
        """The part's spec, or None when this board does not carry it."""
        return self.spec.get("parts", {}).get(name)

    def part_i2c(self, name):
        spec = self.part(name)
        return self.i2c(spec["id"]), spec["address"]

    def battery_mv(self):
        """Battery voltage in mV from the ADC behind the board's divider; SensorError
        when the reading cannot be a battery (open or shorted divider)."""
        spec = self.spec.get("battery")
        if not spec:
            return None
        raw = machine.ADC(spec["adc_pin"]).read_u16()
        mv = int(raw * spec.get("vref", 3.3) * spec["divider"] * 1000 // 65535)
        if not spec.get("min_mv", 1000) <= mv <= spec.get("max_mv", 4500):
            raise SensorError("battery", "%d mV is not a battery voltage" % mv)
        return mv

    def battery_reading(self):
        """battery_mv(), or None when the ADC or its divider failed (logged as a fault)."""
        try:
            return self.battery_mv()
        except SensorError as e:
            log("fault %s", e)
        except OSError as e:
            log("fault battery: ADC error %s", e)
        return None
