# MicroPython, inside the simulated node: the batched wire (fleet runs, SIM_BATCH=1).
#
# The same requests and the same answers as _simlink's one-line-per-request wire, with
# fewer round trips. Every reply carries the virtual clock and a horizon: the instant
# before which nothing can change on the simulator's side (its next scheduled event,
# a planned power cut, the watchdog's deadline). This side answers what the simulator
# would have answered where it can know it:
#   - "now" and "rtc": the clock of the last reply plus the sleeps kept since (the
#     clock moves only while the node waits);
#   - "reset_cause": the same for the whole wake;
#   - requests whose answer is fixed ("pin_init", "pin_set", "pin_irq", "wdt_feed"; and
#     "uart_init"/"uart_write" on a UART that was set up in this wake) are kept;
#   - "sleep" and "lightsleep" are kept while they end before the horizon;
#   - "uart_any" repeats the last answer for that UART until the horizon (bytes only
#     arrive by events), unless a kept request may have scheduled some (a UART write).
# Kept requests go, in order, in front of the next request that needs an answer; the
# simulator applies them in order before it, so each takes effect at the same virtual
# instant as on the plain wire, with the same result.
#
# In a warm interpreter (sim_warm.py: many wakes in one process) the simulator ends a
# wake by answering {"end": how}; from then on every request raises WakeOver, which no
# `except Exception` of the firmware catches, so nothing after the end reaches the
# simulator, as nothing runs on a board after deep sleep.
import json

_FAR = 1 << 62
_KEEP_MAX = 4096          # send kept sleeps now and then, so a spinning node still moves
_RTC_EPOCH = 946684800    # the board's epoch, 2000-01-01
_FIXED = {"pin_init": None, "pin_set": None, "pin_irq": None, "wdt_feed": None}
_WAITS = ("sleep", "lightsleep")

_rx = None
_tx = None
_err = None
_now = 0
_horizon = -1             # nothing is known before the first reply
_slept = 0                # µs of kept sleeps
_kept = []
_stirred = False          # a kept request may have scheduled events (a UART write)
_any = {}
_uarts = set()            # UARTs set up in this wake (their init and writes cannot fail)
_cause = None
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


def _local(req):
    """(True, answer) when this side knows the simulator's answer, else (False, None)."""
    global _slept, _stirred
    op = req[0]
    t = _now + _slept
    if op == "now":
        return True, t
    if op in _FIXED:
        _kept.append(req)
        return True, None
    if op == "reset_cause" and _cause is not None:
        return True, _cause
    if op == "rtc" and _epoch is not None:
        # The simulator's float expression, so the microseconds agree exactly.
        return True, int(((_epoch + t / 1e6) - _RTC_EPOCH) * 1e6)
    if op in ("uart_write", "uart_init") and req[1] in _uarts:
        _kept.append(req)
        _stirred = True
        return True, len(req[2]) // 2 if op == "uart_write" else None
    if _stirred or t >= _horizon or len(_kept) >= _KEEP_MAX:
        return False, None
    if op in _WAITS:
        if t + req[1] < _horizon:
            _slept += req[1]
            _kept.append(req)
            return True, None
    elif op == "uart_any":
        n = _any.get(req[1])
        if n is not None:
            return True, n
    return False, None


def call(*req):
    global _now, _horizon, _slept, _stirred, _epoch, _cause
    if _over:
        raise WakeOver()
    if _horizon >= 0:
        known, value = _local(req)
        if known:
            return value
    op = req[0]
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
    _stirred = False
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
    elif op == "uart_init":
        _uarts.add(req[1])
    elif op == "reset_cause":
        _cause = value
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
