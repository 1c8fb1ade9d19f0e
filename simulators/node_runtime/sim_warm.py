# MicroPython, run by the simulator's fleet runner: many wakes in one interpreter, each
# from a clean soft reset.
#
# A board coming out of deep sleep keeps its flash and its RTC memory (both held by the
# simulator) and nothing else. Between wakes this loop therefore does what a soft reset
# of MicroPython does and more: it unmounts the node's flash, drops every module the
# wake imported (the firmware, and `machine`, `time` and the wire, which hold the board's
# identity), restores sys.path and the working directory, and collects the heap. The
# next wake, of this node or another, boots exactly as sim_boot.py does: mounts that
# node's flash image at /, its firmware folder at /rom, and runs boot.py and main.py.
#
# The wire is the batched one (_simbatch.py): the simulator ends a wake by answering
# {"end": how}, which raises WakeOver, a BaseException the firmware's `except Exception`
# cannot catch. Output printed after that point is not the node's: the simulator reads
# the console only up to the end of the wake and waits for ["ready"] before the next.
#
#   host -> here: ["wake", FLASH_IMAGE, ROM_FOLDER or null]
#                 ["image", FLASH_IMAGE, STAGING_FOLDER, KEEP]: fill an image as
#                 sim_image.py does (format unless KEEP, copy the folder in)
#   here -> host: ["ready"] at start-up and once a wake is cleared away;
#                 ["done"] or ["failed", reason] for an image
# One line answers each command, so the host never has two lines to read at once.
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


def _wake(flash, rom):
    # The runtime modules come from the host's folders, so they are imported while the
    # host filesystem is still mounted, as sim_boot.py does.
    import _simlink
    import _simbatch
    import machine  # noqa: F401
    import time  # noqa: F401
    from _simflash import FlashBlockDevice, PROG_SIZE

    bdev = FlashBlockDevice(flash, _simlink)
    # readsize 256 instead of the ports' 32: fewer, larger reads of the image, each a
    # Python call here. The filesystem on flash and every program and erase stay the
    # same: littlefs's caches are 4 x max(readsize, progsize) = 1 KiB either way.
    try:
        try:
            fs = vfs.VfsLfs2(bdev, readsize=256, progsize=PROG_SIZE)
        except OSError:
            vfs.VfsLfs2.mkfs(bdev, progsize=PROG_SIZE)
            fs = vfs.VfsLfs2(bdev, readsize=256, progsize=PROG_SIZE)
        vfs.umount("/")
        vfs.mount(fs, "/")
        os.chdir("/")
        sys.path[:] = ["", ".frozen", "/lib"]
        del fs
        if rom:
            vfs.mount(vfs.VfsPosix(rom), "/rom", readonly=True)
            sys.path.insert(0, "/rom")
        if _run("boot.py"):
            _run("main.py")
        _simlink.call_no_reply("repl")
    except _simbatch.WakeOver:
        pass
    finally:
        _simbatch._over = True          # whatever runs from here on cannot reach the simulator
        bdev._f.close()
        _simlink._rx.close()
        _simlink._tx.close()


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
    for mount in ("/rom", "/"):
        try:
            vfs.umount(mount)
        except OSError:
            pass
    vfs.mount(_HOST_ROOT, "/")
    os.chdir(_CWD)
    sys.path[:] = _PATH
    for name in list(sys.modules):
        if name not in _KEEP:
            del sys.modules[name]
    gc.collect()


_tx.write(b'["ready"]\n')
while True:
    line = _rx.readline()
    if not line:
        break
    cmd = json.loads(line)
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
