"""Which step of the wake is running, kept where it survives a watchdog reset, and the
parts that hung the node kept out of the next wakes for a while.

    steps.load(board, machine.reset_cause())   # reads what the last run left behind
    board = steps.WatchedBoard(board.spec)     # board.part(name) marks the part's step
    steps.begin("modem") ... steps.end()       # a step of the wake layer
    if steps.skipping("modem"): ...            # under back-off after a watchdog reset
    faults |= steps.fault_bits(kind)           # status bits of the parts skipped
    steps.sleeping()                           # the wake ends in a planned deep sleep

A step begins when the kind asks the board for a part's wiring (`board.part(name)`,
which every kind does right before it talks to the part) or when the wake layer says
so. Beginning a step means the one before it finished: that is progress, and the
watchdog is fed. When a watchdog reset hits, the step it interrupted gets a strike; a
part with strikes is skipped (its channels go out null with its fault bit, as for any
failed part) for 1, 2, 4 ... wakes, at most _SKIP_MAX, and tried again after that. A
part whose step finishes loses its strikes. Watchdog resets that keep coming although
the blamed parts are skipped (a hang outside any part) skip the measurement, then the
modem too, so that whatever still works goes on.

The record is 16 bytes where a watchdog reset does not clear it and the flash is not
worn: on RP2040 the watchdog's SCRATCH0..3 (RP2040 datasheet, watchdog registers: they
persist through a watchdog reset and are lost at power-on; pico-sdk uses SCRATCH4..7),
on ESP32 bytes 64..79 of the RTC user memory (RTC_NOINIT_ATTR: survives watchdog resets,
ports/esp32/machine_rtc.c; node/counter.py uses bytes 0..23). A power cut clears both,
which also power-cycles a hung part, so trying it again is right then.

Layout: b"WD", flags (bit 0 the last run went to deep sleep as planned, bits 4..7
watchdog resets in a row), the running step's code, then 4 entries of (step code,
strikes, wakes still to skip). A step's code is a hash of its name (1..251).
"""
from micropython import const
import struct

import machine

from node import watchdog
from node.board import Board
from node.log import log

_MAGIC = b"WD"
_SIZE = const(16)
_ENTRIES = const(4)
_SLEPT = const(0x01)
_SKIP_MAX = const(96)              # a day at the default 15-minute interval
_MEASURE_AFTER = const(3)          # watchdog resets in a row before the measurement is skipped
_MODEM_AFTER = const(4)            # ... and before the modem is skipped too
_RTC_AT = const(64)
_SCRATCH = (0x4005800C, 0x40058010, 0x40058014, 0x40058018)
MEASURE = "measure"
MODEM = "modem"

_store = None
_rec = None                 # bytearray(16) while open
_names = {}                 # code -> name, for the log
_skipping = {}              # name -> wakes still to skip after this one
_skipped = []               # parts skipped this wake, for fault_bits
_wdt_in_a_row = 0
_slept = False


def code(name):
    h = 0
    for c in name:
        h = (h * 31 + ord(c)) % 251
    return h + 1


class _Scratch:
    def read(self):
        return b"".join(struct.pack("<I", machine.mem32[a]) for a in _SCRATCH)

    def write(self, data):
        for i in range(4):
            machine.mem32[_SCRATCH[i]] = struct.unpack_from("<I", data, 4 * i)[0]


class _RtcMemory:
    def __init__(self):
        self._rtc = machine.RTC()

    def read(self):
        return bytes(self._rtc.memory()[_RTC_AT:_RTC_AT + _SIZE])

    def write(self, data):
        mem = bytearray(self._rtc.memory())
        if len(mem) < _RTC_AT + _SIZE:
            mem.extend(bytes(_RTC_AT + _SIZE - len(mem)))
        mem[_RTC_AT:_RTC_AT + _SIZE] = data
        self._rtc.memory(mem)


def _storage(board):
    mcu = board.spec.get("mcu")
    if mcu == "rp2040":
        return _Scratch()
    if mcu == "esp32" and hasattr(machine.RTC(), "memory"):
        return _RtcMemory()
    return None


def _save():
    if _store is not None:
        try:
            _store.write(_rec)
        except Exception as e:  # noqa: BLE001 - the record is a help, never a reason to stop
            log("steps: record not written: %s", e)


def _entry(c):
    for i in range(_ENTRIES):
        if _rec[4 + 3 * i] == c:
            return 4 + 3 * i
    return None


