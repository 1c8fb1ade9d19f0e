"""The machine a bench ran on: CPU, cores, load, and the versions that shape the figures."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone

from bench import callgrind
from host_tools.firmware_build import REPO, mpy_cross_binary
from simulators.interpreter import micropython_binary


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _run(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (r.stdout or r.stderr).strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def describe() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load] if load else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "micropython": _run([micropython_binary(), "-c", "import sys; print(sys.version, sys.implementation._build)"]),
        "mpy_cross": _run([mpy_cross_binary(), "--version"]),
        "valgrind": callgrind.version() or "not installed",
        "git": _run(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
    }
