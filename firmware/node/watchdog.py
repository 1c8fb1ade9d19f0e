"""The hardware watchdog (machine.WDT), fed only where the wake made progress.

    from node import watchdog
    watchdog.start(board)       # first thing in a wake; from here on a hang ends in a reset
    watchdog.progress()         # something really happened: a part's read finished, a
                                # modem command was answered, a flash write completed
    watchdog.expect(20000)      # a legitimate wait of at most 20 s begins (a join's RX
    watchdog.waiting()          #   windows): called inside it, feeds until 20 s are up
    watchdog.lightsleep(25000)  # a duty-cycle wait, slept in slices the watchdog outlives
    watchdog.deepsleep(ms)      # the end of the wake

Nothing here feeds on a timer. A loop that can spin without progress must not call
progress(); a bounded wait declares its bound with expect() and is fed no longer than
that, so a wait whose own deadline is broken still ends in a reset. Declared waits and
light sleeps together are fed for at most _WAITS_MS per wake: a loop around a bounded
wait is still a loop, and ends in a reset too.

The ports differ (docs/watchdog.md has the sources):
- rp2 (RP2040): the timeout is at most 8388 ms (ports/rp2/machine_wdt.c). The watchdog
  counts through machine.lightsleep (micropython#17228): a light sleep longer than the
  timeout is slept in slices with a feed between them. rp2's deepsleep is a light sleep
  followed by a reset (ports/rp2/modmachine.c), so the watchdog is paused for it through
  its CTRL register, as pico-sdk's watchdog_disable does: the wake is over, and the
  next one starts its own.
- esp32: the task watchdog (ports/esp32/machine_wdt.c) is clock-gated in light sleep and
  gone in deep sleep, which powers the digital core down.
machine.WDT has no way to stop a started watchdog (docs/library/machine.WDT.rst).
"""
from micropython import const
import time

import machine

# Timeouts per MCU: under rp2's 8388 ms limit; the same on ESP32, where a wake has no
# step that may legitimately run longer between two signs of progress. A board file
# may set "watchdog_ms" (0: no watchdog).
_TIMEOUT_MS = {"rp2040": 8000, "esp32": 8000}
_MAX_MS = {"rp2040": 8388}
# Declared waits a wake may have fed: 3 joins' RX windows (20 s each), 4 duty-cycle waits
# (30 s each), SDI-12 measurements, with room to spare.
_WAITS_MS = const(600000)
# MCUs whose watchdog keeps counting while the CPU sleeps (light and deep sleep), and
# where their watchdog's control register is (RP2040 datasheet, WATCHDOG CTRL: bit 30
# ENABLE; "when not enabled the watchdog timer is paused").
_COUNTS_ASLEEP = ("rp2040",)
_CTRL = const(0x40058000)
_ENABLE = const(0x40000000)

_wdt = None
_slice_ms = 0
_asleep_counts = False
_budget_end = None        # ticks_ms at which the declared wait (expect) is over
_waits_left = _WAITS_MS   # of the per-wake allowance for declared waits


def start(board):
    """Start the watchdog with the board's timeout. Returns the timeout in ms, or 0 when
    the board's MCU has no known watchdog (then nothing here does anything)."""
    global _wdt, _slice_ms, _asleep_counts, _waits_left
    mcu = board.spec.get("mcu")
    timeout = board.spec.get("watchdog_ms", _TIMEOUT_MS.get(mcu, 0))
    if not timeout:
        return 0
    timeout = min(timeout, _MAX_MS.get(mcu, timeout))
    _waits_left = _WAITS_MS
    _wdt = machine.WDT(timeout=timeout)
    # Light sleeps are cut where less than a quarter of the timeout is left.
    _slice_ms = timeout * 3 // 4
    _asleep_counts = mcu in _COUNTS_ASLEEP
    return timeout


def running():
    return _wdt is not None


def progress():
    """The wake made progress: feed the watchdog."""
    if _wdt is not None:
        _wdt.feed()


def _grant(ms):
    """Take `ms` from the wake's allowance for declared waits; what it grants."""
    global _waits_left
    ms = ms if ms < _waits_left else _waits_left
    _waits_left -= ms
    return ms


def expect(ms):
    """A legitimate wait of at most `ms` begins now; waiting() feeds until it is over."""
    global _budget_end
    _budget_end = time.ticks_add(time.ticks_ms(), _grant(ms))


def waiting():
    """Called inside a wait declared with expect(): feeds while its bound lasts."""
    if _wdt is not None and _budget_end is not None:
        if time.ticks_diff(_budget_end, time.ticks_ms()) > 0:
            _wdt.feed()


def lightsleep(ms):
    """machine.lightsleep(ms), in slices the watchdog outlives. The caller bounds `ms`
    (a duty-cycle wait the modem announced, a join back-off)."""
    if _wdt is None:
        machine.lightsleep(ms)
        return
    granted = _grant(ms)
    _slices(granted)
    if ms > granted:
        machine.lightsleep(ms - granted)    # past the wake's allowance: unfed


def _slices(ms):
    if ms <= 0:
        return
    while ms > 0:
        step = ms if ms < _slice_ms else _slice_ms
        _wdt.feed()
        machine.lightsleep(step)
        ms -= step
    _wdt.feed()


def deepsleep(ms):
    """End the wake: machine.deepsleep(ms). Where the watchdog would count through the
    sleep (rp2: a light sleep, then a reset) it is paused first; a pin that wakes the
    board then ends the sleep as it should."""
    if _wdt is not None and _asleep_counts:
        machine.mem32[_CTRL] = machine.mem32[_CTRL] & ~_ENABLE
    machine.deepsleep(ms)
