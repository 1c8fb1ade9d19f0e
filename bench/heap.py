"""Heap per kind: the peak live heap of each wake, and the smallest
`micropython -X heapsize=` at which a kind runs 7 simulated days.

- Peak per wake: bench/node_probe.py collects garbage and reads gc.mem_alloc() before
  every request the node makes to the simulator; the largest is the wake's peak live
  heap at a hardware-access boundary (a lower bound of the true peak: what a wake holds
  between two machine calls is not seen). `total_alloc` is micropython.mem_total(): all
  bytes allocated in the wake.
- Smallest heap: a binary search over short runs (the run stops at the first wake that
  fails: a MemoryError anywhere, a wake that does not end in deep sleep), then the found
  size must carry 7 simulated days, else it grows in doubling steps (2K, 4K, 8K, ...);
  the sizes whose week failed are reported.
- The floor: the smallest heap at which the simulator's own runtime boots a node whose
  main.py only deep-sleeps (machine.py, time.py, the JSON wire and the Python flash
  driver live on the heap here; a board has them in C). Every node the bench runs holds
  its firmware in a ROMFS image and takes the runtime from a second one
  (simulators/romfs.py): their code is off the heap, their objects are not.

The unix port is a 64-bit build: pointers and object headers are 8 bytes, so a heap
figure here is larger than the same firmware needs on a 32-bit RP2040 or ESP32.
"""
from __future__ import annotations

import re
import tempfile
from pathlib import Path

from bench.runs import simulate
from host_tools import firmware_build

HEAP_LINE = re.compile(r"\[bench\] heap peak=(\d+) free=(\d+) total_alloc=(\d+)")
BASE_LINE = re.compile(r"\[bench\] heap base=(\d+)")
STEP_K = 2
GOAL_K = 32


def per_wake(wakes: list) -> list[dict]:
    out = []
    for w in wakes:
        m = HEAP_LINE.search(w.console)
        if not m:
            continue
        base = BASE_LINE.search(w.console)
        out.append({"wake": w.index, "reading": bool(w.readings), "peak": int(m.group(1)),
                    "total_alloc": int(m.group(3)), "base": int(base.group(1)) if base else None})
    return out


def summary(samples: list[dict]) -> dict:
    if not samples:
        return {}
    peak = max(samples, key=lambda s: s["peak"])
    return {"wakes": len(samples), "peak_max": peak["peak"], "peak_max_wake": peak["wake"],
            "peak_median": sorted(s["peak"] for s in samples)[len(samples) // 2],
            "total_alloc_median": sorted(s["total_alloc"] for s in samples)[len(samples) // 2],
            "runtime_base": samples[0]["base"]}


def runs_ok(kind: str, heap_k: int, hours: float, mode: str | None = "plain") -> tuple[bool, str]:
    run = simulate(kind, hours, heapsize=f"{heap_k}K", mode=mode, stop_on_failure=True)
    if run.ok:
        return True, ""
    why = (run.failures[0] if run.failures else run.error) or "a wake did not end in deep sleep"
    # A node that died says why on its console: keep the error line, not the wrapper.
    errors = [line.strip() for line in why.splitlines() if "Error" in line and "NodeStopped" not in line]
    if errors and errors[-1] not in why.splitlines()[0]:
        why = f"{why.splitlines()[0][:80]} ... {errors[-1]}"
    return False, why[:300]


def smallest(kind: str, search_hours: float = 24, week_hours: float = 168,
             lo_k: int = 8, hi_k: int = 256, log=print) -> dict:
    # bench/launch.sh "plain": the node as measured elsewhere in the bench (compiled
    # runtime when BENCH_RUNTIME_MPY is set), no heap sampling.
    """Binary search for the smallest heap (K) that carries `search_hours`, then check
    it (growing by STEP_K) over `week_hours`."""
    ok, why = runs_ok(kind, hi_k, search_hours)
    if not ok:
        return {"error": f"fails even at {hi_k}K: {why}"}
    trials = []
    while hi_k - lo_k > STEP_K:
        mid = (lo_k + hi_k) // 2 // STEP_K * STEP_K
        ok, why = runs_ok(kind, mid, search_hours)
        trials.append({"heap_k": mid, "ok": ok, "why": why})
        log(f"  heap {kind} {mid}K {search_hours:g} h: {'ok' if ok else 'fails: ' + why[:100]}")
        if ok:
            hi_k = mid
        else:
            lo_k = mid
    # A week can fail where the search's runs held (a rarer wake, a more fragmented heap,
    # and not always monotonically): grow in doubling steps until a week holds.
    step, failed = STEP_K, []
    for _ in range(6):
        ok, why = runs_ok(kind, hi_k, week_hours)
        log(f"  heap {kind} {hi_k}K {week_hours:g} h: {'ok' if ok else 'fails: ' + why[:100]}")
        trials.append({"heap_k": hi_k, "hours": week_hours, "ok": ok, "why": why})
        if ok:
            return {"smallest_k": hi_k, "hours": week_hours, "failed_week_k": failed, "trials": trials}
        failed.append(hi_k)
        hi_k += step
        step *= 2
    return {"error": f"no heap up to {hi_k - step // 2}K carried {week_hours:g} h", "trials": trials}


def floor_k(board: dict, lo_k: int = 4, hi_k: int = 128, mode: str | None = "plain",
            rom: bool = False) -> int | None:
    """Smallest heap (K) at which the simulator's runtime boots a node whose main.py only
    deep-sleeps (`mode` None: the runtime as the simulator ships it, no bench launcher;
    `rom`: the board holds the firmware in ROMFS, so the runtime comes from its image too,
    as in every node the bench runs)."""

    from bench.runs import LAUNCH
    from simulators.clock import Clock
    from simulators.network import Network
    from simulators.node import SimNode

    def boots(k: int) -> bool:
        with tempfile.TemporaryDirectory(prefix="bench-floor-") as tmp:
            node = SimNode("floor", board, Path(tmp), Clock(), Network(seed=0), bytes(8),
                           heapsize=f"{k}K")
            if mode:
                node.launcher = [str(LAUNCH), mode, tmp]
            node.flash.erase_all()
            if rom:
                node.rom = firmware_build.romfs_file()
            node.install({"main.py": b"import machine\nmachine.deepsleep(1000)\n"})
            try:
                return node.wake().ended == "deepsleep"
            except Exception:  # noqa: BLE001 - a node that cannot boot is the answer
                return False

    if not boots(hi_k):
        return None
    while hi_k - lo_k > 1:
        mid = (lo_k + hi_k) // 2
        if boots(mid):
            hi_k = mid
        else:
            lo_k = mid
    return hi_k
