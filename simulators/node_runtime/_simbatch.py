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
#     carries them), and what only the node writes while it runs: the RP2040 watchdog's
#     scratch registers and the ESP32's RTC memory;
#   - requests whose answer is fixed are kept: "pin_init", "pin_set", "pin_irq",
#     "wdt_feed", writes of scratch registers and RTC memory; "uart_init"/"uart_write"
#     on a UART that was set up in this wake; a one-byte I2C write to a part the board's
#     answer lists (`acks`: it acknowledges a register pointer in any state it is in);
#     flash programs and erases when no cut is planned inside one (`flash_cut`) and
#     before the horizon: this side applies them to the image too (as NOR flash does:
#     programming clears bits), so its later reads see them, and the simulator applies
#     them again in their place, to the same result;
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
# The heap may run out anywhere (the firmware catches MemoryError and goes on): each
# answer given here allocates what it needs before it changes anything, so a failed one
# leaves the wire as it was; a reply that could not be read leaves nothing known here
# until the next one.
#
# In a warm interpreter (sim_warm.py: many wakes in one process) the simulator ends a
# wake by answering {"end": how}; from then on every request raises WakeOver, which no
# `except Exception` of the firmware catches, so nothing after the end reaches the
# simulator, as nothing runs on a board after deep sleep.
import json
import os
from binascii import hexlify, unhexlify

_FAR = 1 << 62
_RTC_EPOCH = 946684800    # the board's epoch, 2000-01-01
_FIXED = ("pin_init", "pin_set", "pin_irq", "wdt_feed")
_WAITS = ("sleep", "lightsleep")
_SCRATCH = (0x4005800C, 0x40058010, 0x40058014, 0x40058018)   # RP2040 watchdog SCRATCH0..3
_BLOCK = 4096             # the flash's erase sector (_simflash.py)
_ERASED = b"\xff" * 256
# Answered here without the simulator doing anything: sent only to be checked.
_PURE = ("now", "rtc", "reset_cause", "wake_reason", "uart_any", "mem32_get", "rtc_memory_get")

_rx = None
_tx = None
_err = None
_receive = None
_line = None             # _simlink.line: an object as one JSON line, in bytes
_check = False
_keep_max = 64            # kept requests go at the latest with this many,
_KEEP_BYTES = 1024        # or about this long (the heap is small)
_kept_bytes = 0
_now = 0
_horizon = -1             # -1: nothing known (before the first reply)
_slept = 0                # µs of kept waits
_kept = []
_stirred = False          # a kept request may have scheduled events (a UART write)
_uarts = set()            # UARTs set up in this wake (their init and writes cannot fail)
_links = ()               # the board's UARTs
_rxb = {}                 # UART -> its receive buffer (bytes arrived so far)
_rxp = {}                 # UART -> how much of it the node has read
_arr = ()                 # [instant, UART, bytes] of deliveries due before the horizon
_ai = 0                   # how many of them have arrived
_cause = None
_wake = None
_scratch = None           # RP2040: address -> value
_rtc_memory = None        # hex, on boards whose RTC keeps memory
_acks = ()                # (bus, address) that acknowledge a one-byte write
_flash_cut = True         # a power cut may come inside a flash operation
_image = None             # the flash image, to apply kept programs and erases to
_blocks = 0
_epoch = None             # Clock.epoch_s when it is a whole number (then rtc is exact here)
_over = False


class WakeOver(BaseException):
    """The simulator ended this wake (deep sleep, reset, watchdog, power cut)."""


def bind(rx, tx, err, receive, line, check=False):
    global _rx, _tx, _err, _receive, _line, _check, _keep_max, _image, _blocks
    _rx, _tx, _err, _receive, _line, _check = rx, tx, err, receive, line, check
    if check:
        _keep_max = 16          # checked entries are larger
    if os.getenv("SIM_FLASH"):
        # Opened now: the host's files are out of reach once the flash is mounted at /.
        _image = open(os.getenv("SIM_FLASH"), "r+b")
        _blocks = _image.seek(0, 2) // _BLOCK
    return call, call_no_reply


