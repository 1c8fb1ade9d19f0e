"""The fleet figure: 1,000 nodes x 24 simulated hours, its wall time, through the command a
user types (`nodectl simulate --nodes N --hours H --out DIR`). Recorded as not available
while nodectl has no --nodes option."""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

NODES = 1000
HOURS = 24
GOAL_S = 60.0
FIRST_BAR_S = 300.0


def nodectl() -> str:
    return str(Path(sys.executable).parent / "nodectl")


def available() -> bool:
    r = subprocess.run([nodectl(), "simulate", "--help"], capture_output=True, text=True)
    return "--nodes" in r.stdout


def measure(nodes: int = NODES, hours: float = HOURS, timeout_s: float = 900.0) -> dict:
    base = {"nodes": nodes, "hours": hours, "goal_s": GOAL_S, "first_bar_s": FIRST_BAR_S}
    if not available():
        return {**base, "available": False,
                "reason": "`nodectl simulate` has no --nodes option yet (issue 7's fleet runner)"}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as out:
        cmd = [nodectl(), "simulate", "--nodes", str(nodes), "--hours", str(hours), "--out", out]
        t0 = time.monotonic()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return {**base, "available": True, "ok": False, "wall_s": None,
                    "reason": f"stopped after {timeout_s:g} s"}
        wall = time.monotonic() - t0
        report = Path(out) / "report.html"
        return {**base, "available": True, "ok": r.returncode == 0, "wall_s": round(wall, 1),
                "command": " ".join(cmd[1:3] + cmd[3:7]), "report_html": report.exists(),
                "tail": (r.stdout + r.stderr)[-600:]}
