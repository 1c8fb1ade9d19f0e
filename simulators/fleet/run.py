"""Run a fleet of simulated nodes that share one gateway.

    result = run_fleet(FleetSpec(nodes=1000, hours=24, kinds=["climate", "soil", "water",
                                 "glass"], seed=1, out_dir=Path("fleet-out")))
    result.summary()      # nodes, wakes, uplinks sent/received, collisions, airtime, wall time

Each node is a `FleetNode`: the single-node `Simulation` (its own virtual clock, part
models, environment and the network's view of its link, placed at its distance from the
gateway) whose wakes run in a warm interpreter (warm.py) with the firmware in a ROMFS
folder, on the batched wire. A node's run depends on nothing but its own plan, so the
nodes are shared out among worker processes (one per core, each pinned to its core with
its interpreter, so a request and its answer never cross cores) and the results are the
same for a seed whatever the number of workers.

The gateway: every frame of every node that reached the gateway above its demodulation
floor goes, in time order, into one `radio.Air`, the network model's own collision rules
(same channel, SF and bandwidth overlapping past the preamble lock; 6 dB capture). A
frame that loses there is lost, whatever the node's own network told its modem at the
time; that answer (an ACK, an ADR step) stands, as in `Network.resolve_collisions()`.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import queue
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from host_tools import config_image, firmware_build, inventory
from simulators.fleet.plan import NodePlan, plan
from simulators.fleet.warm import WarmInterpreter, compiled_runtime
from simulators.network import eu868, radio
from simulators.node import NodeStopped
from simulators.scenario import Simulation

TICK_WAKES = 8           # a worker reports progress every so many wakes


@dataclass
class FleetSpec:
    nodes: int
    hours: float
    kinds: list[str]
    seed: int = 1
    out_dir: Path = Path("fleet-out")
    workers: int | None = None       # default: one per core this process may use
    radius_m: float | None = None
    keep_flash: bool = False         # keep each node's flash image (1 MiB each)


@dataclass
class Frame:
    """One frame a node put on air, as the network recorded it."""
    t_us: int
    airtime_us: int
    channel_hz: int
    dr: int
    rssi: float | None
    join: bool
    fcnt: int | None
    has_payload: bool
    outcome: str            # "" (received / accepted), "duplicate", or why it was lost


@dataclass
class NodeResult:
    plan: NodePlan
    dev_eui: str
    wakes: int = 0
    readings: int = 0
    ended: dict = field(default_factory=dict)
    uplinks: list = field(default_factory=list)     # scenario.Uplink as dicts, in order
    frames: list = field(default_factory=list)      # Frame, in order
    decode_errors: list = field(default_factory=list)
    error: str | None = None                        # the node stopped (its console's end)
    wall_s: float = 0.0
    keys: dict = field(default_factory=dict)        # for the inventory only; never printed


@dataclass
class FleetResult:
    spec: FleetSpec
    nodes: list[NodeResult]
    collided: set = field(default_factory=set)      # (node index, frame index)
    wall_s: float = 0.0
    workers: int = 1

    def received(self, node: NodeResult) -> list[dict]:
        """The node's decoded uplinks that survived the gateway."""
        lost = {(f.t_us, f.fcnt) for i, f in enumerate(node.frames)
                if (node.plan.index, i) in self.collided}
        return [u for u in node.uplinks if (u["t_us"], u["fcnt"]) not in lost]

    def node_stats(self, node: NodeResult) -> dict:
        sent = {f.fcnt for f in node.frames if not f.join and f.has_payload}
        got = {u["fcnt"] for u in self.received(node)}
        airtime = sum(f.airtime_us for f in node.frames)
        return {"sent": len(sent), "received": len(got & sent),
                "delivery": len(got & sent) / len(sent) if sent else None,
                "collisions": sum(1 for i, _ in enumerate(node.frames)
                                  if (node.plan.index, i) in self.collided),
                "airtime_s_per_day": airtime / 1e6 * 24 / self.spec.hours}

    def summary(self) -> dict:
        stats = [self.node_stats(n) for n in self.nodes]
        sent = sum(s["sent"] for s in stats)
        received = sum(s["received"] for s in stats)
        kinds = {}
        for n in self.nodes:
            kinds[n.plan.kind] = kinds.get(n.plan.kind, 0) + 1
        airtimes = sorted(s["airtime_s_per_day"] for s in stats)
        return {
            "nodes": len(self.nodes), "kinds": kinds, "hours": self.spec.hours,
            "seed": self.spec.seed, "wakes": sum(n.wakes for n in self.nodes),
            "readings": sum(n.readings for n in self.nodes),
            "uplinks_sent": sent, "uplinks_received": received,
            "collisions": len(self.collided),
            "delivery_ratio": round(received / sent, 4) if sent else None,
            "airtime_s_per_node_day": {
                "mean": round(sum(airtimes) / len(airtimes), 2) if airtimes else 0,
                "max": round(airtimes[-1], 2) if airtimes else 0},
            "decode_errors": sum(len(n.decode_errors) for n in self.nodes),
            "stopped_nodes": [n.plan.name for n in self.nodes if n.error],
            "wall_s": round(self.wall_s, 1), "workers": self.workers,
        }


