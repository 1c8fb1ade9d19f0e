"""The LIS3DH model speaks the datasheet's I2C protocol (DocID17530 §6.1.1, §8), so a
driver wrong for the real part fails against it."""
from __future__ import annotations

import pytest

from simulators.bus.i2c import Nack
from simulators.clock import Clock
from simulators.environment.container import Container
from simulators.sensors.faults import Timeout
from simulators.sensors.lis3dh import LIS3DH

SETUP = [(0x20, 0x57), (0x21, 0x01), (0x22, 0x40), (0x23, 0x90), (0x24, 0x48), (0x25, 0x00),
         (0x2E, 0x80), (0x32, 6), (0x33, 0), (0x30, 0x2A)]


def part(seed=3):
    clock = Clock()
    env = Container(seed, clock.epoch_s)
    return clock, env, LIS3DH(clock, env, seed=seed)


def reg(m, r, n=1):
    m.write(bytes([r | (0x80 if n > 1 else 0)]), False)
    return m.read(n)


def configured(seed=3):
    clock, env, m = part(seed)
    for r, v in SETUP:
        m.write(bytes([r, v]), True)
    return clock, env, m


def samples(data, mg=8):
    out = []
    for i in range(0, len(data), 2):
        v = int.from_bytes(data[i:i + 2], "little", signed=True)
        out.append((v >> 6) * mg)
    return [tuple(out[k:k + 3]) for k in range(0, len(out), 3)]


def test_who_am_i_and_power_on_defaults():
    _, _, m = part()
    assert reg(m, 0x0F) == b"\x33"
    assert reg(m, 0x20) == b"\x07"          # CTRL_REG1: power-down, axes on
    assert reg(m, 0x2F)[0] & 0x20            # FIFO_SRC: empty


def test_multi_byte_read_needs_the_auto_increment_bit():
    _, _, m = part()
    m.write(bytes([0x1E]), False)            # bit 7 clear: the same register each time
    assert m.read(3) == b"\x10\x10\x10"
    m.write(bytes([0x9E]), False)
    assert m.read(3) == b"\x10\x00\x07"      # CTRL_REG0, TEMP_CFG_REG, CTRL_REG1


def test_stream_fifo_holds_the_last_32_samples_and_rolls_over_the_output_registers():
    clock, _, m = configured()
    clock.advance_to(100_000)                # 10 samples at 100 Hz
    src = reg(m, 0x2F)[0]
    assert src & 0x1F in (10, 11) and not src & 0x40
    clock.advance_to(1_000_000)              # 100 samples: the oldest are overwritten
    src = reg(m, 0x2F)[0]
    assert src & 0x40                        # OVRN_FIFO: 32 unread
    data = reg(m, 0x28, 192)                 # one burst reads all 32 levels (rollover)
    got = samples(data)
    assert len(got) == 32
    for x, y, z in got:                      # at rest: about +1 g on Y (the sensor's up)
        assert 900 <= y <= 1100 and abs(x) < 150 and abs(z) < 150
    assert reg(m, 0x2F)[0] & 0x20            # now empty


def test_full_scale_and_mode_set_the_data_format():
    clock, _, m = configured()
    m.write(bytes([0x23, 0x80]), True)       # ±2 g normal: 4 mg per digit
    clock.advance_to(500_000)
    y2 = [s[1] for s in samples(reg(m, 0x28, 6), mg=4)]
    assert 900 <= y2[0] <= 1100
    m.write(bytes([0x23, 0x88]), True)       # HR: 12-bit, 1 mg per digit
    v = int.from_bytes(reg(m, 0x28, 6)[2:4], "little", signed=True) >> 4
    assert 900 <= v <= 1100


def test_int1_fires_on_a_bottle_only_with_the_high_pass_filter_on_the_interrupt():
    clock, env, m = configured()
    env.fill_percent(2 * 86400)
    bottle = next(e for e in env.impacts if e.kind == "bottle" and e.amp > 0.6)
    t = m.int1_fires(0, int((bottle.t0 + 1) * 1e6))
    assert t is not None and t <= int(bottle.t0 * 1e6) + 1
    m.write(bytes([0x21, 0x00]), True)       # HPIS1 off: gravity alone holds INT1 up
    assert m.int1_fires(5_000_000, 10_000_000) == 5_000_000
    m.write(bytes([0x22, 0x00]), True)       # IA1 not routed to the pin
    assert m.int1_fires(5_000_000, 10_000_000) is None


def test_int1_src_read_clears_a_latched_interrupt():
    clock, env, m = configured()
    env.fill_percent(2 * 86400)
    bottle = next(e for e in env.impacts if e.kind == "bottle" and e.amp > 0.6)
    clock.advance_to(int((bottle.t0 + 0.5) * 1e6))
    m.write(bytes([0x31]), False)
    assert m.read(1)[0] & 0x40               # IA
    assert m.int1_fires(clock.now_us, clock.now_us + 100_000) is None


def test_reserved_registers_are_not_writable():
    _, _, m = part()
    with pytest.raises(Nack):
        m.write(bytes([0x0F, 0x00]), True)   # WHO_AM_I is read-only
    with pytest.raises(Nack):
        m.write(bytes([0x10, 0x00]), True)   # reserved


@pytest.mark.parametrize("mode", ["nack", "timeout", "stuck", "range"])
def test_fault_modes_show_as_the_bus_would(mode):
    clock, _, m = configured()
    clock.advance_to(1_000_000)
    first = reg(m, 0x28, 192)
    m.fault = mode
    clock.advance_to(2_000_000)
    if mode == "nack":
        with pytest.raises(Nack):
            reg(m, 0x0F)
    elif mode == "timeout":
        with pytest.raises(Timeout):
            reg(m, 0x0F)
    elif mode == "stuck":
        assert reg(m, 0x28, 192) == first
    else:
        assert all(x > 3900 and y > 3900 and z > 3900 for x, y, z in samples(reg(m, 0x28, 192)))
