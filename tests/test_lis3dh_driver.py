"""The LIS3DH driver on MicroPython, through the simulator: it configures the part as
the datasheet says (DocID17530 §8) and the node wakes on the INT1 of a bottle."""
from __future__ import annotations

from simulators.scenario import Simulation


def test_driver_configures_stream_fifo_and_the_int1_activity_wake(tmp_path):
    sim = Simulation(kind="glass", hours=9.5, seed=3, out_dir=tmp_path)   # to 11:30 local
    wakes = []
    uplinks = list(sim.run(on_wake=wakes.append))
    regs = sim.rig.lis3dh.regs
    assert regs[0x20] == 0x57                 # 100 Hz, normal mode, X/Y/Z
    assert regs[0x21] & 0x01                  # HPIS1: gravity kept off INT1
    assert regs[0x22] == 0x40                 # IA1 on the INT1 pin
    assert regs[0x23] == 0x90                 # BDU, ±4 g, normal (10-bit)
    assert regs[0x24] == 0x48                 # FIFO_EN, LIR_INT1
    assert regs[0x2E] >> 6 == 0b10            # stream mode
    assert regs[0x30] == 0x2A and regs[0x32] == 6     # X/Y/Z high, 200 mg at 32 mg/LSB
    console = (tmp_path / "node-1" / "console.log").read_text()
    assert console.count("lis3dh configured") == 1    # later wakes keep the FIFO running
    pin_wakes = [w for w in wakes if not w.readings]
    env = sim.rig.environment
    assert env.bottles_between(0, 9.5 * 3600) > 0 and pin_wakes
    for w in pin_wakes:                        # each woke at the first bottle of a session
        t = w.start_us / 1e6
        assert any(abs(e.t0 - t) < 0.01 for e in env.impacts), t
    assert sum(u.decoded["impacts"] for u in uplinks) >= 0.9 * env.bottles_between(0, uplinks[-1].t)
