"""The command a measured node's interpreter runs under (SimNode.launcher).

    python bench/launch.py MODE OUTDIR micropython -X heapsize=N .../sim_boot.py

Every mode runs sim_boot.py through bench/node_probe.py (tagged light sleeps, a clean
exit at deep sleep). MODE `probe` also samples the heap before each request; `plain`
does not; `callgrind` runs under `valgrind --tool=callgrind` counting only MicroPython's
own main (`--toggle-collect=main_`), in a process of its own so that the simulator's
kill at deep sleep does not stop valgrind from writing OUTDIR/callgrind.<pid>; its pid
is appended to OUTDIR/pids.

With BENCH_RUNTIME_MPY set to a folder of the simulator's node runtime compiled with
mpy-cross (bench/runtime.py), the node imports machine.py, time.py and the wire from
there: a board has them built in, so their compile-time heap and instructions are not
the firmware's.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = Path(__file__).resolve().parent / "node_probe.py"


def _interpreter(cmd: list[str]) -> list[str]:
    """The venv's `micropython` is a Python script: run its interpreter explicitly so
    valgrind instruments the process that runs MicroPython."""
    with open(cmd[0], "rb") as f:
        first = f.readline()
    if first.startswith(b"#!"):
        return first[2:].decode().split() + cmd
    return cmd


def main(argv: list[str]) -> int:
    mode, outdir, cmd = argv[0], Path(argv[1]), list(argv[2:])
    if mode not in ("probe", "plain", "callgrind"):
        print(f"launch.py: unknown mode {mode!r}", file=sys.stderr)
        return 2
    os.environ["BENCH_SIM_BOOT"] = cmd[-1]
    cmd[-1] = str(PROBE)
    runtime = os.environ.get("BENCH_RUNTIME_MPY")
    if runtime:
        os.environ["MICROPYPATH"] = runtime
    os.environ["BENCH_HEAP"] = "1" if mode == "probe" else "0"
    if mode != "callgrind":
        os.execv(cmd[0], cmd)
    vg = ["valgrind", "--tool=callgrind", "--toggle-collect=main_",
          f"--callgrind-out-file={outdir}/callgrind.%p", f"--log-file={outdir}/valgrind.%p.log"]
    child = subprocess.Popen(vg + _interpreter(cmd), close_fds=False, start_new_session=True)
    with open(outdir / "pids", "a") as f:
        f.write(f"{child.pid}\n")
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
