"""The SDI-12 line model and the SMT100 probe model, in CPython: the SDI-12 timing rules
(break, marking, sleep, one sensor per break), the aMC!/aD0! exchange with its CRC,
the probe's fault modes as the line shows them, and the Modbus face's registers."""
from __future__ import annotations

import pytest

from simulators.bus.modbus_rtu import ModbusBus, with_crc
from simulators.bus.sdi12 import SDI12Bus
from simulators.bus.uart import UartLink
from simulators.clock import Clock
from simulators.environment.soil import Soil
from simulators.sensors.smt100 import (SMT100Modbus, SMT100SDI12, permittivity, sdi12_crc,
                                       topp)


class Line:
    """The node's end of the SDI-12 line: a UART at 1200 7E1 with MicroPython's
    sendbreak (13 bit times at the current baud rate)."""

    def __init__(self, n_probes=2, echo=True):
        self.clock = Clock()
        self.soil = Soil(seed=1, start_unix=self.clock.unix_time())
        self.bus = SDI12Bus(self.clock, echo=echo)
        self.probes = [SMT100SDI12(self.clock, self.soil, i, address=str(i), seed=1)
                       for i in range(n_probes)]
        for p in self.probes:
            self.bus.add(p)
        self.link = UartLink(self.clock, 1200, 7, 0, 1)
        self.link.attach(self.bus)

    def wait_ms(self, ms):
        self.clock.advance_to(self.clock.now_us + int(ms * 1000))

    def brk(self, baud=600):
        self.link.set_node_format(baud, 7, 0, 1)
        self.link.node_break()
        self.link.set_node_format(1200, 7, 0, 1)
        self.wait_ms(9)

    def send(self, cmd: str, wait_ms=150) -> bytes:
        self.link.node_read(1000)
        self.link.node_write(cmd.encode())
        self.wait_ms(wait_ms)
        return self.link.node_read(1000)


def data_with_crc(line: bytes, cmd: str) -> str:
    text = line.decode()
    assert text.startswith(cmd) and text.endswith("\r\n"), text
    body = text[len(cmd):-2]
    assert sdi12_crc(body[:-3]) == body[-3:], body
    return body[:-3]


def test_crc_matches_the_spec_examples():
    assert sdi12_crc("0+3.14") == "OqZ"
    assert sdi12_crc("0+3.14+2.718+1.414") == "Ipz"
    assert sdi12_crc("0+3.14+2.718") == "IWO"


def test_topp_inverse_round_trips():
    for theta in (0.05, 0.2, 0.35, 0.5):
        assert abs(topp(permittivity(theta)) - theta) < 1e-6


def test_measurement_with_crc_service_request_and_five_values():
    line = Line()
    line.brk()
    assert line.send("0MC!") == b"0MC!00015\r\n0\r\n"      # echo, atttn, service request
    line.brk()
    values = data_with_crc(line.send("0D0!", 400), "0D0!")
    assert values[0] == "0"
    fields = values[1:].replace("-", " -").replace("+", " +").split()
    assert len(fields) == 5
    truth = line.probes[0].measurements[-1]
    assert abs(float(fields[2]) - truth.vwc) <= 3.0
    assert abs(float(fields[3]) - truth.temperature) <= 0.2
    assert line.bus.violations == []


def test_without_echo_the_node_hears_only_the_sensor():
    line = Line(echo=False)
    line.brk()
    assert line.send("1M!") == b"10015\r\n1\r\n"


def test_a_command_without_a_break_is_not_heard():
    line = Line()
    assert line.send("0M!") == b"0M!"          # only the node's own echo
    assert "sleeping" in line.bus.violations[0]


def test_sendbreak_at_1200_baud_is_too_short_to_be_a_break():
    line = Line()
    line.brk(baud=1200)                       # 13 bits at 1200 baud: 10.8 ms < 12 ms
    assert line.send("0!") == b"0!"
    assert "break of 10.8 ms" in line.bus.violations[0]


def test_a_command_before_8_33_ms_of_marking_is_not_heard():
    line = Line()
    line.link.set_node_format(600, 7, 0, 1)
    line.link.node_break()
    line.link.set_node_format(1200, 7, 0, 1)
    # "0!" takes 16.7 ms on the wire: its first start bit follows the break at once
    assert line.send("0!") == b"0!"
    assert "marking" in line.bus.violations[0]


