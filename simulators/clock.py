"""The one virtual clock of a simulated run.

Time is an integer count of microseconds since the start of the run. Nothing in a
simulated run reads the wall clock: models schedule their future actions here and the
node's waits (sleep, UART timeouts, deep sleep) advance this clock.
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

# The simulated world starts at local midnight of a summer day (UTC+2 in Bochum),
# so a daily cycle has its natural phase. Runs are reproducible: the start is fixed.
DEFAULT_EPOCH = datetime(2026, 6, 1, 0, 0, tzinfo=timezone.utc).timestamp()


@dataclass(order=True)
class _Event:
    at_us: int
    seq: int
    fn: Callable = field(compare=False)
    args: tuple = field(compare=False, default=())
    cancelled: bool = field(compare=False, default=False)

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    def __init__(self, epoch_s: float = DEFAULT_EPOCH, start_us: int = 0):
        self.epoch_s = epoch_s
        self.now_us = start_us
        self._queue: list[_Event] = []
        self._seq = itertools.count()

    # --- reading -------------------------------------------------------------
    @property
    def now_s(self) -> float:
        return self.now_us / 1e6

    def unix_time(self) -> float:
        """Seconds since 1970 at the current virtual instant (for RTC and truth)."""
        return self.epoch_s + self.now_s

    # --- scheduling ----------------------------------------------------------
    def call_at(self, at_us: int, fn: Callable, *args) -> _Event:
        ev = _Event(max(int(at_us), self.now_us), next(self._seq), fn, args)
        heapq.heappush(self._queue, ev)
        return ev

    def call_later(self, delay_us: int, fn: Callable, *args) -> _Event:
        return self.call_at(self.now_us + int(delay_us), fn, *args)

    def next_event_us(self) -> int | None:
        while self._queue and self._queue[0].cancelled:
            heapq.heappop(self._queue)
        return self._queue[0].at_us if self._queue else None

    def upcoming(self, n: int) -> list[_Event]:
        """The next `n` events, in the order they will run (without cancelled ones)."""
        return heapq.nsmallest(n, (ev for ev in self._queue if not ev.cancelled))

    # --- advancing -----------------------------------------------------------
    def advance_to(self, t_us: int) -> None:
        """Run every event due up to and including `t_us`, in order, then stand at `t_us`."""
        t_us = int(t_us)
        while True:
            nxt = self.next_event_us()
            if nxt is None or nxt > t_us:
                break
            ev = heapq.heappop(self._queue)
            self.now_us = ev.at_us
            ev.fn(*ev.args)
        if t_us > self.now_us:
            self.now_us = t_us

    def advance_until(self, ready: Callable[[], bool], deadline_us: int) -> bool:
        """Advance event by event until `ready()` holds or the deadline passes.

        Returns whether `ready()` held; the clock stands at the instant it became true,
        or at the deadline.
        """
        while not ready():
            nxt = self.next_event_us()
            if nxt is None or nxt > deadline_us:
                self.advance_to(max(deadline_us, self.now_us))
                return ready()
            self.advance_to(nxt)
        return True