def _send(req):
    global _kept, _kept_bytes
    if _kept:
        _kept.append(req)
        try:
            data = _line(_kept)
        except MemoryError:
            _kept.pop()         # the firmware sees the error; the kept requests still go
            raise
        _tx.write(data)
        _kept = []
        _kept_bytes = 0
    else:
        _tx.write(_line(req))


def _ended():
    global _over
    _over = True
    raise WakeOver()


def _take(u, n):
    """n bytes of UART u's buffer, as the simulator's answer has them (hex)."""
    p = _rxp[u]
    data = hexlify(_rxb[u][p:p + n]).decode()
    _rxp[u] = p + n
    return data


def _advance(t):
    """The deliveries due by t arrive (as the simulator's clock runs them)."""
    global _ai
    while _ai < len(_arr) and _arr[_ai][0] <= t:
        u = _arr[_ai][1]
        _rxb[u] = _rxb[u][_rxp[u]:] + _arr[_ai][2]
        _rxp[u] = 0
        _ai += 1


def _wait(t, us):
    global _slept
    _advance(t + us)
    _slept += us


def _read(req, t):
    """(True, answer) for a uart_read this side can answer, else (False, None).

    As SimNode._uart does it: a read waits up to its timeout until what it needs is
    there (the clock stops at the delivery that brings it), then takes what there is;
    a line read takes up to a newline, and without one waits again for more. Worked
    out on the bytes of this UART (those waiting, then its deliveries) before anything
    changes here: a wait that would reach the horizon leaves it to the simulator."""
    u, n, wait, line = req[1], req[2], req[3] * 1000, req[5]
    if u not in _rxb:
        return False, None
    have = _rxb[u][_rxp[u]:]
    later = [a for a in _arr[_ai:] if a[1] == u]
    k = 0                       # of `later`, arrived by tt
    tt = t
    took = 0
    while True:
        need = 1 if line or n <= 0 else n - took
        ready = len(have) - took >= need
        if not ready:
            # wait up to the timeout for the delivery that makes it ready
            if _stirred or tt + wait >= _horizon:
                return False, None
            deadline = tt + wait
            while not ready and k < len(later) and later[k][0] <= deadline:
                tt = later[k][0]
                while k < len(later) and later[k][0] == tt:
                    have += later[k][2]
                    k += 1
                ready = len(have) - took >= need
            if not ready:
                tt = deadline
                if len(have) == took:
                    break
        if not line:
            took = len(have) if n <= 0 else min(n, len(have))
            break
        nl = have.find(b"\n", took)
        took = nl + 1 if nl >= 0 else len(have)
        if nl >= 0:
            break
    data = hexlify(have[:took]).decode() if took else None
    _wait(t, tt - t)
    _rxp[u] += took
    return True, data


