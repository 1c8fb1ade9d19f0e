"""Water node: a multi-parameter sonde on RS-485 Modbus RTU in a lake, and the battery."""
from __future__ import annotations

from simulators.bus.modbus_rtu import ModbusBus
from simulators.environment.lake import Lake
from simulators.sensors.sonde import Sonde

_PARITY = {"none": None, "even": 0, "odd": 1}


class Rig:
    DEFAULT_BOARD = "pico-rak3172-water"

    def __init__(self, sim):
        # Extra /config.json keys (sonde_map, sonde_unit, sonde_timeout_ms), e.g. for a
        # sonde model with another register map; empty: the firmware's defaults.
        self.sonde_config: dict = {}
        self.environment = Lake(sim.seed, start_unix=sim.clock.unix_time())
        self.parts = {}
        spec = sim.board["parts"].get("sonde")
        if spec:
            baud = spec.get("baudrate", 9600)
            parity = _PARITY[spec.get("parity", "even")]
            self.bus = ModbusBus(sim.clock, baud, 8, parity, 1, pins=sim.node.pins,
                                 de_pin=spec.get("de_pin"))
            self.parts["sonde"] = self.bus.add(
                Sonde(sim.clock, self.environment, unit=spec.get("unit", 1), seed=sim.seed))
            sim.node.attach_uart_device(spec["id"], self.bus, baud, 8, parity, 1)
            sim.node.parts["sonde"] = self.parts["sonde"]
        if "battery" in sim.node.parts:
            self.parts["battery"] = sim.node.parts["battery"]

    def config(self) -> dict:
        return dict(self.sonde_config)

    def truth(self, wake) -> dict:
        truth = {}
        sonde = wake.measurements.get("sonde")
        if sonde:
            truth.update({k: round(v, 4) for k, v in sonde[-1].truth.items()})
        bat = wake.measurements.get("battery")
        if bat:
            truth["battery"] = round(bat[-1][1], 4)
        return truth
