# MicroPython, the first code a simulated node runs: the simulator's stand-in for a
# board's ROM and frozen _boot.py.
#
# As the rp2 port's _boot.py does, it mounts the littlefs filesystem of the flash at
# "/" (formatting it if it cannot be mounted), then runs boot.py and main.py from the
# flash. The host filesystem is unmounted first, so the firmware sees only its flash.
import os
import sys
import vfs

import _simlink
import machine  # noqa: F401  (imported now: it lives on the host filesystem)
import time  # noqa: F401
from _simflash import FlashBlockDevice, PROG_SIZE

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
if os.getenv("SIM_ROM"):
    # A board that keeps its firmware in a ROMFS partition: the ports' _boot.py mounts
    # it at /rom and puts /rom first on the path (MicroPython docs/reference/romfs.rst).
    # Here the partition is a read-only host folder of the same .mpy files.
    vfs.mount(vfs.VfsPosix(os.getenv("SIM_ROM")), "/rom", readonly=True)
    sys.path.insert(0, "/rom")


def _run(name):
    try:
        os.stat(name)
    except OSError:
        return True
    try:
        # Closed before it runs: this build runs no finalisers, and a file object the GC
        # frees while open leaves littlefs's open-file list pointing into freed memory.
        with open(name) as f:
            code = f.read()
        exec(code, {"__name__": "__main__"})
        return True
    except KeyboardInterrupt:
        return False
    except Exception as e:
        sys.print_exception(e)
        return False


if _run("boot.py"):
    _run("main.py")
# main.py returned or failed: a board now sits at the REPL until something resets it.
_simlink.call_no_reply("repl")