class FleetNode(Simulation):
    """One node of a fleet: a `Simulation` placed at its distance from the gateway,
    powered on at its planned instant, its wakes run by a warm interpreter."""

    def __init__(self, node_plan: NodePlan, hours: float, out_dir: Path, vm: WarmInterpreter,
                 rom: Path, flash_files: dict[str, bytes]):
        super().__init__(kind=node_plan.kind, hours=hours, seed=node_plan.seed,
                         out_dir=out_dir, interval_s=node_plan.interval_s, name=node_plan.name)
        self.plan = node_plan
        if node_plan.distance_m is not None:
            self.network.place(self.dev_eui, distance_m=node_plan.distance_m)
        self.node.runner = vm
        self.node.batched = True
        self.node.rom = rom
        self._vm = vm
        self._flash_files = flash_files

    def provision(self) -> None:
        """The firmware is in the ROMFS folder; the flash gets main.py, the board file,
        the configuration and the keys, as `nodectl provision` writes them."""
        files = dict(self._flash_files)
        files["board.json"] = json.dumps(self.board, indent=1).encode()
        files.update(config_image.files(self.config()))
        files["keys.json"] = json.dumps({"app_key": self.app_key.hex(),
                                         "payload_key": self.payload_key.hex()}).encode()
        self._vm.build_image(self.node.flash.path, files)

    def run(self, on_wake=None, power_cuts=None):
        self.clock.advance_to(int(self.plan.power_on_s * 1e6))    # unpowered until then
        yield from super().run(on_wake=on_wake, power_cuts=power_cuts)


def firmware_split(out_dir: Path) -> tuple[Path, dict[str, bytes]]:
    """The compiled firmware as a ROMFS image (build/romfs, firmware_build.romfs_file),
    and what stays on the flash (main.py). `out_dir` is not written."""
    rom, flash = firmware_build.split(firmware_build.build())
    return firmware_build.romfs_file(rom), flash


def _frames(net) -> list[Frame]:
    out = []
    for j in net.joins:
        out.append(Frame(j.t_us or 0, j.airtime_us, j.channel_hz, j.dr if j.dr is not None else -1,
                         j.rssi, True, None, False, "" if j.accepted else j.reason))
    for bucket, outcome in ((net.uplinks, ""), (net.duplicates, "duplicate"), (net.lost, None)):
        for u in bucket:
            out.append(Frame(u.t_us, u.airtime_us, u.channel_hz, u.dr, u.rssi, False, u.fcnt,
                             u.port is not None, u.reason if outcome is None else outcome))
    out.sort(key=lambda f: f.t_us)
    return out


