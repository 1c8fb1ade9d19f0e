"""The fleet figure: 1,000 nodes x 24 simulated hours, its wall time, through the command a
user types (`nodectl simulate --nodes N --hours H --out DIR --json`), with the wakes it ran
and the wall time per wake. Recorded as not available while nodectl has no --nodes option."""
from __future__ import annotations

import json
import os
import signal
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


def measure(nodes: int = NODES, hours: float = HOURS, timeout_s: float = 2400.0) -> dict:
    base = {"nodes": nodes, "hours": hours, "goal_s": GOAL_S, "first_bar_s": FIRST_BAR_S}
    if not available():
        return {**base, "available": False,
                "reason": "`nodectl simulate` has no --nodes option yet (issue 7's fleet runner)"}
    with tempfile.TemporaryDirectory(prefix="bench-fleet-", ignore_cleanup_errors=True) as out:
        cmd = [nodectl(), "simulate", "--nodes", str(nodes), "--hours", str(hours), "--out", out,
               "--json"]
        t0 = time.monotonic()
        # Its own session: a run that overstays is stopped with all its worker processes.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            output, errors = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {**base, "available": True, "ok": False, "wall_s": None,
                    "reason": f"did not finish in {timeout_s:g} s (stopped)"}
        wall = time.monotonic() - t0
        report = Path(out) / "report.html"
        try:
            summary = json.loads(output.strip().splitlines()[-1])
        except (ValueError, IndexError):
            summary = {}
        wakes = summary.get("wakes")
        return {**base, "available": True, "ok": proc.returncode == 0, "wall_s": round(wall, 1),
                "command": " ".join(cmd[1:8]), "report_html": report.exists(),
                "wakes": wakes, "ms_per_wake": round(wall / wakes * 1000, 2) if wakes else None,
                "workers": summary.get("workers"), "load_avg_1min": round(os.getloadavg()[0], 1),
                "tail": (errors or "")[-600:]}
