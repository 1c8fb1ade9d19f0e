# MicroPython, inside the simulated node: `os` with the board's random number generator.
#
# Everything is MicroPython's own `os` but `urandom`: on a board it reads the hardware RNG
# (RP2040 ROSC, ESP32 RNG), here the simulator's generator, seeded per node, so a run is
# the same for the same seed (the firmware draws, e.g., a join back-off's jitter from it).
# MicroPython prefers this file on the path to its built-in `os`, as with machine.py.
from uos import *  # noqa: F401,F403


def urandom(n):
    import _simlink   # imported here: the wire exists only once the board runs
    from binascii import unhexlify
    return unhexlify(_simlink.call("urandom", int(n)))
