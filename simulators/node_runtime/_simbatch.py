# MicroPython, inside the simulated node: the batched wire (fleet runs, SIM_BATCH=1).
#
# The same requests and the same answers as _simlink's one-line-per-request wire, with
# fewer round trips. Every reply carries the virtual clock, a horizon (the instant
# before which nothing can change on the simulator's side: its next scheduled event, a
# planned power cut, the watchdog's deadline) and what waits in each UART's receive
# buffer. This side answers what the simulator would have answered where it can know it:
#   - "now" and "rtc": the clock of the last reply plus the waits kept since (the clock
#     moves only while the node waits);
#   - "reset_cause" and "wake_reason": the same for the whole wake (the board's answer
#     carries them), and on RP2040 the watchdog's scratch registers, which only the
#     node writes while it runs;
#   - requests whose answer is fixed ("pin_init", "pin_set", "pin_irq", "wdt_feed",
#     "mem32_set" of a scratch register; "uart_init"/"uart_write" on a UART that was set
#     up in this wake) are kept;
#   - "sleep" and "lightsleep" are kept while they end before the horizon;
#   - "uart_any" and "uart_read" come from the receive buffer as the last reply had it:
#     bytes only arrive by events, so before the horizon the buffer changes only by
#     the node's own reads, and a read that would wait for more bytes waits its whole
#     timeout and gets none. A UART write may schedule events (the device answers), so
#     after one only what takes no time is answered here until the next reply.
# Kept requests go, in order, in front of the next request that needs an answer; the
# simulator applies them in order before it, so each takes effect at the same virtual
# instant as on the plain wire, with the same result. With SIM_BATCH=2 (tests) every
# answer given here goes too, as ["=", answer, request...], and the simulator checks it.
#
# In a warm interpreter (sim_warm.py: many wakes in one process) the simulator ends a
# wake by answering {"end": how}; from then on every request raises WakeOver, which no
# `except Exception` of the firmware catches, so nothing after the end reaches the
# simulator, as nothing runs on a board after deep sleep.
import json
from binascii import hexlify, unhexlify

_FAR = 1 << 62
_KEEP_MAX = 64            # kept requests go at the latest with this many (the heap is small)
_RTC_EPOCH = 946684800    # the board's epoch, 2000-01-01
_FIXED = {"pin_init": None, "pin_set": None, "pin_irq": None, "wdt_feed": None}
_WAITS = ("sleep", "lightsleep")
_SCRATCH = (0x4005800C, 0x40058010, 0x40058014, 0x40058018)   # RP2040 watchdog SCRATCH0..3

_rx = None
_tx = None
_err = None
_receive = None
_check = False
_now = 0
_horizon = -1             # nothing is known before the first reply
_slept = 0                # µs of kept waits
_kept = []
_stirred = False          # a kept request may have scheduled events (a UART write)
_uarts = set()            # UARTs set up in this wake (their init and writes cannot fail)
_links = ()               # the board's UARTs
_rxb = {}                 # UART -> its receive buffer at the last reply
_rxp = {}                 # UART -> how much of it the node has read since
_cause = None
_wake = None
_scratch = None           # RP2040: address -> value
_epoch = None             # Clock.epoch_s when it is a whole number (then rtc is exact here)
_over = False


class WakeOver(BaseException):
    """The simulator ended this wake (deep sleep, reset, watchdog, power cut)."""


def bind(rx, tx, err, receive, check=False):
    global _rx, _tx, _err, _receive, _check, _KEEP_MAX
    _rx, _tx, _err, _receive, _check = rx, tx, err, receive, check
    if check:
        _KEEP_MAX = 16          # checked entries are larger
    return call, call_no_reply


def _send(req):
    global _kept
    if _kept:
        _kept.append(req)
        try:
            line = json.dumps(_kept).encode()
        except MemoryError:
            _kept.pop()         # the firmware sees the error; the kept requests still go
            raise
        _kept = []
    else:
        line = json.dumps(req).encode()
    _tx.write(line + b"\n")


def _ended():
    global _over
    _over = True
    raise WakeOver()


