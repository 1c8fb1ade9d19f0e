"""The SHT4x model follows the datasheet, so a driver that is wrong for the real part
fails against it."""
import pytest

from simulators.bus.i2c import I2CBus, Nack
from simulators.clock import Clock
from simulators.sensors.sht4x import SHT4x, crc8


class Still:
    def at(self, t):
        return {"temperature": 21.5, "humidity": 48.0}


def make():
    clock = Clock()
    bus = I2CBus()
    sensor = SHT4x(clock, Still(), seed=3)
    bus.attach(0x44, sensor)
    return clock, bus, sensor


def test_crc8_matches_sensirion_check_value():
    assert crc8(b"\xbe\xef") == 0x92


def test_read_before_conversion_ends_is_nacked():
    clock, bus, _ = make()
    bus.write(0x44, b"\xfd")
    clock.advance_to(8_000)  # high precision takes up to 8.3 ms
    with pytest.raises(Nack):
        bus.read(0x44, 6)


def test_measurement_words_carry_crc_and_convert_to_truth():
    clock, bus, sensor = make()
    bus.write(0x44, b"\xfd")
    clock.advance_to(8_300)
    data = bus.read(0x44, 6)
    assert crc8(data[0:2]) == data[2] and crc8(data[3:5]) == data[5]
    t = -45 + 175 * int.from_bytes(data[0:2], "big") / 65535
    rh = -6 + 125 * int.from_bytes(data[3:5], "big") / 65535
    assert abs(t - 21.5) <= 0.2 and abs(rh - 48.0) <= 1.8
    assert sensor.measurements[-1].temperature == 21.5


def test_a_result_is_read_once_and_an_absent_part_nacks():
    clock, bus, sensor = make()
    bus.write(0x44, b"\xfd")
    clock.advance_to(10_000)
    bus.read(0x44, 6)
    with pytest.raises(Nack):
        bus.read(0x44, 6)
    with pytest.raises(Nack):
        bus.write(0x45, b"\xfd")
    sensor.present = False
    with pytest.raises(Nack):
        bus.write(0x44, b"\xfd")


def test_unknown_command_is_not_acknowledged():
    _, bus, _ = make()
    with pytest.raises(Nack):
        bus.write(0x44, b"\x42")
