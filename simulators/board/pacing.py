"""Virtual time on a virtual board: the one clock, paced against the wall clock.

A simulated run moves the clock as fast as the node lets it. A board on a bench lives
in real time: a technician watches it, tools wait for it. So on the virtual board
every wait of the node (a sleep, a UART timeout, deep sleep) lasts its virtual length
divided by the speed factor (`--speed`, 1 = real time), and the time the board idles
at the REPL passes too. Computation takes no virtual time, as everywhere in the
simulator (docs/simulator.md, "Virtual time"): the clock stays the one clock, and the
part models see the same protocol timing at any speed.
"""
from __future__ import annotations

import time

from simulators.node import SimNode


class Pacer:
    """Maps wall seconds to virtual µs from an anchor: (wall, virtual) set together."""

    def __init__(self, speed: float):
        if not speed > 0:
            raise ValueError("--speed must be above 0 (1 = real time, 60 = a minute per second)")
        self.speed = speed
        self._wall = time.monotonic()
        self._virtual = 0

    def anchor(self, virtual_us: int) -> None:
        self._wall = time.monotonic()
        self._virtual = virtual_us

    def virtual_now(self) -> int:
        """The virtual instant the wall clock has reached since the anchor."""
        return self._virtual + int((time.monotonic() - self._wall) * self.speed * 1e6)

    def wall_at(self, virtual_us: int) -> float:
        """The monotonic wall time at which the clock reaches `virtual_us`."""
        return self._wall + (virtual_us - self._virtual) / (self.speed * 1e6)


class PacedNode(SimNode):
    """A SimNode whose waits take wall time. While it waits, `pump(until)` keeps the
    board's console going (and may raise to abandon the wait: a Ctrl-C)."""

    def __init__(self, *args, speed: float = 1.0, pump=None, **kw):
        super().__init__(*args, **kw)
        self.pacer = Pacer(speed)
        self.pump = pump

    def _wait(self, timeout_us: int, ready=None) -> bool:
        target = self.clock.now_us + max(0, int(timeout_us))
        self.pacer.anchor(self.clock.now_us)
        while True:
            step = min(target, self.pacer.virtual_now())
            if super()._wait(step - self.clock.now_us, ready):
                return True
            if self.clock.now_us >= target:
                return False
            # Sleep on the wall clock until the next model event (which may make
            # `ready` true) or the end of the wait, serving the console meanwhile.
            nxt = self.clock.next_event_us()
            goal = target if nxt is None else min(target, max(nxt, self.clock.now_us + 1))
            self.pump(self.pacer.wall_at(goal))
