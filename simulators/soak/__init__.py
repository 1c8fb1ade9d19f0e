"""A soak: a mixed fleet lives for days under random power cuts and part, modem and
network faults, and every reading it took is accounted for (docs/soak.md).

    result = run_soak(SoakSpec(nodes=20, days=7, power_cuts=1000, faults=0.05, seed=1,
                               out_dir=Path("soak-out")))
    host_tools.soak.account(result)        # taken = delivered + queued + dropped + lost

Each node is a `Simulation` of its own (its own clock, network and environment: the
nodes do not share the air here) whose wakes run in a warm interpreter
(simulators/fleet/warm.py) with the firmware in a ROMFS folder. Kinds take turns
(climate, soil, water, glass). Everything a node does follows from the soak's seed and
the node's index, so the nodes are shared out among one worker process per core and
the result is the same whatever the number of workers.

What this side records, apart from the node's own word: the readings the simulator saw
the firmware take (`taken`), every uplink the node's modem put on air as its network
recorded it (`frames`), what the node's flash holds at the end, read through the
firmware's own queue class by `probe.py` on MicroPython (`queue`), and the configuration
each wake ran on, read the same way from the image before every wake (`config_bad`).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from host_tools import config_image
from simulators import kinds as sim_kinds
from simulators.fleet.run import firmware_split, pool_size, run_pool
from simulators.fleet.warm import WarmInterpreter, compiled_runtime
from simulators.interpreter import FIRMWARE, dies_with_parent, micropython_binary
from simulators.modems.faults import MODES as MODEM_FAULT_MODES
from simulators.node import NodeStopped
from simulators.scenario import NETWORK_FAULT_MODES, FaultWindow, Simulation

KINDS = ("climate", "soil", "water", "glass")
RADIUS_M = 2000.0          # nodes stand uniformly over a disc this wide around their gateway
MIN_DISTANCE_M = 50.0
FAULT_WINDOW_H = 2.0       # a fault lasts about this long; RATE decides how many there are
CUT_FLASH_OPS = 12         # a flash-op cut hits one of a wake's first so many programs/erases
CUT_INSTANT_S = 10.0       # an instant cut falls this long after a wake starts, or less
TICK_S = 0.3               # a worker reports progress at most this often
PROBE = Path(__file__).resolve().parent / "probe.py"
# wake.py logs this line once the reading is on the flash (ReadingQueue.push returned).
TAKEN_LINE = re.compile(r"^\[\s*\d+\.\d{3}\] reading seq=(\d+) queued=", re.M)
NOT_READY_LINE = re.compile(r"^\[\s*\d+\.\d{3}\] not ready: (.*)$", re.M)


@dataclass(frozen=True)
class SoakSpec:
    nodes: int
    days: float
    power_cuts: int = 0
    faults: float = 0.0
    seed: int = 1
    out_dir: Path = Path("soak-out")
    radius_m: float = RADIUS_M     # 0: every node on the gateway's bench (no link loss)
    workers: int | None = None     # default: one per core this process may use

    def check(self) -> None:
        if self.nodes < 1:
            raise ValueError("--nodes: a soak needs at least one node")
        if not self.days > 0:
            raise ValueError("--days must be above 0")
        if self.power_cuts < 0:
            raise ValueError("--power-cuts cannot be negative")
        if not 0 <= self.faults < 1:
            raise ValueError("--faults is the fraction of time each part spends in a fault: "
                             "0 <= RATE < 1")
        if self.radius_m < 0:
            raise ValueError("--radius-m cannot be negative")


@dataclass(frozen=True)
class NodePlan:
    index: int
    name: str
    kind: str
    seed: int
    distance_m: float | None          # None: on the gateway's bench
    cuts: tuple                       # ((wake number, "flash_op" | "at"), ...) in order
    faults: tuple                     # FaultWindow texts, PART:MODE@START-END


@dataclass
class NodeRecord:
    """What one node did, as the simulator saw it (plain data: it crosses processes)."""
    plan: NodePlan
    dev_eui: str = ""
    keys: dict = field(default_factory=dict)     # for the inventory only; never printed
    provisioned: dict = field(default_factory=dict)   # the configuration it was given
    wakes: int = 0
    ended: dict = field(default_factory=dict)
    cuts: dict = field(default_factory=dict)     # "flash_op"/"at" -> cuts made
    taken: list = field(default_factory=list)    # [seq, wake, t_us]
    stored_at_cut: list = field(default_factory=list)   # taken seqs found on the flash only
    frames: list = field(default_factory=list)   # every uplink on air: dicts, time order
    queue: dict = field(default_factory=dict)    # probe.py's answer at the end
    config_bad: list = field(default_factory=list)   # [wake (0: after the end), why]
    image: str = ""
    error: str | None = None                      # the node stopped: why
    wall_s: float = 0.0


@dataclass
class SoakResult:
    spec: SoakSpec
    nodes: list
    wall_s: float = 0.0
    workers: int = 1
    inventory: Path | None = None


# --- the plan ---------------------------------------------------------------------------------
def _fault_windows(rng: random.Random, part: str, modes, hours: float, rate: float) -> list[str]:
    """Windows that keep `part` in a fault for `rate` of `hours`, placed at random without
    overlap, each in a random mode the part can show."""
    total = rate * hours
    if total <= 0 or not modes:
        return []
    n = max(1, round(total / FAULT_WINDOW_H))
    length = total / n
    starts = sorted(rng.uniform(0, hours - total) for _ in range(n))
    out = []
    for i, s in enumerate(starts):
        a = s + i * length
        out.append(f"{part}:{rng.choice(sorted(modes))}@{a:.4f}-{a + length:.4f}")
    return out


def _part_modes(kind: str, board: str | None = None) -> dict[str, tuple]:
    """PART -> the fault modes its model can show, for a node of `kind` (modem and network
    included), from a rig built on a throw-away simulation."""
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        sim = Simulation(kind=kind, board=board, hours=1, out_dir=Path(tmp))
        modes = {p: tuple(getattr(m, "FAULT_MODES", ())) for p, m in sim.rig.parts.items()}
    modes["modem"] = tuple(MODEM_FAULT_MODES)
    modes["network"] = tuple(NETWORK_FAULT_MODES)
    return {p: m for p, m in modes.items() if m}


def plan(spec: SoakSpec) -> list[NodePlan]:
    """The nodes, their places, their faults and their share of the power cuts."""
    spec.check()
    hours = spec.days * 24
    rng = random.Random(f"soak:{spec.seed}")
    kinds = [KINDS[i % len(KINDS)] for i in range(spec.nodes)]
    # Each cut goes to a node at random; half cut inside a flash operation, half at an
    # instant (as tests/test_power_cuts.py does).
    owners = [rng.randrange(spec.nodes) for _ in range(spec.power_cuts)]
    modes = ["flash_op"] * ((spec.power_cuts + 1) // 2) + ["at"] * (spec.power_cuts // 2)
    rng.shuffle(modes)
    part_modes = {k: _part_modes(k) for k in sorted(set(kinds))}
    plans, counts = [], {}
    for i, kind in enumerate(kinds):
        counts[kind] = counts.get(kind, 0) + 1
        nrng = random.Random(f"soak:{spec.seed}:{i}")
        interval = getattr(sim_kinds.rig_class(kind), "DEFAULT_INTERVAL_S", 900)
        # Spread over the run: wake numbers within the first 90 % of the timer wakes (a
        # cut that a wake cannot take, e.g. a flash op it does not do, moves to the next).
        last = max(1, int(hours * 3600 / interval * 0.9))
        mine = [m for owner, m in zip(owners, modes) if owner == i]
        cuts = tuple(sorted((nrng.randint(1, last), m) for m in mine))
        distance = None
        if spec.radius_m > 0:
            distance = round(max(MIN_DISTANCE_M, spec.radius_m * (nrng.random() ** 0.5)), 1)
        faults = []
        for part, pm in part_modes[kind].items():
            faults += _fault_windows(nrng, part, pm, hours, spec.faults)
        plans.append(NodePlan(i, f"{kind}-{counts[kind]:04d}", kind, spec.seed * 100_003 + i,
                              distance, cuts, tuple(faults)))
    return plans


# --- the probe: the node's flash read through the firmware's own classes ---------------------
class Probe:
    """A MicroPython process running probe.py against the firmware's sources."""

    def __init__(self, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        self._log = open(workdir / "probe.err", "ab")
        env = dict(os.environ, MICROPYPATH=f"{FIRMWARE}:.frozen")
        self._proc = subprocess.Popen([micropython_binary(), str(PROBE)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=self._log, env=env,
                                      cwd=workdir, preexec_fn=dies_with_parent())

    def ask(self, what: str, image: Path) -> dict:
        self._proc.stdin.write(json.dumps([what, str(image)]).encode() + b"\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the flash probe stopped (see {self._log.name})")
        return json.loads(line)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def config_faults(answer: dict, provisioned: dict, digests: dict) -> str | None:
    """Why the configuration a probe read is not the one provisioned, or None."""
    if "error" in answer:
        return f"probe: {answer['error']}"
    if not answer.get("mount"):
        return "the flash does not mount (the board would format it: unprovisioned)"
    if answer.get("config") is None:
        return "no whole copy of the configuration (unprovisioned)"
    if answer["config"] != provisioned:
        diff = sorted(k for k in set(answer["config"]) | set(provisioned)
                      if answer["config"].get(k) != provisioned.get(k))
        return f"configuration differs from the one provisioned in {', '.join(diff)}"
    for name, want in digests.items():
        if answer["files"].get(name) != want:
            return f"{name} missing or not the one provisioned"
    return None


# --- one node ----------------------------------------------------------------------------------
class SoakNode(Simulation):
    """A `Simulation` whose wakes run in a warm interpreter, firmware in a ROMFS folder."""

    def __init__(self, node_plan: NodePlan, hours: float, out_dir: Path, vm: WarmInterpreter,
                 rom: Path, flash_files: dict):
        super().__init__(kind=node_plan.kind, hours=hours, seed=node_plan.seed, out_dir=out_dir,
                         name=node_plan.name,
                         faults=[FaultWindow.parse(f) for f in node_plan.faults])
        if node_plan.distance_m is not None:
            self.network.place(self.dev_eui, distance_m=node_plan.distance_m)
        self.node.runner = vm
        self.node.batched = True
        self.node.rom = rom
        self._vm = vm
        self.flash_files = dict(flash_files)
        self.after_provision = None      # called once the image is written

    def provision(self) -> None:
        """The flash as `nodectl provision` leaves it: main.py, board, configuration, keys."""
        self._vm.build_image(self.node.flash.path, self.provisioned_files())
        if self.after_provision is not None:
            self.after_provision()

    def provisioned_files(self) -> dict[str, bytes]:
        files = dict(self.flash_files)
        files["board.json"] = json.dumps(self.board, indent=1).encode()
        files.update(config_image.files(self.config()))
        files["keys.json"] = json.dumps({"app_key": self.app_key.hex(),
                                         "payload_key": self.payload_key.hex()}).encode()
        return files


class CutPlan:
    """`Simulation.run(power_cuts=...)`: hands out the node's planned cuts in order. A cut
    that did not happen (no such flash op in that wake) is handed to the next wake."""

    def __init__(self, sim: Simulation, cuts: tuple, rng: random.Random):
        self.sim = sim
        self.cuts = list(cuts)
        self.rng = rng
        self.next = 0
        self.out: str | None = None      # the mode of the cut handed out, not yet seen
        self.made = {"flash_op": 0, "at": 0}

    def __call__(self, wake: int):
        if self.out is not None and self.sim.stats.power_cuts > sum(self.made.values()):
            self.made[self.out] += 1
            self.out = None
        if self.out is None and self.next < len(self.cuts) and wake >= self.cuts[self.next][0]:
            self.out = self.cuts[self.next][1]
            self.next += 1
        if self.out is None:
            return None
        if self.out == "flash_op":
            return ("flash_op", self.rng.randrange(CUT_FLASH_OPS))
        return ("at", self.rng.randrange(int(CUT_INSTANT_S * 1e6)))

    def finish(self) -> dict:
        if self.out is not None and self.sim.stats.power_cuts > sum(self.made.values()):
            self.made[self.out] += 1
            self.out = None
        return dict(self.made)


def _frames(net) -> list[dict]:
    """Every data uplink the node's modem put on air, received or not, in time order."""
    out = []
    for bucket, outcome in ((net.uplinks, "received"), (net.duplicates, "retransmission"),
                            (net.lost, None)):
        for u in bucket:
            if u.port is None:
                continue            # an empty frame carries no envelope
            out.append({"t_us": u.t_us, "fcnt": u.fcnt, "payload": u.payload.hex(),
                        "outcome": outcome or u.reason})
    out.sort(key=lambda f: (f["t_us"], f["fcnt"]))
    return out


def run_node(node_plan: NodePlan, spec: SoakSpec, vm: WarmInterpreter, probe: Probe, rom: Path,
             flash_files: dict, tick=None, hook=None, power_cuts=None) -> NodeRecord:
    """Run one node of the soak. `hook(sim, wake)` runs after each wake (tests use it to
    tamper with the node's flash as a fault would); `power_cuts` replaces the plan's cuts
    (`Simulation.run`'s callable)."""
    t0 = time.perf_counter()
    out = Path(spec.out_dir) / "nodes"
    sim = SoakNode(node_plan, spec.days * 24, out, vm, rom, flash_files)
    rec = NodeRecord(node_plan, sim.dev_eui.hex().upper(), keys={
        "dev_eui": sim.dev_eui.hex().upper(), "join_eui": sim.join_eui.hex().upper(),
        "app_key": sim.app_key.hex().upper(), "payload_key": sim.payload_key.hex().upper(),
        "kind": sim.kind, "board": sim.board_name,
        "site": "soak" if node_plan.distance_m is None else f"soak {node_plan.distance_m:.0f} m",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        provisioned=sim.config(), image=str(sim.node.flash.path))
    files = sim.provisioned_files()
    digests = {name: hashlib.sha256(files[name]).hexdigest() for name in ("keys.json", "board.json")}
    cuts = CutPlan(sim, node_plan.cuts, random.Random(f"cuts:{node_plan.seed}"))
    image = sim.node.flash.path
    state = {"before": None, "last": 0.0}

    def check_config(wake_no: int) -> None:
        why = config_faults(probe.ask("config", image), rec.provisioned, digests)
        state["before"] = why
        if why and wake_no:
            rec.config_bad.append([wake_no, why])

    def on_wake(wake) -> None:
        # The configuration this wake ran on is what the image held before it.
        if state["before"]:
            rec.config_bad.append([wake.index, state["before"]])
        else:
            m = NOT_READY_LINE.search(wake.console)
            if m:
                rec.config_bad.append([wake.index, f"the node said: not ready: {m.group(1)}"])
        logged = [int(seq) for seq in TAKEN_LINE.findall(wake.console)]
        for seq in logged:
            rec.taken.append([seq, wake.index, wake.start_us])
        if wake.ended == "power_cut" and not logged:
            # The cut may have hit the very program that committed the reading: it is on
            # the flash (the commit landed whole) though the firmware never got to say so.
            # What the flash holds right after the cut, above every seq seen, was taken.
            last = max((t[0] for t in rec.taken), default=-1)
            answer = probe.ask("queue", image)
            for seq in sorted(s for s, _ in answer.get("queued", ()) if s > last):
                rec.taken.append([seq, wake.index, wake.start_us])
                rec.stored_at_cut.append(seq)
        if hook is not None:
            hook(sim, wake)
        check_config(0)
        now = time.monotonic()
        if tick and now - state["last"] > TICK_S:
            state["last"] = now
            tick(node_plan.index, sim.clock.now_s)

    # The first wake's configuration is the one provisioning wrote: checked too.
    sim.after_provision = lambda: check_config(0)
    try:
        for _ in sim.run(on_wake=on_wake, power_cuts=power_cuts or cuts):
            pass
    except NodeStopped as e:
        rec.error = str(e)[-1500:]
    rec.wakes = sim.stats.wakes
    rec.ended = dict(sim.stats.ended)
    rec.cuts = cuts.finish() if power_cuts is None else {"given": sim.stats.power_cuts}
    rec.frames = _frames(sim.network)
    rec.queue = probe.ask("queue", image)
    if state["before"]:
        rec.config_bad.append([0, state["before"]])    # it ended on a wrong configuration
    rec.wall_s = time.perf_counter() - t0
    return rec


# --- the fleet ---------------------------------------------------------------------------------
def _worker(index: int, cpu: int | None, spec: SoakSpec, rom: Path, flash_files: dict,
            tasks, results) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})     # its interpreter and probe inherit this
    work = Path(spec.out_dir) / "vm" / f"worker-{index}"
    vm = WarmInterpreter(work)
    probe = Probe(work)

    def tick(node_index, t_s):
        results.put(("tick", node_index, t_s))

    try:
        while True:
            node_plan = tasks.get()
            if node_plan is None:
                break
            try:
                rec = run_node(node_plan, spec, vm, probe, rom, flash_files, tick)
            except Exception:        # noqa: BLE001 - one broken node must not stop the soak
                rec = NodeRecord(node_plan, error=traceback.format_exc()[-1500:])
            results.put(("node", rec))
    finally:
        probe.close()
        vm.close()
        results.put(("done", index))


def run_soak(spec: SoakSpec, progress=None) -> SoakResult:
    """Run every node; `progress(done_fraction, nodes_done)` is called as it goes."""
    t0 = time.perf_counter()
    plans = plan(spec)
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    compiled_runtime()                  # once, before the workers need it
    rom, flash_files = firmware_split(out)
    workers = pool_size(spec.workers, len(plans))
    done = run_pool(_worker, (spec, rom, flash_files), plans, workers, spec.days * 86400,
                    progress and (lambda frac, done: progress(frac, len(done))))
    missing = [p.name for p in plans if p.index not in done]
    if missing:
        raise RuntimeError(f"soak workers died; no result for {len(missing)} nodes "
                           f"({', '.join(missing[:5])})")
    nodes = [done[p.index] for p in plans]
    return SoakResult(spec, nodes, time.perf_counter() - t0, workers)
