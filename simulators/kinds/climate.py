"""Climate node: air temperature and humidity (SHT4x), battery."""
from __future__ import annotations

from simulators.environment.weather import Weather
from simulators.sensors.sht4x import SHT4x


class Rig:
    DEFAULT_BOARD = "pico-rak3172"

    def __init__(self, sim):
        self.environment = Weather(sim.seed)
        self.parts = {}
        if "sht4x" in sim.board["parts"]:
            self.parts["sht4x"] = SHT4x(sim.clock, self.environment, seed=sim.seed)
            sim.node.attach_i2c_part("sht4x", self.parts["sht4x"])
        if "battery" in sim.node.parts:
            self.parts["battery"] = sim.node.parts["battery"]

    def truth(self, wake) -> dict:
        truth = {}
        sht = wake.measurements.get("sht4x")
        if sht:
            truth["temperature"] = round(sht[-1].temperature, 3)
            truth["humidity"] = round(sht[-1].humidity, 2)
        bat = wake.measurements.get("battery")
        if bat:
            truth["battery"] = round(bat[-1][1], 4)
        return truth
