# MicroPython, the first code a simulated node runs: the simulator's stand-in for a
# board's ROM and frozen _boot.py.
#
# As the rp2 port's _boot.py does, it mounts the littlefs filesystem of the flash at
# "/" (formatting it if it cannot be mounted), then runs boot.py and main.py from the
# flash. The host filesystem is unmounted first, so the firmware sees only its flash.
import sys
import uos
import vfs

if uos.getenv("SIM_RUNTIME_MAP") and "/_board" not in sys.path:
    # machine, time, os and the wire stand in for a board's C modules: compiled into an
    # image that the launcher mapped outside the heap (simulators/romfs.py), their code
    # takes no heap, as a board's built-in modules take none.
    import uctypes
    _addr, _len = uos.getenv("SIM_RUNTIME_MAP").split(":")
    vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(_addr), int(_len))), "/_board")
    sys.path.insert(0, "/_board")
    del uctypes, _addr, _len
import os

import _simlink
import machine  # noqa: F401  (imported now: it lives on the host filesystem)
import time  # noqa: F401
from _simflash import FlashBlockDevice, PROG_SIZE

_bdev = FlashBlockDevice(os.getenv("SIM_FLASH"), _simlink)
# The ports mount with littlefs's 32-byte reads. A warm interpreter (sim_warm.py) asks
# for 1024 (SIM_READSIZE): fewer, larger reads of the image, each a Python call here.
# The filesystem stays the same (its layout follows the block and program sizes; inline
# files stay at most 512 bytes, an eighth of a block), and so do the programs and erases.
_read = int(os.getenv("SIM_READSIZE") or 32)
try:
    _fs = vfs.VfsLfs2(_bdev, readsize=_read, progsize=PROG_SIZE)
except OSError:
    vfs.VfsLfs2.mkfs(_bdev, readsize=_read, progsize=PROG_SIZE)
    _fs = vfs.VfsLfs2(_bdev, readsize=_read, progsize=PROG_SIZE)
vfs.umount("/")
vfs.mount(_fs, "/")
os.chdir("/")
sys.path[:] = ["", ".frozen", "/lib"]
del _fs, _read
if os.getenv("SIM_ROM"):
    # A board that keeps its firmware in a ROMFS partition: the ports' _boot.py mounts
    # it at /rom and puts /rom first on the path (MicroPython docs/reference/romfs.rst).
    # An image is mapped outside the heap by the launcher (simulators/romfs.py), as a
    # board maps its partition, and its .mpy files import in place; a folder of the same
    # .mpy files is mounted read-only instead (imported into the heap).
    _map = os.getenv("SIM_ROM_MAP")
    if _map:
        import uctypes
        _addr, _len = _map.split(":")
        vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(_addr), int(_len))), "/rom")
        del uctypes, _addr, _len
    else:
        vfs.mount(vfs.VfsPosix(os.getenv("SIM_ROM")), "/rom", readonly=True)
    del _map
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
