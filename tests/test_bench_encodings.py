"""The bench's comparison encoders produce the formats' own bytes: Cayenne LPP as its
documented examples, Decentlab v2 as its vendor vector (bench/encodings.py)."""
from __future__ import annotations

import pytest

from bench import encodings
from bench.encodings import EncodeError, LPP_ANALOG_INPUT, LPP_BAROMETER, LPP_HUMIDITY, LPP_TEMPERATURE


def test_lpp_matches_the_two_temperature_example_of_the_things_stack():
    # The Things Stack CayenneLPP formatter page: channel 3 27.2 °C, channel 5 25.5 °C.
    frame = encodings.lpp_value(3, LPP_TEMPERATURE, 27.2) + encodings.lpp_value(5, LPP_TEMPERATURE, 25.5)
    assert frame == bytes.fromhex("03670110056700ff")


def test_lpp_negative_temperature_is_twos_complement_tenths():
    # myDevices CayenneLPP README example: -4.1 °C on channel 1 is 01 67 FF D7.
    assert encodings.lpp_value(1, LPP_TEMPERATURE, -4.1) == bytes.fromhex("0167ffd7")


def test_lpp_climate_reading_matches_the_verified_reference_example():
    # shared/reference/sensors.md §6.4 (verified): 21.5 °C, 55 %RH, 1013.2 hPa, analog 1.20.
    frame = (encodings.lpp_value(1, LPP_TEMPERATURE, 21.5) + encodings.lpp_value(2, LPP_HUMIDITY, 55)
             + encodings.lpp_value(3, LPP_BAROMETER, 1013.2) + encodings.lpp_value(4, LPP_ANALOG_INPUT, 1.20))
    assert frame == bytes.fromhex("016700d702686e0373279404020078")


def test_lpp_refuses_a_value_its_type_cannot_hold():
    with pytest.raises(EncodeError):
        encodings.lpp_value(1, LPP_HUMIDITY, 200)          # 400 half-percent steps > 1 byte
    with pytest.raises(EncodeError):
        encodings.lpp_value(1, LPP_BAROMETER, -5)          # unsigned


def test_decentlab_battery_only_message_matches_the_vendor_vector():
    # sensors.md §6.1: 02 0B50 0002 0B3B = device 2896, only the battery block, 2.875 V.
    assert encodings.decentlab(0x0B50, [None, [2875]]) == bytes.fromhex("020b5000020b3b")


CLIMATE = {"temperature": -3.57, "humidity": 81.5, "pressure": 1002.3, "rain": 1.4,
           "rain_peak": 12.6, "battery": 3.012}


def test_decentlab_climate_reading_offsets_signed_values_and_flags_both_blocks():
    frame = encodings.decentlab_reading("climate", CLIMATE)
    assert frame[:5] == bytes.fromhex("020b500003")                   # version, id, flags 0b11
    words = [int.from_bytes(frame[i:i + 2], "big") for i in range(5, len(frame), 2)]
    assert words == [32768 - 357, 163, 10023, 140, 126, 3012]
    assert len(frame) == encodings.decentlab_size("climate") == 17


def test_a_failed_part_drops_its_decentlab_block_and_lpp_item():
    reading = dict(CLIMATE, pressure=None)
    dl = encodings.decentlab_reading("climate", reading)
    assert dl == bytes.fromhex("020b500002") + (3012).to_bytes(2, "big")
    lpp = encodings.lpp_reading("climate", reading)
    assert len(lpp) == encodings.lpp_size("climate") - 4             # no barometer item


@pytest.mark.parametrize("kind", sorted(encodings.KIND_MAP))
def test_full_reading_sizes_agree_with_the_fixed_sizes(kind):
    reading = {name: 1 for name, *_ in encodings.KIND_MAP[kind]}
    reading[encodings.SUPPLY[kind]] = 3.1
    assert len(encodings.lpp_reading(kind, reading)) == encodings.lpp_size(kind)
    assert len(encodings.decentlab_reading(kind, reading)) == encodings.decentlab_size(kind)