def run_node(node_plan: NodePlan, spec: FleetSpec, vm: WarmInterpreter, rom: Path,
             flash_files: dict, tick=None) -> NodeResult:
    t0 = time.perf_counter()
    sim = FleetNode(node_plan, spec.hours, Path(spec.out_dir) / "nodes", vm, rom, flash_files)
    res = NodeResult(node_plan, sim.dev_eui.hex().upper(), keys={
        "dev_eui": sim.dev_eui.hex().upper(), "join_eui": sim.join_eui.hex().upper(),
        "app_key": sim.app_key.hex().upper(), "payload_key": sim.payload_key.hex().upper(),
        "kind": sim.kind, "board": sim.board_name, "site": f"fleet {node_plan.distance_m:.0f} m",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    wakes = [0]

    def on_wake(_wake):
        wakes[0] += 1
        if tick and wakes[0] % TICK_WAKES == 0:
            tick(node_plan.index, sim.clock.now_s)

    try:
        for up in sim.run(on_wake=on_wake):
            d = dict(up.__dict__)     # Uplink's fields (asdict would deep-copy them)
            d["t_us"] = int(round(up.t * 1e6))
            res.uplinks.append(d)
    except NodeStopped as e:
        res.error = str(e)[-1500:]
    res.wakes = sim.stats.wakes
    res.readings = sim.stats.readings
    res.ended = dict(sim.stats.ended)
    res.decode_errors = list(sim.stats.decode_errors)
    res.frames = _frames(sim.network)
    # Uplink.t is rounded to ms: take the exact start from the network's record.
    exact = {(u.fcnt, round(u.t_us / 1e6, 3)): u.t_us for u in sim.network.uplinks}
    for d in res.uplinks:
        d["t_us"] = exact.get((d["fcnt"], d["t"]), d["t_us"])
    if not spec.keep_flash:
        sim.node.flash.path.unlink(missing_ok=True)
    res.wall_s = time.perf_counter() - t0
    return res


# --- the gateway -----------------------------------------------------------------------------
def gateway_collisions(nodes: list[NodeResult]) -> set:
    """(node index, frame index) of every frame lost to a collision at the one gateway."""
    air = radio.Air()
    heard = []
    for n in nodes:
        for i, f in enumerate(n.frames):
            if (f.channel_hz and f.airtime_us and f.rssi is not None and f.dr in eu868.DATA_RATES
                    and f.outcome not in ("link budget", "network unavailable")):
                sf, bw = eu868.DATA_RATES[f.dr]
                heard.append(radio.Transmission(f.t_us, f.airtime_us, f.channel_hz, sf, bw,
                                                f.rssi, (n.plan.index, i)))
    heard.sort(key=lambda tx: (tx.start_us, tx.record))
    lost = set()
    for tx in heard:
        for loser in air.add(tx):
            lost.add(loser.record)
    return lost


# --- workers -----------------------------------------------------------------------------------
def _worker(index: int, cpu: int | None, spec: FleetSpec, rom: Path, flash_files: dict,
            tasks, results) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})       # the interpreter it starts inherits this
    vm = WarmInterpreter(Path(spec.out_dir) / "vm" / f"worker-{index}", rom=rom)
    last = [0.0]

    def tick(node_index, t_s):
        now = time.monotonic()
        if now - last[0] > 0.2:
            last[0] = now
            results.put(("tick", node_index, t_s))

    try:
        while True:
            node_plan = tasks.get()
            if node_plan is None:
                break
            try:
                res = run_node(node_plan, spec, vm, rom, flash_files, tick)
            except Exception:            # noqa: BLE001 - one broken node must not stop the fleet
                res = NodeResult(node_plan, "", error=traceback.format_exc()[-1500:])
            results.put(("node", res))
    finally:
        vm.close()
        results.put(("done", index))


def _cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:       # not Linux
        return list(range(os.cpu_count() or 1))


