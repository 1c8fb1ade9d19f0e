# MicroPython, inside the simulated node's process: the wire to the simulator.
#
# Every hardware access of `machine` and every clock read or wait of `time` becomes one
# request line (JSON) on a pipe to the CPython simulator, which answers with one reply:
# eight ASCII digits giving its length, then the JSON. The length lets a reply be read
# with two reads; a line would be read a byte at a time (this build's files have no
# buffer), one system call per byte.
# The simulator owns the virtual clock and all part models; this side holds no state
# that a real board would not lose on reset.
import io
import json
import os

_rx = open("/dev/fd/" + os.getenv("SIM_RX_FD"), "rb")
_tx = open("/dev/fd/" + os.getenv("SIM_TX_FD"), "wb")


class SimError(Exception):
    pass


_head = bytearray(8)
_spill = memoryview(bytearray(64))


def receive():
    """The next reply, as bytes. When the simulator has closed the wire this process
    is being powered off: it waits here to be killed. A reply the heap cannot hold is
    read all the same (MemoryError), so that the next one is read whole."""
    if _rx.readinto(_head) == 8:
        n = 0
        for c in _head:
            n = n * 10 + c - 48
        try:
            return _rx.read(n)
        except MemoryError:
            while n > 0:
                n -= _rx.readinto(_spill[:min(n, 64)])
            raise
    while True:
        _rx.readinto(_head)


def line(obj):
    """obj as one JSON line, in bytes. json.dump into a buffer, not json.dumps: every new
    str MicroPython makes is first looked up among the interned strings, one by one
    through the ~1,500 the firmware's modules add (py/objstr.c), which made the wire's
    JSON an eighth of a wake's instructions."""
    buf = io.BytesIO()
    json.dump(obj, buf)
    buf.write(b"\n")
    return buf.getvalue()


def call(*req):
    _tx.write(line(req))
    reply = json.loads(receive())
    if isinstance(reply, dict) and "err" in reply:
        err = reply["err"]
        if isinstance(err, int):
            raise OSError(err)
        raise SimError(err)
    return reply


def call_no_reply(*req):
    # For requests after which the board stops running (deep sleep, reset).
    _tx.write(line(req))
    receive()
    while True:
        pass


if os.getenv("SIM_BATCH") in ("1", "2"):
    # Fleet runs: the same answers with fewer round trips (_simbatch.py).
    import _simbatch
    call, call_no_reply = _simbatch.bind(_rx, _tx, SimError, receive, line,
                                         os.getenv("SIM_BATCH") == "2")
