# MicroPython, inside a virtual board's interpreter: the wire to the simulator, with a
# sequence number on every request.
#
# A simulated wake never sees Ctrl-C, but a virtual board does: the host delivers it as
# SIGINT, which MicroPython's unix port raises as KeyboardInterrupt wherever the code is,
# possibly while a request waits for its answer. The number lets the next call skip an
# answer that was not its own, and a "kbd" notice tells the host which request was
# given up. Importing this
# module replaces _simlink's two calls, so it must come before `machine` and `time`
# (machine.py binds `call` when it is imported).
import json

import _simlink

_seq = 0


def call(*req):
    global _seq
    _seq += 1
    seq = _seq
    _simlink._tx.write(_simlink.line([seq] + list(req)))
    try:
        while True:
            line = _simlink._rx.readline()
            if not line:
                # The simulator closed the wire: the board is being powered off.
                while True:
                    _simlink._rx.readline()
            reply = json.loads(line)
            if reply[0] == seq:
                break
    except KeyboardInterrupt:
        # Tell the host this request was given up, so it stops serving it (e.g. a
        # sleep it had not started yet when the Ctrl-C came).
        _simlink._tx.write(_simlink.line([0, "kbd", seq]))
        raise
    value = reply[1]
    if isinstance(value, dict) and "err" in value:
        err = value["err"]
        if isinstance(err, int):
            raise OSError(err)
        raise _simlink.SimError(err)
    return value


def call_no_reply(*req):
    # For requests after which the board stops running (deep sleep, reset).
    global _seq
    _seq += 1
    _simlink._tx.write(_simlink.line([_seq] + list(req)))
    while True:
        if not _simlink._rx.readline():
            while True:
                pass


_simlink.call = call
_simlink.call_no_reply = call_no_reply