def _take(u, n):
    """n bytes of UART u's buffer, as the simulator's answer has them (hex)."""
    p = _rxp[u]
    _rxp[u] = p + n
    return hexlify(_rxb[u][p:p + n]).decode()


def _read(req, t):
    """(True, answer) for a uart_read the buffer can answer, else (False, None). See
    SimNode._uart: a read waits up to its timeout for what it needs, then takes what
    there is; a line read takes up to a newline, and waits when there is none."""
    u, n, wait = req[1], req[2], req[3] * 1000
    if u not in _rxb:
        return False, None
    have = len(_rxb[u]) - _rxp[u]
    if req[5]:
        nl = _rxb[u].find(b"\n", _rxp[u])
        if nl >= 0:
            return True, _take(u, nl + 1 - _rxp[u])
    elif have >= (n if n > 0 else 1):
        return True, _take(u, n if n > 0 else have)
    if _stirred or t + wait >= _horizon:
        return False, None
    _wait(wait)
    if not have:
        return True, None
    return True, _take(u, have if req[5] or n <= 0 else min(n, have))


def _wait(us):
    global _slept
    _slept += us


def _local(req):
    """(True, answer) when this side knows the simulator's answer, else (False, None)."""
    global _stirred
    op = req[0]
    t = _now + _slept
    if op == "now":
        return True, t
    if op in _FIXED:
        return True, None
    if op == "reset_cause" and _cause is not None:
        return True, _cause
    if op == "wake_reason" and _wake is not None:
        return True, _wake
    if op == "rtc" and _epoch is not None:
        # The simulator's float expression, so the microseconds agree exactly.
        return True, int(((_epoch + t / 1e6) - _RTC_EPOCH) * 1e6)
    if op in ("uart_write", "uart_init") and req[1] in _uarts:
        _stirred = True
        return True, len(req[2]) // 2 if op == "uart_write" else None
    if _scratch is not None and op in ("mem32_get", "mem32_set") and req[1] in _scratch:
        if op == "mem32_get":
            return True, _scratch[req[1]]
        _scratch[req[1]] = req[2] & 0xFFFFFFFF
        return True, None
    if t >= _horizon:
        return False, None
    if op == "uart_any":
        if req[1] in _rxb:
            return True, len(_rxb[req[1]]) - _rxp[req[1]]
    elif op == "uart_read":
        return _read(req, t)
    elif op in _WAITS and not _stirred and t + req[1] < _horizon:
        _wait(req[1])
        return True, None
    return False, None


# Answered here without the simulator doing anything: sent only to be checked.
_PURE = ("now", "rtc", "reset_cause", "wake_reason", "uart_any", "mem32_get")


def call(*req):
    global _now, _horizon, _slept, _stirred, _epoch, _cause, _wake, _scratch, _links
    if _over:
        raise WakeOver()
    if _horizon >= 0 and len(_kept) < _KEEP_MAX:
        known, value = _local(req)
        if known:
            if _check:
                _kept.append(["=", value] + list(req))
            elif req[0] not in _PURE:
                _kept.append(req)
            return value
    op = req[0]
    _send(req)
    reply = json.loads(_receive())
    if isinstance(reply, dict):
        _ended()
    value, _now, h = reply[0], reply[1], reply[2]
    _horizon = _FAR if h is None else h
    _slept = 0
    _stirred = False
    for u in _links:
        _rxb[u] = b""
        _rxp[u] = 0
    if len(reply) > 3:
        for u, data in reply[3]:
            _rxb[u] = unhexlify(data)
    if isinstance(value, dict):
        if "err" in value:
            err = value["err"]
            if isinstance(err, int):
                raise OSError(err)
            raise _err(err)
        if op == "board":
            _epoch = value.get("epoch_s")
            _cause = value.get("reset_cause")
            _wake = value.get("wake_reason")
            _links = value.get("uarts", ())
            if "scratch" in value:
                _scratch = dict(zip(_SCRATCH, value["scratch"]))
    if op == "uart_init":
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
    _receive()
    _ended()