def _flash(req):
    """Apply a flash program or erase to the image as the simulator will (NOR flash:
    erase to 0xFF, programming clears bits); False, and nothing done, when the
    simulator would refuse it."""
    if _image is None or not 0 <= req[1] < _blocks:
        return False
    if req[0] == "flash_erase":
        _image.seek(req[1] * _BLOCK)
        for _ in range(_BLOCK // len(_ERASED)):
            _image.write(_ERASED)
        return True
    data = unhexlify(req[3])
    if not 0 <= req[2] <= _BLOCK - len(data):
        return False
    pos = req[1] * _BLOCK + req[2]
    _image.seek(pos)
    old = _image.read(len(data))
    if old != (_ERASED if len(data) == len(_ERASED) else b"\xff" * len(data)):
        data = bytes(a & b for a, b in zip(old, data))
    _image.seek(pos)
    _image.write(data)
    return True


def _local(req):
    """(True, answer) when this side knows the simulator's answer, else (False, None)."""
    global _stirred, _slept, _rtc_memory
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
    if op == "uart_init" and req[1] in _uarts:
        return True, None
    if op == "uart_write" and req[1] in _uarts:
        _stirred = True         # the device gets the bytes: it may answer
        return True, len(req[2]) // 2
    if _scratch is not None and op in ("mem32_get", "mem32_set") and req[1] in _scratch:
        if op == "mem32_get":
            return True, _scratch[req[1]]
        _scratch[req[1]] = req[2] & 0xFFFFFFFF
        return True, None
    if _rtc_memory is not None:
        if op == "rtc_memory_get":
            return True, _rtc_memory
        if op == "rtc_memory_set" and len(req[1]) <= 4096:   # 2 KiB on ESP32
            _rtc_memory = req[1]
            return True, None
    if op == "i2c_write" and len(req[3]) == 2 and (req[1], req[2]) in _acks:
        return True, 1
    if t >= _horizon:
        return False, None
    if op == "uart_any":
        if req[1] in _rxb:
            return True, len(_rxb[req[1]]) - _rxp[req[1]]
    elif op == "uart_read":
        return _read(req, t)
    elif op in _WAITS:
        if not _stirred and t + req[1] < _horizon:
            _wait(t, req[1])
            return True, None
    elif op in ("flash_prog", "flash_erase"):
        if not _flash_cut and _flash(req):
            return True, None
    return False, None


def _cost(req):
    """About how long `req` makes the kept line (its answer too, when checked)."""
    n = 8
    for a in req:
        n += len(a) + 4 if isinstance(a, str) else 12
    if _check and req[0] == "rtc_memory_get" and _rtc_memory is not None:
        n += len(_rtc_memory)
    return n


def _answer(req):
    """(True, answer) when this side answers `req`; the entry that tells the simulator
    about it is in _kept first, so that a MemoryError cannot lose it."""
    global _kept_bytes, _horizon
    cost = _cost(req) if _check or req[0] not in _PURE else 0
    if _kept and _kept_bytes + cost > _KEEP_BYTES:
        return False, None
    entry = None
    if _check:
        entry = ["=", None]
        entry.extend(req)
        _kept.append(entry)
    elif req[0] not in _PURE:
        _kept.append(req)
    try:
        known, value = _local(req)
    except BaseException:
        known = False
        _horizon = -1           # what is known here may be half changed: ask from now on
        raise
    finally:
        if not known and (entry is not None or req[0] not in _PURE):
            _kept.pop()
    if entry is not None:
        entry[1] = value
    _kept_bytes += cost
    return known, value


def _reply():
    """The simulator's answer: [value, now, horizon] (SimNode._batched), then what
    waits in the receive buffers and the deliveries to them due before the horizon;
    its end of the wake raises WakeOver."""
    global _horizon
    _horizon = -1               # nothing is known until the reply is read
    data = _receive()
    if data[0] == 123:          # "{": the end of the wake
        _ended()
    reply = json.loads(data)
    buffers, arrivals = (), ()
    if len(reply) > 3:
        buffers = [(u, unhexlify(hx)) for u, hx in reply[3]]
        arrivals = [(at, u, unhexlify(hx)) for at, u, hx in reply[4]]
    return reply, buffers, arrivals


def call(*req):
    global _now, _horizon, _slept, _stirred, _epoch, _cause, _wake, _scratch, _links, _arr, _ai
    global _rtc_memory, _acks, _flash_cut
    if _over:
        raise WakeOver()
    if _horizon >= 0 and len(_kept) < _keep_max:
        known, value = _answer(req)
        if known:
            return value
    op = req[0]
    _send(req)
    reply, buffers, _arr = _reply()
    value, _now, h = reply[0], reply[1], reply[2]
    _ai = 0
    _slept = 0
    _stirred = False
    for u in _links:
        _rxb[u] = b""
        _rxp[u] = 0
    for u, data in buffers:
        _rxb[u] = data
    if isinstance(value, dict):
        if "err" in value:
            _horizon = _FAR if h is None else h
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
            _rtc_memory = value.get("rtc_memory_now")
            _acks = set(tuple(a) for a in value.get("acks", ()))
            _flash_cut = value.get("flash_cut", True)
    if op == "uart_init":
        _uarts.add(req[1])
    elif op == "reset_cause":
        _cause = value
    _horizon = _FAR if h is None else h
    return value


def call_no_reply(*req):
    # For requests after which the board stops running (deep sleep, reset): a process of
    # its own is killed; a warm interpreter gets the end of the wake.
    if _over:
        raise WakeOver()
    _send(req)
    _receive()
    _ended()