def pool_size(wanted: int | None, n_plans: int) -> int:
    return max(1, min(wanted or len(_cpus()), n_plans))


def run_pool(worker, args: tuple, plans: list, workers: int, span_s: float, progress=None) -> dict:
    """Nodes shared among `workers` forked processes, one pinned to each core:
    `worker(w, cpu, *args, tasks, results)` takes plans until a None and reports
    ("tick", index, t_s), ("node", result) and ("done",). Returns {plan index: result};
    `progress(fraction, done)` is called as results come."""
    cpus = _cpus()
    ctx = multiprocessing.get_context("fork")
    tasks, results = ctx.Queue(), ctx.Queue()
    # Slow kinds first (glass: a pin wake on every impact), so that no worker is left
    # with a long node at the end.
    for p in sorted(plans, key=lambda p: (p.kind != "glass", p.index)):
        tasks.put(p)
    for _ in range(workers):
        tasks.put(None)
    procs = [ctx.Process(target=worker, args=(w, cpus[w % len(cpus)] if workers > 1 else None,
                                              *args, tasks, results),
                         daemon=True) for w in range(workers)]
    for p in procs:
        p.start()
    done: dict = {}
    reached = {p.index: 0.0 for p in plans}
    finished = 0
    while finished < workers:
        try:
            msg = results.get(timeout=1.0)
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                break
            continue
        if msg[0] == "tick":
            reached[msg[1]] = min(1.0, msg[2] / span_s)
        elif msg[0] == "node":
            done[msg[1].plan.index] = msg[1]
            reached[msg[1].plan.index] = 1.0
        elif msg[0] == "done":
            finished += 1
        if progress and msg[0] != "done":
            progress(sum(reached.values()) / len(plans), done)
    for p in procs:
        p.join(timeout=10)
    return done


def run_fleet(spec: FleetSpec, progress=None, plans: list[NodePlan] | None = None) -> FleetResult:
    """Run every node of the fleet; `progress(done_fraction, wakes)` is called as it goes.
    `plans` places the nodes by hand (default: `plan()` from the spec)."""
    t0 = time.perf_counter()
    out = Path(spec.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if plans is None:
        plans = plan(spec.nodes, spec.kinds, spec.seed,
                     **({"radius_m": spec.radius_m} if spec.radius_m else {}))
    if sorted(p.index for p in plans) != list(range(len(plans))):
        raise ValueError("plans must be numbered 0..N-1 by their index")
    compiled_runtime()                 # once, before the workers need it
    rom, flash_files = firmware_split(out)
    workers = pool_size(spec.workers, len(plans))
    done = run_pool(_worker, (spec, rom, flash_files), plans, workers, spec.hours * 3600,
                    progress and (lambda frac, done: progress(
                        frac, sum(n.wakes for n in done.values()))))
    missing = [p.name for p in plans if p.index not in done]
    if missing:
        raise RuntimeError(f"fleet workers died; no result for {len(missing)} nodes "
                           f"({', '.join(missing[:5])}...)")
    nodes = [done[p.index] for p in plans]
    result = FleetResult(spec, nodes, gateway_collisions(nodes), workers=workers)
    _write_records(result, out)
    result.wall_s = time.perf_counter() - t0
    return result


def _write_records(result: FleetResult, out: Path) -> None:
    """inventory.csv (the keys, 0600) and uplinks.jsonl (each uplink that survived the
    gateway, as `nodectl simulate --json` prints them)."""
    inv = out / "inventory.csv"
    inv.unlink(missing_ok=True)
    for n in result.nodes:
        if n.keys:
            inventory.append(inv, n.keys)
    with open(out / "uplinks.jsonl", "w") as f:
        for n in result.nodes:
            for u in result.received(n):
                f.write(json.dumps({k: v for k, v in u.items() if k != "t_us"},
                                   separators=(",", ":")) + "\n")
