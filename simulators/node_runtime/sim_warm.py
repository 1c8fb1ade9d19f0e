# MicroPython, run by the simulator's fleet runner: many wakes in one interpreter, each
# from a clean soft reset.
#
# A board coming out of deep sleep keeps its flash and its RTC memory (both held by the
# simulator) and nothing else. Between wakes this loop therefore does what a soft reset
# of MicroPython does and more: it unmounts the node's flash, drops every module the
# wake imported (the firmware, and `machine`, `time` and the wire, which hold the board's
# identity), restores sys.path and the working directory, and collects the heap. The
# next wake, of this node or another, boots by running sim_boot.py, the same code a
# process per wake runs, in fresh globals: it mounts that node's flash image at /, its
# firmware at /rom, and runs boot.py and main.py. Only sim_boot.py's compiled code is
# kept from one wake to the next; code holds no state.
#
# The wire is the batched one (_simbatch.py): the simulator ends a wake by answering
# {"end": how}, which raises WakeOver, a BaseException the firmware's `except Exception`
# cannot catch. Output printed after that point is not the node's: the simulator reads
# the console only up to the end of the wake and waits for ["ready"] before the next.
#
#   host -> here: ["wake", FLASH_IMAGE, ROM or null]
#                 ["image", FLASH_IMAGE, STAGING_FOLDER, KEEP]: fill an image as
#                 sim_image.py does (format unless KEEP, copy the folder in)
#   here -> host: ["ready"] at start-up and once a wake is cleared away;
#                 ["done"] or ["failed", reason] for an image
# A command comes as the simulator's replies do (_simlink.py: length, then JSON); one
# line answers each, so the host never has two lines to read at once.
#   SIM_BOOT: the source of sim_boot.py (this folder holds it compiled only).
#   SIM_ROM, SIM_ROM_MAP: the ROMFS image the launcher mapped (simulators/romfs.py).
import gc
import json
import os
import sys
import vfs

_rx = open("/dev/fd/" + os.getenv("SIM_RX_FD"), "rb")
_tx = open("/dev/fd/" + os.getenv("SIM_TX_FD"), "wb")
_KEEP = set(sys.modules)
_PATH = list(sys.path)
_CWD = os.getcwd()
_HOST_ROOT = vfs.VfsPosix()
_MAPPED = os.getenv("SIM_ROM")
_MAP = os.getenv("SIM_ROM_MAP")
with open(os.getenv("SIM_BOOT")) as _f:
    _BOOT = compile(_f.read(), "sim_boot.py", "exec")
del _f


def _command():
    head = _rx.read(8)
    if len(head) < 8:
        return None
    return json.loads(_rx.read(int(head)))


def _setenv(name, value):
    if value:
        os.putenv(name, value)
    else:
        os.unsetenv(name)


def _wake(flash, rom):
    _setenv("SIM_FLASH", flash)
    _setenv("SIM_ROM", rom)
    _setenv("SIM_ROM_MAP", _MAP if rom and rom == _MAPPED else None)
    g = {"__name__": "sim_boot"}
    try:
        exec(_BOOT, g)
    except BaseException as e:  # noqa: BLE001 - only the end of the wake is expected here
        wire = sys.modules.get("_simbatch")
        if wire is None or not isinstance(e, wire.WakeOver):
            raise
    finally:
        wire = sys.modules.get("_simbatch")
        if wire is not None:
            wire._over = True          # whatever runs from here on cannot reach the simulator
            if wire._image is not None:
                wire._image.close()
        if "_bdev" in g:
            g["_bdev"]._f.close()
        link = sys.modules.get("_simlink")
        if link is not None:
            link._rx.close()
            link._tx.close()


def _copy(src, dst):
    for name in os.listdir(src):
        s = src + "/" + name
        d = dst + "/" + name
        if os.stat(s)[0] & 0x4000:
            try:
                os.mkdir(d)
            except OSError:
                pass
            _copy(s, d)
        else:
            with open(s, "rb") as fi, open(d, "wb") as fo:
                fo.write(fi.read())


def _image(image, staging, keep):
    from _simflash import FlashBlockDevice, PROG_SIZE
    bdev = FlashBlockDevice(image)
    try:
        if not keep:
            vfs.VfsLfs2.mkfs(bdev, progsize=PROG_SIZE)
        vfs.mount(vfs.VfsLfs2(bdev, progsize=PROG_SIZE), "/flash")
        try:
            _copy(staging, "/flash")
        finally:
            vfs.umount("/flash")
    finally:
        bdev._f.close()


def _clear():
    for _fs, mount in vfs.mount():      # whatever the wake mounted: /rom, the flash at /
        vfs.umount(mount)
    vfs.mount(_HOST_ROOT, "/")
    os.chdir(_CWD)
    sys.path[:] = _PATH
    for name in list(sys.modules):
        if name not in _KEEP:
            del sys.modules[name]
    gc.collect()


_tx.write(b'["ready"]\n')
while True:
    cmd = _command()
    if cmd is None:
        break
    if cmd[0] == "image":
        try:
            _image(cmd[1], cmd[2], cmd[3])
            _tx.write(b'["done"]\n')
        except Exception as e:
            _tx.write(json.dumps(["failed", "%s: %s" % (type(e).__name__, e)]).encode() + b"\n")
        continue
    if cmd[0] != "wake":
        raise SystemExit("sim_warm: unknown command %r" % cmd[0])
    try:
        _wake(cmd[1], cmd[2])
    finally:
        _clear()
    _tx.write(b'["ready"]\n')
