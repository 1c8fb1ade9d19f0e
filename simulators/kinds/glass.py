"""Glass-container node: a LIS3DH on the wall of a glass-recycling container whose INT1
wakes the node, and a solar-charged supercapacitor read on an ADC pin."""
from __future__ import annotations

from simulators.environment.container import Container
from simulators.power.harvester import SolarStore, StorageADC
from simulators.sensors.lis3dh import LIS3DH

ENERGY_LOW_V = 3.3          # the firmware's defaults (glass_low_mv, glass_critical_mv)
ENERGY_CRITICAL_V = 2.5
HYSTERESIS_V = 0.15


class Rig:
    DEFAULT_BOARD = "esp32-rak3172-glass"
    DEFAULT_INTERVAL_S = 3600
    CONTAINER: dict = {}    # keyword arguments of Container (tests: a smaller container)
    HARVESTER: dict = {}    # keyword arguments of SolarStore (tests: a dark week)
    CONFIG: dict = {}       # extra /config.json keys

    def __init__(self, sim):
        self.sim = sim
        self.environment = Container(sim.seed, sim.clock.epoch_s, **self.CONTAINER)
        self.store = SolarStore(sim.seed, sim.clock.epoch_s, **self.HARVESTER)
        self.parts = {}
        spec = sim.board["parts"]
        if "lis3dh" in spec:
            self.lis3dh = LIS3DH(sim.clock, self.environment, spec["lis3dh"]["address"], seed=sim.seed)
            sim.node.attach_i2c_part("lis3dh", self.lis3dh)
            self.parts["lis3dh"] = self.lis3dh
            self.int1_pin = spec["lis3dh"].get("int1_pin")
            self.store.sensor_a = self.lis3dh.supply_a
        if "storage" in spec:
            s = spec["storage"]
            adc = StorageADC(sim.clock, self.store, s["divider"], s.get("vref", 3.3), seed=sim.seed)
            sim.node.adc[s["adc_pin"]] = adc
            sim.node.parts["storage"] = adc
            self.parts["storage"] = adc
        self._last_reading_s = 0.0
        self._energy = 0
        self._sent_seen = 0
        self._network = sim.network

    def after_wake(self, result) -> None:
        """Each wake draws on the store: account it when the wake ends."""
        ups = self._network.uplinks
        airtime = sum(u.airtime_us for u in ups[self._sent_seen:])
        self._sent_seen = len(ups)
        self.store.charge_wake(result.start_us, result.end_us, bool(result.readings), airtime)
        reads = result.measurements.get("storage")
        if reads and self.parts["storage"].fault is None:
            self._energy_state(reads[0][1])     # as the node judges it at each wake

    def config(self) -> dict:
        return dict(self.CONFIG)

    def next_pin_wake(self, pins, from_us, to_us):
        if "lis3dh" not in self.parts or self.int1_pin not in pins:
            return None
        return self.lis3dh.int1_fires(from_us, to_us)

    def _energy_state(self, v: float) -> int:
        low, crit = ENERGY_LOW_V, ENERGY_CRITICAL_V
        lvl = self._energy
        if v < crit or (lvl == 2 and v < crit + HYSTERESIS_V):
            lvl = 2
        elif v < low or (lvl >= 1 and v < low + HYSTERESIS_V):
            lvl = 1
        else:
            lvl = 0
        self._energy = lvl
        return lvl

    def truth(self, wake) -> dict:
        truth = {}
        env = self.environment
        acc = wake.measurements.get("lis3dh")
        if acc:
            t = acc[-1].t_us / 1e6
            truth["fill"] = round(acc[-1].fill, 2)
            truth["tilt"] = round(acc[-1].tilt, 2)
            truth["impacts"] = env.bottles_between(self._last_reading_s, t)
            truth["emptyings"] = sum(1 for e in env.emptyings
                                     if self._last_reading_s < e.t0 + e.lift_s + 3 <= t)
            self._last_reading_s = t
        st = wake.measurements.get("storage")
        if st:
            truth["storage"] = round(st[-1][1], 4)
            truth["energy"] = self._energy
        return truth
