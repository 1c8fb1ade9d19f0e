# MicroPython, inside a simulated node that the bench measures: runs the simulator's
# sim_boot.py unchanged, with three instruments around it (bench/launch.sh starts it):
#
# - BENCH_HEAP=1: before each request to the simulator, gc.collect() and note the heap
#   in use (gc.mem_alloc()); the peak of those samples is the wake's peak live heap at a
#   hardware-access boundary. Printed as one "[bench] heap ..." console line before the
#   deep sleep request.
# - machine.lightsleep() sends its sleep request tagged "light", so the bench can tell a
#   light sleep from a busy wait (node.py reads only the first argument).
# - at deep sleep (or the REPL) the interpreter exits after sending the request instead
#   of waiting to be killed, so that valgrind writes its profile.
import gc
import sys
import uos
import vfs

if uos.getenv("SIM_RUNTIME_MAP"):
    # The board's runtime from its ROM image, as sim_boot.py mounts it (before the wire
    # is imported here).
    import uctypes
    _addr, _len = uos.getenv("SIM_RUNTIME_MAP").split(":")
    vfs.mount(vfs.VfsRom(uctypes.bytearray_at(int(_addr), int(_len))), "/_board")
    sys.path.insert(0, "/_board")
    del uctypes, _addr, _len
import os

import micropython
import _simlink

_source = None
if "/_board" not in sys.path:
    # Read now: sim_boot.py unmounts the host filesystem. (From a runtime image it is
    # imported instead: no source on the heap, nothing to compile.)
    with open(os.getenv("BENCH_SIM_BOOT")) as _f:
        _source = _f.read()
_sample = os.getenv("BENCH_HEAP") == "1"
_peak = 0
_call = _simlink.call


def _measure():
    global _peak
    gc.collect()
    used = gc.mem_alloc()
    if used > _peak:
        _peak = used


def _sampled_call(*req):
    _measure()
    return _call(*req)


def _exit_after(*req):
    if _sample:
        _measure()
        print("[bench] heap peak=%d free=%d total_alloc=%d" %
              (_peak, gc.mem_free(), micropython.mem_total()))
    _simlink._tx.write(_simlink.json.dumps(req).encode() + b"\n")
    sys.exit(0)


if _sample:
    _simlink.call = _sampled_call     # machine.py binds `call` at import: patch first
_simlink.call_no_reply = _exit_after

import machine  # noqa: E402


def _lightsleep(ms=0):
    _simlink.call("sleep", int(ms) * 1000, "light")


machine.lightsleep = _lightsleep
if _sample:
    _measure()
    print("[bench] heap base=%d" % _peak)
if _source is None:
    import sim_boot  # noqa: E402,F401  (the boot runs as it is imported)
else:
    exec(_source, {"__name__": "__main__"})
