"""The firmware's Modbus RTU master (firmware/drivers/modbus_rtu.py) on the real MicroPython
interpreter, through the simulator's machine.UART and Pin, against the RS-485 bus model
(simulators/bus/modbus_rtu.py): CRC, DE handling, t3.5 gaps, exception replies, timeouts,
float32 word orders."""
import json
import struct
import textwrap

import pytest

from host_tools import boards
from simulators.bus.modbus_rtu import ModbusBus, ModbusException, ModbusSlave
from simulators.clock import Clock
from simulators.interpreter import FIRMWARE
from simulators.network import Network
from simulators.node import SimNode

BOARD = "pico-rak3172-water"


class Regs(ModbusSlave):
    def __init__(self, unit):
        super().__init__(unit)
        hi, lo = struct.unpack(">HH", struct.pack(">f", 7.11))
        self.holding = {0: hi, 1: lo, 2: lo, 3: hi, 4: 0x1234}
        self.input = {0: 0xBEEF}

    def read_holding(self, address, count):
        if address + count > 5:
            raise ModbusException(2)
        return [self.holding[a] for a in range(address, address + count)]

    def read_input(self, address, count):
        if address + count > 1:
            raise ModbusException(2)
        return [self.input[a] for a in range(address, address + count)]

    def write_single(self, address, value):
        if address != 4:
            raise ModbusException(2)
        self.holding[4] = value


MAIN = r"""
import machine, time
from modbus_rtu import ModbusRTU, ModbusError, crc16, float32
uart = machine.UART(1, 9600, bits=8, parity=0, stop=1, tx=machine.Pin(4), rx=machine.Pin(5),
                    timeout=20, timeout_char=5)
bus = ModbusRTU(uart, de_pin=machine.Pin(6, machine.Pin.OUT), timeout_ms=200)
def attempt(fn, *a):
    try:
        return fn(*a)
    except ModbusError as e:
        return ["error", e.reason, e.exception_code]
out = {}
out["crc"] = crc16(b"123456789")
out["regs"] = attempt(bus.read_holding, 1, 0, 4)
r = out["regs"]
out["abcd"] = float32(r[0], r[1], "ABCD")
out["cdab"] = float32(r[2], r[3], "CDAB")
out["input"] = attempt(bus.read_input, 1, 0, 1)
out["illegal_address"] = attempt(bus.read_holding, 1, 3, 4)
out["write"] = attempt(bus.write_single, 1, 4, 0x4321)
out["after_write"] = attempt(bus.read_holding, 1, 4, 1)
out["absent_unit"] = attempt(bus.read_holding, 9, 0, 1)
out["broadcast"] = attempt(bus.write_single, 0, 4, 0x0777)
out["after_broadcast"] = attempt(bus.read_holding, 1, 4, 1)
t0 = time.ticks_ms()
out["fault"] = attempt(bus.read_holding, 2, 0, 2)
out["fault_ms"] = time.ticks_diff(time.ticks_ms(), t0)
out["after_fault"] = attempt(bus.read_holding, 1, 0, 1)
time.sleep_ms(1500)     # a late reply to the faulty request has landed in the receiver by now
out["after_late"] = attempt(bus.read_holding, 1, 1, 1)
print("RESULT " + repr(out).replace("'", '"').replace("None", "null"))
machine.deepsleep(1000)
"""


def run(tmp_path, fault=None):
    board = boards.load(BOARD)
    clock = Clock()
    node = SimNode("n", board, tmp_path / "n", clock, Network(seed=0), bytes(8))
    node.flash.erase_all()
    bus = ModbusBus(clock, 9600, pins=node.pins, de_pin=board["parts"]["sonde"]["de_pin"])
    bus.add(Regs(1))
    sick = bus.add(Regs(2))
    sick.fault = fault
    node.attach_uart_device(1, bus, 9600, 8, 0, 1)
    node.install({"main.py": MAIN.encode(),
                  "modbus_rtu.py": (FIRMWARE / "drivers" / "modbus_rtu.py").read_bytes(),
                  "board.json": json.dumps(board).encode()})
    wake = node.wake()
    lines = [l for l in wake.console.splitlines() if l.startswith("RESULT ")]
    assert lines, wake.console
    return json.loads(lines[0][7:]), bus


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    return run(tmp_path_factory.mktemp("mb"))


def test_master_reads_writes_and_decodes_word_orders(healthy):
    out, bus = healthy
    assert out["crc"] == 0x4B37
    assert out["input"] == [0xBEEF]
    assert abs(out["abcd"] - 7.11) < 1e-6 and abs(out["cdab"] - 7.11) < 1e-6
    assert out["write"] is None and out["after_write"] == [0x4321]
    assert out["broadcast"] is None and out["after_broadcast"] == [0x0777]


def test_master_raises_exception_replies_with_their_code(healthy):
    out, _ = healthy
    assert out["illegal_address"] == ["error", "exception reply", 2]


def test_master_times_out_on_a_silent_unit(healthy):
    out, _ = healthy
    assert out["absent_unit"] == ["error", "timeout", None]


def test_every_request_reached_the_line_as_a_frame(healthy):
    _, bus = healthy
    ignored = [e for _, e, _ in bus.log if e.startswith("ignored")]
    assert ignored == []
    assert sum(1 for _, e, _ in bus.log if e == "request") == 11


@pytest.mark.parametrize("mode, reason, code", [
    ("nack", "exception reply", 4), ("crc", "bad CRC", None), ("timeout", "timeout", None),
    ("absent", "timeout", None)])
def test_master_reports_slave_faults_and_recovers(tmp_path, mode, reason, code):
    out, _ = run(tmp_path, fault=mode)
    assert out["fault"] == ["error", reason, code]
    if mode in ("timeout", "absent"):
        assert 200 <= out["fault_ms"] <= 260
    assert out["after_fault"] == [out["regs"][0]]
    assert out["after_late"] == [out["regs"][1]], "stale bytes were taken for the reply"
