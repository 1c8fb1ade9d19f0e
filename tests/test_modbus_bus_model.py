"""The simulated RS-485 Modbus RTU bus (simulators/bus/modbus_rtu.py) against the Modbus
over Serial Line spec v1.02 (§2.5.1.1 framing, §2.5.1.2 CRC) and the Application
Protocol spec (§6.3, §6.6, §7 exceptions), driven byte by byte from the master's side."""
import pytest

from simulators.bus.modbus_rtu import (ModbusBus, ModbusException, ModbusSlave, crc16,
                                       with_crc)
from simulators.bus.uart import UartLink, char_time_us
from simulators.clock import Clock


class Regs(ModbusSlave):
    def __init__(self, unit):
        super().__init__(unit)
        self.holding = {i: 0x1000 + i for i in range(16)}
        self.writes = []

    def read_holding(self, address, count):
        if address + count > 16:
            raise ModbusException(2)
        return [self.holding[a] for a in range(address, address + count)]

    def write_single(self, address, value):
        if address != 4:
            raise ModbusException(2)
        self.writes.append(value)
        self.holding[4] = value


def rig(de=True):
    clock = Clock()
    pins = {6: 0}
    bus = ModbusBus(clock, 9600, pins=pins if de else None, de_pin=6 if de else None)
    slave = bus.add(Regs(1))
    link = UartLink(clock, 9600, 8, 0, 1)
    link.attach(bus)
    return clock, pins, bus, slave, link


def send(clock, pins, link, frame, de_low_after=True):
    pins[6] = 1
    link.node_write(frame)
    clock.advance_to(clock.now_us + len(frame) * link_char() + 100)
    if de_low_after:
        pins[6] = 0


def link_char():
    return char_time_us(9600, 8, 0, 1)


def reply(clock, link, wait_us=100_000):
    clock.advance_to(clock.now_us + wait_us)
    return link.node_read(256)


def test_crc16_matches_the_reference_vectors():
    assert crc16(b"123456789") == 0x4B37
    assert with_crc(bytes.fromhex("010300000001")).hex() == "010300000001840a"
    # sensors.md §2.2, verified frame: read 3 registers from unit 1
    assert with_crc(bytes.fromhex("010300000003")).hex() == "01030000000305cb"


def test_8e1_character_is_eleven_bits():
    assert link_char() == round(11e6 / 9600)


def test_read_holding_reply_is_unit_function_count_data_crc():
    clock, pins, bus, slave, link = rig()
    send(clock, pins, link, with_crc(bytes.fromhex("010300020002")))
    r = reply(clock, link)
    assert r == with_crc(bytes.fromhex("0103041002" "1003"))


def test_reply_waits_for_the_silent_interval_and_turnaround():
    clock, pins, bus, slave, link = rig()
    frame = with_crc(bytes.fromhex("010300000001"))
    t0 = clock.now_us
    send(clock, pins, link, frame)
    clock.advance_to(t0 + len(frame) * link_char() + bus.t35_us - 10)
    assert not any(e == "request" for _, e, _ in bus.log), "a frame ends only after t3.5 of silence"
    clock.advance_to(clock.now_us + 20)
    assert any(e == "request" for _, e, _ in bus.log)
    assert link.node_available() == 0
    assert reply(clock, link)[:2] == b"\x01\x03"


def test_bad_crc_request_gets_no_reply():
    clock, pins, bus, slave, link = rig()
    frame = bytearray(with_crc(bytes.fromhex("010300000001")))
    frame[-1] ^= 1
    send(clock, pins, link, bytes(frame))
    assert reply(clock, link) == b""
    assert any("bad CRC" in e for _, e, _ in bus.log)


def test_exceptions_illegal_function_address_and_value():
    clock, pins, bus, slave, link = rig()
    send(clock, pins, link, with_crc(bytes.fromhex("010400000001")))     # no input registers
    assert reply(clock, link) == with_crc(bytes.fromhex("018401"))
    send(clock, pins, link, with_crc(bytes.fromhex("0103000f0002")))     # past register 15
    assert reply(clock, link) == with_crc(bytes.fromhex("018302"))
    send(clock, pins, link, with_crc(bytes.fromhex("01030000007e")))     # 126 > 125 registers
    assert reply(clock, link) == with_crc(bytes.fromhex("018303"))


