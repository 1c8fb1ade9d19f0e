"""The rain gauge and PCF8583 models: tips follow the rain within a tip and the gauge's
calibration, the counter counts them only in event-counter mode, in BCD, and shows its
faults as the bus would."""
import pytest

from simulators.bus.i2c import I2CBus
from simulators.clock import Clock
from simulators.environment.weather import Weather
from simulators.sensors.pcf8583 import PCF8583, to_bcd
from simulators.sensors.rain_gauge import RainGauge

SEED = 5          # a heavy cell after about 4 h


def make():
    clock = Clock()
    weather = Weather(SEED)
    gauge = RainGauge(clock, weather, seed=SEED)
    counter = PCF8583(clock, gauge)
    bus = I2CBus()
    bus.attach(0x50, counter)
    return clock, weather, gauge, counter, bus


def read_count(bus):
    bus.write(0x50, b"\x01", False)
    c = bus.read(0x50, 3)
    return sum(((c[i] >> 4) * 10 + (c[i] & 0xF)) * 100 ** i for i in range(3))


def test_tips_follow_the_rain_within_a_tip_and_the_gauge_tolerance():
    clock, weather, gauge, _, _ = make()
    t0 = clock.unix_time()
    t1 = t0 + 24 * 3600
    rain = weather.rain_mm(t0, t1)
    tips = gauge.tips_between(t0, t1)
    assert rain > 10
    assert abs(tips * 0.2 - rain) <= 0.2 + 0.06 * rain


def test_counter_counts_only_in_event_mode_in_bcd():
    clock, weather, gauge, counter, bus = make()
    clock.advance_to(3 * 3600 * 10**6)
    assert read_count(bus) == 0                      # power-on: clock mode, not counting
    bus.write(0x50, b"\x00\x20")                     # event-counter mode
    t0 = clock.unix_time()
    clock.advance_to(6 * 3600 * 10**6)
    n = read_count(bus)
    assert n == gauge.tips_between(t0, clock.unix_time()) and n > 20
    bus.write(0x50, b"\x00\xa0")                     # stop
    clock.advance_to(7 * 3600 * 10**6)
    assert read_count(bus) == n
    assert to_bcd(123456) == bytes([0x56, 0x34, 0x12])


def test_the_reed_line_is_low_only_briefly_at_each_tip_and_stays_low_when_stuck():
    clock, _, gauge, _, _ = make()
    gauge.advance(clock.unix_time() + 6 * 3600)
    tip = gauge.tips[5]
    clock.advance_to(int((tip - clock.epoch_s + 0.05) * 1e6))
    assert gauge.level() == 0
    assert gauge.tips[6] - tip > 0.3
    clock.advance_to(int((tip - clock.epoch_s + 0.3) * 1e6))
    assert gauge.level() == 1
    gauge.fault = "stuck"
    assert gauge.level() == 0


@pytest.mark.parametrize("mode", ["stuck", "range"])
def test_counter_faults_are_visible_on_the_bus(mode):
    clock, _, _, counter, bus = make()
    bus.write(0x50, b"\x00\x20")
    bus.write(0x50, b"\x10\x07")
    bus.write(0x50, b"\x10", False)
    assert bus.read(0x50, 1) == b"\x07"
    counter.fault = mode
    bus.write(0x50, b"\x10\x08")
    bus.write(0x50, b"\x10", False)
    if mode == "stuck":
        assert bus.read(0x50, 1) == b"\x07"          # stale: the driver's RAM check sees it
    else:
        bus.write(0x50, b"\x01", False)
        assert bus.read(0x50, 3)[0] == 0xFA          # not BCD
