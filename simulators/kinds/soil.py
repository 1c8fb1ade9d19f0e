"""Soil node: SMT100 probes at up to three depths on SDI-12 or Modbus RTU, battery.

The board file decides the protocol per probe (`"protocol": "sdi12"` with `"address"`,
or `"modbus"` with `"unit"` and `"de_pin"`); probes on one UART share one bus model.
"""
from __future__ import annotations

from simulators.bus.modbus_rtu import ModbusBus
from simulators.bus.sdi12 import SDI12Bus
from simulators.environment.soil import Soil
from simulators.sensors.smt100 import SMT100Modbus, SMT100SDI12

DEPTHS = 3


class Rig:
    DEFAULT_BOARD = "pico-rak3172-soil"

    def __init__(self, sim):
        parts = sim.board["parts"]
        depths = [parts.get(f"smt100_{i + 1}", {}).get("depth_cm", d)
                  for i, d in enumerate((10, 30, 60))]
        self.environment = Soil(sim.seed, start_unix=sim.clock.unix_time(), depths_cm=depths)
        self.parts = {}
        self.buses = {}
        for i in range(DEPTHS):
            name = f"smt100_{i + 1}"
            spec = parts.get(name)
            if not spec:
                continue
            uart_id = int(spec["id"])
            if spec.get("protocol", "sdi12") == "modbus":
                bus = self.buses.get(uart_id)
                if bus is None:
                    baud = spec.get("baudrate", 9600)
                    bus = self.buses[uart_id] = ModbusBus(sim.clock, baud, pins=sim.node.pins,
                                                          de_pin=spec.get("de_pin"))
                    sim.node.attach_uart_device(uart_id, bus, baud, 8, 0, 1)
                model = SMT100Modbus(sim.clock, self.environment, i, unit=spec.get("unit", 1),
                                     seed=sim.seed)
            else:
                bus = self.buses.get(uart_id)
                if bus is None:
                    echo = sim.board["uart"][str(uart_id)].get("sdi12_echo", True)
                    bus = self.buses[uart_id] = SDI12Bus(sim.clock, echo=echo)
                    sim.node.attach_uart_device(uart_id, bus, 1200, 7, 0, 1)
                model = SMT100SDI12(sim.clock, self.environment, i, address=spec.get("address", "0"),
                                    seed=sim.seed)
            bus.add(model)
            self.parts[name] = model
            sim.node.parts[name] = model
        if "battery" in sim.node.parts:
            self.parts["battery"] = sim.node.parts["battery"]

    def truth(self, wake) -> dict:
        truth = {}
        for i in range(DEPTHS):
            got = wake.measurements.get(f"smt100_{i + 1}")
            if got:
                truth[f"vwc_{i + 1}"] = round(got[-1].vwc, 3)
                truth[f"temperature_{i + 1}"] = round(got[-1].temperature, 3)
        bat = wake.measurements.get("battery")
        if bat:
            truth["battery"] = round(bat[-1][1], 4)
        return truth