def load(board, cause):
    """Read the record the last run left. When `cause` is a watchdog reset that did not
    end a planned deep sleep, the step it interrupted gets a strike. Returns the name
    (or code) of that step, or None."""
    global _store, _rec, _wdt_in_a_row, _slept
    _names.clear()
    for name in board.spec.get("parts", {}):
        _names[code(name)] = name
    for name in (MEASURE, MODEM):
        _names[code(name)] = name
    _store = _storage(board)
    old = b""
    if _store is not None:
        try:
            old = _store.read()
        except Exception as e:  # noqa: BLE001
            log("steps: record not read: %s", e)
    _rec = bytearray(old) if len(old) == _SIZE and old[:2] == _MAGIC else bytearray(_SIZE)
    _rec[:2] = _MAGIC
    flags, running = _rec[2], _rec[3]
    _slept = bool(flags & _SLEPT)
    hit = None
    if cause == machine.WDT_RESET and not flags & _SLEPT:
        _wdt_in_a_row = min(15, (flags >> 4) + 1)
        if running:
            hit = _names.get(running, running)
            _strike(running)
    else:
        _wdt_in_a_row = 0
    _skipping.clear()
    del _skipped[:]
    for i in range(_ENTRIES):
        at = 4 + 3 * i
        if _rec[at] and _rec[at + 2]:
            _rec[at + 2] -= 1
            _skipping[_names.get(_rec[at], _rec[at])] = _rec[at + 2]
    if _wdt_in_a_row >= _MEASURE_AFTER:
        _skipping.setdefault(MEASURE, 0)
    if _wdt_in_a_row >= _MODEM_AFTER:
        _skipping.setdefault(MODEM, 0)
    _rec[2] = _wdt_in_a_row << 4
    _rec[3] = 0
    _save()
    if hit is not None:
        log("watchdog reset during %s (%d in a row)", hit, _wdt_in_a_row)
    return hit


def _strike(c):
    at = _entry(c)
    if at is None:
        # A free entry, else the one with the fewest strikes gives way.
        at = min(range(4, 4 + 3 * _ENTRIES, 3), key=lambda a: (_rec[a] != 0, _rec[a + 1]))
        _rec[at], _rec[at + 1], _rec[at + 2] = c, 0, 0
    strikes = min(7, _rec[at + 1] + 1)
    _rec[at + 1] = strikes
    _rec[at + 2] = min(_SKIP_MAX, 1 << (strikes - 1))


def slept():
    """The last run ended in a planned deep sleep (rp2 tells a deep-sleep wake from a
    watchdog reset no other way: both report WDT_RESET)."""
    return _slept


def skipping(name):
    """Whether `name` is kept out of this wake (a part or step that hung the node)."""
    if name not in _skipping:
        return False
    if name not in _skipped:
        _skipped.append(name)
        log("watchdog: %s skipped this wake after a hang (%d more)", name, _skipping[name])
    return True


def begin(name):
    """A step begins; the one running before it finished (progress)."""
    if _rec is None:
        return
    c = code(name)
    if _rec[3] == c:
        return
    _done()
    _rec[3] = c
    _save()


def end():
    """The running step finished."""
    if _rec is None or not _rec[3]:
        return
    _done()
    _rec[3] = 0
    _save()


def _done():
    if _rec[3]:
        at = _entry(_rec[3])
        if at is not None:
            _rec[at] = _rec[at + 1] = _rec[at + 2] = 0      # it worked: strikes gone
        watchdog.progress()


def sleeping():
    """The wake ends in a planned deep sleep: no step is running, no reset in a row."""
    if _rec is None:
        return
    _rec[2] = _SLEPT
    _rec[3] = 0
    _save()


def fault_bits(kind):
    """The kind's status bits of the parts skipped this wake (its FAULT_<PART>)."""
    bits = 0
    for name in _skipped:
        bit = getattr(kind, "FAULT_" + name.upper(), None) if isinstance(name, str) else None
        if bit is None:
            if name not in (MEASURE, MODEM):
                log("watchdog: the kind has no status bit for %s", name)
            continue
        bits |= bit
    return bits


class WatchedBoard(Board):
    """The board, telling the step record which part the kind is about to talk to and
    keeping parts under back-off away from it (a skipped part reads as not fitted, and
    fault_bits() flags it)."""

    def part(self, name):
        spec = Board.part(self, name)
        if spec is None:
            return None
        if skipping(name):
            return None
        begin(name)
        return spec
