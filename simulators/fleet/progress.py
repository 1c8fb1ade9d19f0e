"""A progress display for fleet runs, on stderr so that stdout stays the result.

    with Progress(sys.stderr) as bar:
        run_fleet(spec, progress=bar.update)      # update(done_fraction, wakes)

On a terminal it redraws one bar line in place; otherwise (a CI log, a file) it writes a
plain line at every tenth of the way, so logs stay short and readable.
"""
from __future__ import annotations

import time

WIDTH = 30


class Progress:
    def __init__(self, stream, label: str = "fleet"):
        self.stream = stream
        self.label = label
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self._t0 = time.monotonic()
        self._drawn = 0.0
        self._tenth = -1
        self._last = (0.0, 0)

    def update(self, done: float, wakes: int) -> None:
        done = max(0.0, min(1.0, done))
        self._last = (done, wakes)
        now = time.monotonic()
        elapsed = now - self._t0
        if self.tty:
            if now - self._drawn < 0.1 and done < 1.0:
                return
            self._drawn = now
            fill = int(done * WIDTH)
            self.stream.write(f"\r{self.label} [{'#' * fill}{'.' * (WIDTH - fill)}] "
                              f"{100 * done:5.1f} %  {wakes} wakes  {elapsed:6.1f} s")
            self.stream.flush()
        elif int(done * 10) > self._tenth:
            self._tenth = int(done * 10)
            self.stream.write(f"{self.label}: {10 * self._tenth:3d} %  {wakes} wakes  "
                              f"{elapsed:.1f} s\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
