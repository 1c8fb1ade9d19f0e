"""The simulator's node runtime (simulators/node_runtime: machine.py, time.py, the wire,
the flash driver) compiled with mpy-cross, for measurements that should not count its
compilation: a board has these modules built in. bench/launch.sh puts the folder on the
node's path when BENCH_RUNTIME_MPY names it."""
from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
import tempfile

from host_tools.firmware_build import mpy_cross_binary
from simulators.node import RUNTIME

SCRIPTS = {"sim_boot.py", "sim_image.py", "board_boot.py"}   # run as scripts, never imported


def compile_runtime(dest: Path) -> Path:
    for src in sorted(RUNTIME.glob("*.py")):
        if src.name in SCRIPTS:
            continue
        out = dest / (src.stem + ".mpy")
        r = subprocess.run([mpy_cross_binary(), "-o", str(out), str(src)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"mpy-cross {src.name}: {r.stderr.strip()}")
    return dest


@contextmanager
def precompiled():
    """While inside, measured nodes (bench/launch.sh) import the compiled runtime."""
    with tempfile.TemporaryDirectory(prefix="bench-runtime-") as tmp:
        old = os.environ.get("BENCH_RUNTIME_MPY")
        os.environ["BENCH_RUNTIME_MPY"] = str(compile_runtime(Path(tmp)))
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("BENCH_RUNTIME_MPY", None)
            else:
                os.environ["BENCH_RUNTIME_MPY"] = old