def test_sensors_sleep_after_100_ms_of_marking():
    line = Line()
    line.brk()
    assert line.send("0!", 60) == b"0!0\r\n"
    line.wait_ms(120)
    assert line.send("0!") == b"0!"


def test_a_second_sensor_needs_a_new_break():
    line = Line()
    line.brk()
    assert line.send("0!", 60) == b"0!0\r\n"
    assert line.send("1!") == b"1!"
    line.brk()
    assert line.send("1!") == b"1!1\r\n"


def test_address_query_answers_alone_and_collides_with_two():
    one = Line(n_probes=1)
    one.brk()
    assert one.send("?!") == b"?!0\r\n"
    two = Line(n_probes=2)
    two.brk()
    assert two.send("?!").startswith(b"?!\x7f")


def test_a_break_aborts_a_measurement_whose_data_is_not_ready():
    line = Line()
    line.brk()
    line.link.node_write(b"0MC!")
    line.wait_ms(40)                          # atttn came, data not ready (50 ms)
    line.brk()
    body = data_with_crc(line.send("0D0!"), "0D0!")
    assert body == "0"


def test_identification_and_address_change():
    line = Line(n_probes=1)
    line.brk()
    assert line.send("0I!", 400).startswith(b"0I!013TRUEBNERSMT100")
    line.brk()
    assert line.send("0A5!") == b"0A5!5\r\n"
    line.brk()
    assert line.send("5!") == b"5!5\r\n"


def measure(line, address="0"):
    line.brk()
    first = line.send(f"{address}MC!")
    line.brk()
    return first, line.send(f"{address}D0!", 400)


@pytest.mark.parametrize("mode", ["absent", "nack", "crc", "timeout", "stuck", "range"])
def test_fault_modes_show_on_the_line_as_on_a_real_bus(mode):
    line = Line()
    measure(line)                              # a good measurement first
    line.probes[0].fault = mode
    first, data = measure(line)
    cmd = "0D0!"
    if mode == "absent":
        assert first == b"0MC!" and data == b"0D0!"
    elif mode == "nack":
        assert first == b"0MC!00015\r\n0\r\n" and data == b"0D0!"
    elif mode == "timeout":
        # the reply would come 1 s late; the node's next break cancels it
        assert first == b"0MC!" and data == b"0D0!"
    elif mode == "crc":
        text = data.decode()[len(cmd):-2]
        assert sdi12_crc(text[:-3]) != text[-3:]
    elif mode == "stuck":
        before = data
        _, again = measure(line)
        assert again == before
    elif mode == "range":
        assert "+150.00-60.00" in data_with_crc(data, cmd)
    line.probes[0].fault = None
    _, healthy = measure(line)
    data_with_crc(healthy, cmd)
    # the other probe on the same line never noticed
    _, other = measure(line, "1")
    data_with_crc(other, "1D0!")


def test_modbus_face_serves_the_register_map():
    clock = Clock()
    soil = Soil(seed=2, start_unix=clock.unix_time())
    pins = {}
    bus = ModbusBus(clock, 9600, pins=pins, de_pin=6)
    probe = bus.add(SMT100Modbus(clock, soil, 1, unit=3, seed=2))
    link = UartLink(clock, 9600, 8, 0, 1)
    link.attach(bus)

    def request(frame):
        pins[6] = 1
        link.node_write(frame)
        clock.advance_to(clock.now_us + len(frame) * 1146 + 100)
        pins[6] = 0
        clock.advance_to(clock.now_us + 100_000)
        return link.node_read(100)

    reply = request(with_crc(bytes([3, 3, 0, 0, 0, 4])))
    assert reply[:3] == bytes([3, 3, 8]) and with_crc(reply[:-2]) == reply
    regs = [int.from_bytes(reply[3 + 2 * i:5 + 2 * i], "big") for i in range(4)]
    truth = probe.measurements[-1]
    assert abs((regs[0] - 10000) / 100 - truth.temperature) <= 0.2
    assert abs(regs[1] / 100 - truth.vwc) <= 3.0
    assert abs(topp(regs[2] / 100) * 100 - regs[1] / 100) < 0.1
    assert request(with_crc(bytes([3, 3, 0, 5, 0, 1])))[:3] == bytes([3, 0x83, 2])   # no register 5
