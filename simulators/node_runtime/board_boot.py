# MicroPython, the first code a virtual board runs (simulators/board): its ROM and
# frozen _boot.py, boot.py and main.py from the flash, then its REPL.
#
# As sim_boot.py does for a simulated wake, it mounts the littlefs filesystem of the
# flash at "/" (formatting it if it cannot be mounted, as the rp2 port's _boot.py does)
# and unmounts the host's. main.py runs only when the board boots into the friendly
# REPL, as in MicroPython's ports (ports/*/main.c: a soft reset from the raw REPL skips
# it), and in the board's __main__ globals, which the REPL then shares. The interpreter
# stays after main.py: repl_worker.py executes what the REPL hands it.
#   SIM_BOARD_MAIN=1: run main.py; 0: go straight to the REPL.
import os
import sys
import vfs

import board_link
import _simlink
import machine  # noqa: F401  (imported now: it lives on the host filesystem)
import time  # noqa: F401
import repl_worker
from _simflash import FlashBlockDevice, PROG_SIZE

_call = board_link.call
_call("hello", sys.version)
_bdev = FlashBlockDevice(os.getenv("SIM_FLASH"), _simlink)
try:
    _fs = vfs.VfsLfs2(_bdev, progsize=PROG_SIZE)
except OSError:
    vfs.VfsLfs2.mkfs(_bdev, progsize=PROG_SIZE)
    _fs = vfs.VfsLfs2(_bdev, progsize=PROG_SIZE)
vfs.umount("/")
vfs.mount(_fs, "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]
del _fs


def _run_file(name, g):
    """pyexec_file_if_exists(): True if the board goes on (no file counts as success)."""
    try:
        os.stat(name)
    except OSError:
        return True, False
    try:
        with open(name) as f:      # closed first: see sim_boot.py
            code = f.read()
        exec(compile(code, name, "exec"), g)
        return True, False
    except SystemExit:
        return False, True
    except BaseException as e:  # noqa: BLE001 - printed as the board prints it
        repl_worker.write_cooked(repl_worker.exception_text(e))
        return False, False


_g = {"__name__": "__main__"}
_exit = False
try:
    _go, _exit = _run_file("boot.py", _g)
    if _go and os.getenv("SIM_BOARD_MAIN") == "1":
        _call("main")   # from here a Ctrl-C on the console interrupts main.py
        _go, _exit = _run_file("main.py", _g)
except KeyboardInterrupt as _e:   # in the instants between the files
    repl_worker.write_cooked(repl_worker.exception_text(_e))
repl_worker.serve(_g, 0, _exit)
