"""Shared fixtures: runs of the real `nodectl` command, done once per session."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def nodectl(*args, check=True, timeout=300, cwd=None) -> subprocess.CompletedProcess:
    """Run the installed `nodectl` exactly as a user types it."""
    r = subprocess.run([str(BIN / "nodectl"), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, cwd=cwd)
    if check and r.returncode != 0:
        raise AssertionError(f"nodectl {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


@pytest.fixture(scope="session")
def climate_day(tmp_path_factory):
    """One simulated day of a climate node: (uplinks as dicts, completed process, out dir)."""
    out = tmp_path_factory.mktemp("climate-day")
    r = nodectl("simulate", "--kind", "climate", "--hours", 24, "--seed", 5, "--json", "--out", out)
    uplinks = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return uplinks, r, out
