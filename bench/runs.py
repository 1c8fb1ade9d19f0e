"""Running a simulated node for the bench: one kind, its default board and interval,
optionally measured (bench/launch.sh) and observed (bench/awake.py)."""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from simulators import kinds as sim_kinds
from simulators.scenario import Simulation

LAUNCH = Path(__file__).resolve().parent / "launch.sh"
KINDS = sim_kinds.available()
SEED = 7


@dataclass
class Run:
    kind: str
    hours: float
    heapsize: str
    wall_s: float = 0.0
    wakes: list = field(default_factory=list)       # WakeResult
    uplinks: list = field(default_factory=list)     # scenario.Uplink
    sim: Simulation | None = None
    error: str | None = None

    @property
    def failures(self) -> list[str]:
        """Console lines of wakes that went wrong (an exception, a MemoryError)."""
        return [line for w in self.wakes for line in wake_failures(w)]

    @property
    def ok(self) -> bool:
        """Every wake ended in deep sleep, nothing failed, every reading was delivered."""
        if self.error or self.failures:
            return False
        if any(w.ended != "deepsleep" for w in self.wakes):
            return False
        readings = sum(len(w.readings) for w in self.wakes)
        return readings > 0 and len(self.uplinks) >= readings - 1   # the last may still be queued


def wake_failures(w) -> list[str]:
    return [f"wake {w.index}: {line.strip()}" for line in w.console.splitlines()
            if "MemoryError" in line or "error:" in line or "Traceback" in line]


class _Stop(Exception):
    pass


def simulate(kind: str, hours: float, heapsize: str = "192K", mode: str | None = None,
             observer=None, on_wake=None, workdir: Path | None = None, seed: int = SEED,
             stop_on_failure: bool = False) -> Run:
    """Run one node of `kind` for `hours` (virtual). `mode` 'probe' or 'callgrind' runs the
    interpreter under bench/launch.sh; `observer` sees every request (SimNode.observer);
    `stop_on_failure` ends the run at the first wake that fails (a heap search)."""
    run = Run(kind, hours, heapsize)
    own = tempfile.TemporaryDirectory(prefix=f"bench-{kind}-") if workdir is None else None
    out = Path(own.name if own else workdir)
    try:
        sim = Simulation(kind=kind, hours=hours, seed=seed, out_dir=out)
        run.sim = sim
        sim.node.heapsize = heapsize
        if mode:
            sim.node.launcher = [str(LAUNCH), mode, str(out)]
        sim.node.observer = observer

        def wake_done(w):
            run.wakes.append(w)
            if on_wake:
                on_wake(w)
            if stop_on_failure and (wake_failures(w) or w.ended != "deepsleep"):
                raise _Stop(f"wake {w.index} failed")

        t0 = time.monotonic()
        try:
            for up in sim.run(on_wake=wake_done):
                run.uplinks.append(up)
        except Exception as e:  # noqa: BLE001 - a node that stops is a result here
            run.error = f"{type(e).__name__}: {str(e)[-600:]}"
        run.wall_s = time.monotonic() - t0
    finally:
        if own:
            own.cleanup()
    return run
