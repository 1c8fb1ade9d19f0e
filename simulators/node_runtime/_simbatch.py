# MicroPython, inside the simulated node: the batched wire (fleet runs, SIM_BATCH=1).
#
# The same requests and the same answers as _simlink's one-line-per-request wire, with
# fewer round trips. Every reply carries the virtual clock and a horizon: the instant
# before which nothing can change on the simulator's side (its next scheduled event,
# a planned power cut, the watchdog's deadline). Until the node's time reaches the
# horizon, this side answers what the simulator would have answered:
#   - "now" and "rtc" from the clock of the last reply plus the sleeps since;
#   - "sleep" and "wdt_feed" are kept, in order, and sent in front of the next
#     request that needs an answer (a sleep that would reach the horizon goes at once);
#   - "uart_any" repeats the last answer for that UART (bytes only arrive by events).
# The simulator applies kept requests in order before the one that needs the answer,
# so each takes effect at the same virtual instant as on the plain wire.
#
# In a warm interpreter (sim_warm.py: many wakes in one process) the simulator ends a
# wake by answering {"end": how}; from then on every request raises WakeOver, which no
# `except Exception` of the firmware catches, so nothing after the end reaches the
# simulator, as nothing runs on a board after deep sleep.
import json

_FAR = 1 << 62
_KEEP_MAX = 4096          # send kept sleeps now and then, so a spinning node still moves
_RTC_EPOCH = 946684800    # the board's epoch, 2000-01-01

_rx = None
_tx = None
_err = None
_now = 0
_horizon = -1             # nothing is known before the first reply
_slept = 0                # µs of kept sleeps
_kept = []
_any = {}
_epoch = None             # Clock.epoch_s when it is a whole number (then rtc is exact here)
_over = False


class WakeOver(BaseException):
    """The simulator ended this wake (deep sleep, reset, watchdog, power cut)."""


def bind(rx, tx, err):
    global _rx, _tx, _err
    _rx, _tx, _err = rx, tx, err
    return call, call_no_reply


def _send(req):
    global _kept
    if _kept:
        _kept.append(req)
        line = json.dumps(_kept)
        _kept = []
    else:
        line = json.dumps(req)
    _tx.write(line.encode() + b"\n")


def _ended():
    global _over
    _over = True
    raise WakeOver()


def call(*req):
    global _now, _horizon, _slept, _epoch
    if _over:
        raise WakeOver()
    op = req[0]
    t = _now + _slept
    if t < _horizon:
        if op == "now":
            return t
        if op == "sleep":
            if t + req[1] < _horizon and len(_kept) < _KEEP_MAX:
                _slept += req[1]
                _kept.append(req)
                return None
        elif op == "uart_any":
            n = _any.get(req[1])
            if n is not None:
                return n
        elif op == "rtc":
            if _epoch is not None:
                # The simulator's float expression, so the microseconds agree exactly.
                return int(((_epoch + t / 1e6) - _RTC_EPOCH) * 1e6)
        elif op == "wdt_feed":
            _kept.append(req)
            return None
    _send(req)
    line = _rx.readline()
    if not line:
        # The simulator closed the wire: this process is being powered off.
        while True:
            _rx.readline()
    reply = json.loads(line)
    if isinstance(reply, dict):
        _ended()
    value, _now, h = reply
    _horizon = _FAR if h is None else h
    _slept = 0
    _any.clear()
    if isinstance(value, dict):
        if "err" in value:
            err = value["err"]
            if isinstance(err, int):
                raise OSError(err)
            raise _err(err)
        if op == "board":
            _epoch = value.get("epoch_s")
    if op == "uart_any":
        _any[req[1]] = value
    return value


def call_no_reply(*req):
    # For requests after which the board stops running (deep sleep, reset): a process of
    # its own is killed; a warm interpreter gets the end of the wake.
    if _over:
        raise WakeOver()
    _send(req)
    if not _rx.readline():
        while True:
            pass
    _ended()
