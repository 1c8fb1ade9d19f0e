"""The SMT100 driver's scaling and range checks on MicroPython, with the register values
of the reference's test vectors (sensors.md §2.2) and the SDI-12 5-value reply (§2.3)."""
from __future__ import annotations

import json

from simulators.interpreter import run_script

SCRIPT = r"""
import json
from drivers import SensorError
from drivers.modbus_rtu import ModbusError
from drivers.smt100 import SMT100Modbus, SMT100SDI12
from drivers.sdi12 import split_values

class Regs:
    def __init__(self, regs, error=None):
        self.regs, self.error = regs, error
    def read_holding(self, unit, address, count):
        if self.error:
            raise self.error
        assert (unit, address, count) == (1, 0, 4)
        return self.regs

class Line:
    def __init__(self, fields):
        self.fields = fields
    def measure(self, address, crc):
        values = split_values(self.fields)
        return values, self.fields

def attempt(probe):
    try:
        return list(probe.measure())
    except SensorError as e:
        return ["error", e.part, e.reason]

out = {
    # 21.50 °C, 25.60 %, ε 15.20 (the reference's example reply)
    "modbus": attempt(SMT100Modbus(Regs([0x2F76, 0x0A00, 0x05F0, 40000]))),
    "cold": attempt(SMT100Modbus(Regs([0x1770, 0x0D70, 0x0064, 40000]))),     # -40 °C, 34.4 %
    "invalid": attempt(SMT100Modbus(Regs([0x31FD, 0x2711, 0x0064, 40000]), part="smt100_2")),
    "exception": attempt(SMT100Modbus(Regs(None, ModbusError("exception reply", 4)))),
    "sdi12": attempt(SMT100SDI12(Line(b"+40021+15.20+25.60-3.25+12.0"))),
    "sdi12_rounding": attempt(SMT100SDI12(Line(b"+40021+15.2+25.605+21.5+12"))),
    "sdi12_short": attempt(SMT100SDI12(Line(b"+40021+15.20+25.60"))),
    "sdi12_hot": attempt(SMT100SDI12(Line(b"+40021+15.20+25.60+80.01+12.0"))),
    "sdi12_frozen": attempt(SMT100SDI12(Line(b"+40021+15.20+25.60-40.50+12.0"))),
    "sdi12_wet": attempt(SMT100SDI12(Line(b"+40021+15.20-0.05+5.00+12.0"))),
}
print(json.dumps(out))
"""


def test_smt100_scaling_and_range_checks():
    r = run_script(SCRIPT)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["modbus"] == [2560, 2150]
    assert out["cold"] == [3440, -4000]
    assert out["invalid"] == ["error", "smt100_2", "water content register 0x2711: no valid reading"]
    assert out["exception"][:2] == ["error", "smt100"] and "exception reply" in out["exception"][2]
    assert out["sdi12"] == [2560, -325]
    assert out["sdi12_rounding"] == [2561, 2150]
    assert out["sdi12_short"] == ["error", "smt100", "3 values, the SMT100 sends 5"]
    assert out["sdi12_hot"] == ["error", "smt100", "temperature 80.01 °C out of range"]
    assert out["sdi12_frozen"] == ["error", "smt100", "temperature -40.50 °C out of range"]
    assert out["sdi12_wet"] == ["error", "smt100", "water content -0.05 % out of range"]