def test_write_single_echoes_and_broadcast_is_silent():
    clock, pins, bus, slave, link = rig()
    req = with_crc(bytes.fromhex("010600040123"))
    send(clock, pins, link, req)
    assert reply(clock, link) == req
    send(clock, pins, link, with_crc(bytes.fromhex("000600040456")))
    assert reply(clock, link) == b""
    assert slave.writes == [0x0123, 0x0456]


def test_other_units_do_not_answer():
    clock, pins, bus, slave, link = rig()
    send(clock, pins, link, with_crc(bytes.fromhex("020300000001")))
    assert reply(clock, link) == b""


def test_request_written_with_de_low_never_reaches_the_line():
    clock, pins, bus, slave, link = rig()
    link.node_write(with_crc(bytes.fromhex("010300000001")))     # DE never raised
    assert reply(clock, link) == b""


def test_reply_is_lost_while_the_master_keeps_de_high():
    clock, pins, bus, slave, link = rig()
    send(clock, pins, link, with_crc(bytes.fromhex("010300000001")), de_low_after=False)
    assert reply(clock, link) == b""
    assert any("DE still high" in e for _, e, _ in bus.log)


def test_gap_over_one_and_a_half_characters_inside_a_frame_discards_it():
    clock, pins, bus, slave, link = rig()
    frame = with_crc(bytes.fromhex("010300000001"))
    pins[6] = 1
    link.node_write(frame[:3])
    clock.advance_to(clock.now_us + 3 * link_char() + 2 * link_char())   # 2 characters of gap
    link.node_write(frame[3:])
    clock.advance_to(clock.now_us + 6 * link_char())
    pins[6] = 0
    assert reply(clock, link) == b""


def test_request_too_soon_after_a_reply_is_not_a_frame():
    clock, pins, bus, slave, link = rig()
    req = with_crc(bytes.fromhex("010300000001"))
    send(clock, pins, link, req)
    # stand exactly at the end of the reply, then send at once: no t3.5 of silence
    clock.advance_until(lambda: link.node_available() >= 7, clock.now_us + 100_000)
    link.node_read(7)
    send(clock, pins, link, req)
    assert reply(clock, link) == b""
    clock.advance_to(clock.now_us + bus.t35_us)
    send(clock, pins, link, req)
    assert len(reply(clock, link)) == 7


@pytest.mark.parametrize("mode", ModbusSlave.FAULT_MODES)
def test_fault_modes_show_on_the_wire(mode):
    clock, pins, bus, slave, link = rig()
    req = with_crc(bytes.fromhex("010300000002"))
    send(clock, pins, link, req)
    good = reply(clock, link)
    slave.holding[0] = 0x7777
    slave.fault = mode
    send(clock, pins, link, req)
    r = reply(clock, link, wait_us=200_000)
    if mode == "absent":
        assert r == b""
    elif mode == "nack":
        assert r == with_crc(bytes.fromhex("018304"))
    elif mode == "crc":
        assert len(r) == 9 and crc16(r[:-2]) != int.from_bytes(r[-2:], "little")
    elif mode == "timeout":
        assert r == b""
        assert reply(clock, link, wait_us=slave.late_us)[:3] == bytes.fromhex("010304")
    elif mode == "stuck":
        assert r == good
    else:   # range: the value is the slave's business; the bus passes registers through
        assert r[3:5] == b"\x77\x77"


def test_a_slave_may_also_answer_a_reserved_address():
    clock, pins, bus, slave, link = rig()
    slave.also_answers = (0xFD,)
    send(clock, pins, link, with_crc(bytes.fromhex("fd0300000001")))
    assert reply(clock, link) == with_crc(bytes.fromhex("fd03021000"))
