# MicroPython, inside the simulated node's process: the wire to the simulator.
#
# Every hardware access of `machine` and every clock read or wait of `time` becomes one
# request line (JSON) on a pipe to the CPython simulator, which answers with one line.
# The simulator owns the virtual clock and all part models; this side holds no state
# that a real board would not lose on reset.
import json
import os

_rx = open("/dev/fd/" + os.getenv("SIM_RX_FD"), "rb")
_tx = open("/dev/fd/" + os.getenv("SIM_TX_FD"), "wb")


class SimError(Exception):
    pass


def call(*req):
    _tx.write(json.dumps(req).encode() + b"\n")
    line = _rx.readline()
    if not line:
        # The simulator closed the wire: this process is being powered off.
        while True:
            _rx.readline()
    reply = json.loads(line)
    if isinstance(reply, dict) and "err" in reply:
        err = reply["err"]
        if isinstance(err, int):
            raise OSError(err)
        raise SimError(err)
    return reply


def call_no_reply(*req):
    # For requests after which the board stops running (deep sleep, reset).
    _tx.write(json.dumps(req).encode() + b"\n")
    while True:
        if not _rx.readline():
            while True:
                pass


if os.getenv("SIM_BATCH") == "1":
    # Fleet runs: the same answers with fewer round trips (_simbatch.py).
    import _simbatch
    call, call_no_reply = _simbatch.bind(_rx, _tx, SimError)
