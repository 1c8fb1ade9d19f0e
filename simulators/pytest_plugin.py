"""pytest plugin: simulated nodes as fixtures, so a user's CI can test its own setup.

Installed with the project (entry point `pytest11`), nothing to import:

    def test_our_interval_and_alarm_level(sim_node):
        run = sim_node(kind="climate", hours=6, config={"interval_s": 600, "rain_alarm_mm_h": 10})
        assert len(run.uplinks) == 36 and run.decode_errors == []
        assert all(abs(u.decoded["temperature"] - u.truth["temperature"]) < 0.3 for u in run.uplinks)

Each run is the real firmware on the real MicroPython interpreter, in virtual time;
`run.uplinks` are decoded uplinks with the simulated truth beside them (docs/simulator.md).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from simulators.scenario import FaultWindow, Simulation, Uplink


@dataclass
class SimRun:
    sim: Simulation
    uplinks: list[Uplink] = field(default_factory=list)

    @property
    def decode_errors(self) -> list[str]:
        return self.sim.stats.decode_errors

    @property
    def console(self) -> str:
        """The node's whole serial console over the run."""
        return (self.sim.node.workdir / "console.log").read_text(errors="replace")


@pytest.fixture
def sim_node(tmp_path_factory):
    """`sim_node(kind, hours=24, seed=0, board=None, config=None, faults=())` runs one
    simulated node and returns a SimRun. `faults` takes "PART:MODE@START_H-END_H"
    strings as `nodectl simulate --fault` does."""
    def run(kind: str = "climate", hours: float = 24, seed: int = 0, board: str | None = None,
            config: dict | None = None, faults=(), name: str = "node-1") -> SimRun:
        out = tmp_path_factory.mktemp(f"sim-{kind}")
        sim = Simulation(kind=kind, board=board, hours=hours, seed=seed, out_dir=out,
                         interval_s=(config or {}).get("interval_s"), name=name,
                         faults=[FaultWindow.parse(f) for f in faults], config=config)
        return SimRun(sim, list(sim.run()))
    return run


@pytest.fixture
def sim_fleet(sim_node):
    """`sim_fleet([(kind, count), ...], hours=24, seed=0)`: several nodes, one SimRun each
    (run one after another; each has its own seed, DevEUI and keys)."""
    def run(mix, hours: float = 24, seed: int = 0) -> list[SimRun]:
        runs = []
        for kind, count in mix:
            for i in range(count):
                runs.append(sim_node(kind=kind, hours=hours, seed=seed * 1000 + len(runs),
                                     name=f"{kind}-{i + 1}"))
        return runs
    return run
