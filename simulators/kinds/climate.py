"""Climate node: air temperature and humidity (SHT4x), pressure (BME280), rain (a
tipping-bucket gauge counted by a PCF8583 while the node sleeps), battery."""
from __future__ import annotations

from simulators.environment.weather import Weather
from simulators.sensors.bme280 import BME280
from simulators.sensors.pcf8583 import PCF8583
from simulators.sensors.rain_gauge import MM_PER_TIP, RainGauge
from simulators.sensors.sht4x import SHT4x

WINDOW_S = 300          # the firmware's intensity window


class Rig:
    DEFAULT_BOARD = "pico-rak3172"

    def __init__(self, sim):
        self.sim = sim
        self.clock = sim.clock
        self.environment = Weather(sim.seed)
        self.parts = {}
        board_parts = sim.board["parts"]
        if "sht4x" in board_parts:
            self.parts["sht4x"] = SHT4x(sim.clock, self.environment, seed=sim.seed)
            sim.node.attach_i2c_part("sht4x", self.parts["sht4x"])
        if "bme280" in board_parts:
            self.parts["bme280"] = BME280(sim.clock, self.environment,
                                          address=board_parts["bme280"]["address"], seed=sim.seed)
            sim.node.attach_i2c_part("bme280", self.parts["bme280"])
        self.gauge = None
        if "rain_gauge" in board_parts:
            self.gauge = RainGauge(sim.clock, self.environment, seed=sim.seed)
            self.gauge_pin = board_parts["rain_gauge"]["pin"]
            sim.node.attach_pin_part("rain_gauge", self.gauge_pin, self.gauge)
            self.parts["rain_gauge"] = self.gauge
            if "pcf8583" in board_parts:
                self.parts["pcf8583"] = PCF8583(sim.clock, self.gauge,
                                                address=board_parts["pcf8583"]["address"])
                sim.node.attach_i2c_part("pcf8583", self.parts["pcf8583"])
        if "battery" in sim.node.parts:
            self.parts["battery"] = sim.node.parts["battery"]
        self._anchor: float | None = None      # unix time of the first counter read
        self._last_read: float | None = None   # counter read of the previous reading

    def config(self) -> dict:
        return {"rain_mm_per_tip": MM_PER_TIP, "rain_alarm_mm_h": 15}

    def next_pin_wake(self, pins: dict, from_us: int, to_us: int) -> int | None:
        """The gauge line falls at each tip: the first tip during the sleep wakes the
        node when the firmware armed that pin."""
        if self.gauge is None or self.gauge_pin not in pins or self.gauge.fault == "stuck":
            return None
        epoch = self.clock.epoch_s
        tip = self.gauge.next_tip(epoch + from_us / 1e6, epoch + to_us / 1e6)
        return None if tip is None else int(round((tip - epoch) * 1e6)) + 1

    def peak_mm_h(self, t0: float, t1: float) -> float:
        """The highest 5-minute intensity over the windows of the node's grid that end
        in (t0, t1] (unix s)."""
        if self._anchor is None:
            return 0.0
        k = int((t0 - self._anchor) // WINDOW_S) + 1
        peak = 0.0
        while self._anchor + k * WINDOW_S <= t1 + 1:
            end = self._anchor + k * WINDOW_S
            peak = max(peak, self.environment.rain_mm(end - WINDOW_S, end) * 3600 / WINDOW_S)
            k += 1
        return peak

    def truth(self, wake) -> dict:
        truth = {}
        sht = wake.measurements.get("sht4x")
        if sht:
            truth["temperature"] = round(sht[-1].temperature, 3)
            truth["humidity"] = round(sht[-1].humidity, 2)
        bme = wake.measurements.get("bme280")
        if bme:
            truth["pressure"] = round(bme[-1].pressure, 3)
        reads = wake.measurements.get("pcf8583")
        if reads:
            t = reads[0][1]
            if self._anchor is None:
                self._anchor = t
            prev = t if self._last_read is None else self._last_read
            truth["rain"] = round(self.environment.rain_mm(prev, t), 3)
            truth["rain_peak"] = round(self.peak_mm_h(prev, t), 2)
            self._last_read = t
        bat = wake.measurements.get("battery")
        if bat:
            truth["battery"] = round(bat[-1][1], 4)
        return truth
