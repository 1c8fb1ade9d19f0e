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


_ENCODE = r"""
import kinds
print(kinds.load(%r).encode(%d, %r, %d).hex())
"""


def encode_on_micropython(kind: str, seq: int, values, faults: int) -> bytes:
    """A kind's body as the firmware's own encoder makes it, on the real MicroPython."""
    from simulators.interpreter import run_script
    r = run_script(_ENCODE % (kind, seq, tuple(values), faults))
    assert r.returncode == 0, r.stdout + r.stderr
    return bytes.fromhex(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def climate_day(tmp_path_factory):
    """One simulated day of a climate node: (uplinks as dicts, completed process, out dir).
    Seed 1: a day with showers (4.5 mm) but no heavy rain, so no alarm uplinks come
    between the slots (tests/test_climate_rain.py runs a day with a heavy cell)."""
    out = tmp_path_factory.mktemp("climate-day")
    r = nodectl("simulate", "--kind", "climate", "--hours", 24, "--seed", 1, "--json", "--out", out)
    uplinks = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    return uplinks, r, out
