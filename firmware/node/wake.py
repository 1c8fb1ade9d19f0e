"""One wake of a node (design.md, "One wake of a node"): boot, measure, encode, seal,
queue, send, sleep.

    import node.wake
    node.wake.main()      # never returns: ends in machine.deepsleep()

Every step that can fail is contained: a failed part is flagged in the reading, a
modem that cannot send leaves the frames queued for the next wake, and a node that is
not provisioned says so on the console and sleeps.
"""
import gc
import sys
import time

from micropython import const

import machine

from node import steps, stuck, watchdog
from node.board import Board, BoardError
from node.log import log
from node.resets import count_reset
from node.settings import Settings, SettingsError
# The queue, the counters and the send path (node.delivery, node.record and what they
# import: the modem driver, AES-CCM, the envelope) are imported where a wake first
# needs them: a wake that only watches (climate's rain, glass's impacts) loads none of
# them and opens none of the queue's files.

_UNPROVISIONED_SLEEP_MS = const(3600 * 1000)
_MIN_SLEEP_MS = const(1000)
_ERROR_SLEEP_MS = const(900 * 1000)


def _measure(board, settings):
    import kinds
    kind = kinds.load(settings.kind)
    values, faults = kind.measure(board, settings)
    try:
        stuck.save()    # the parts' raw bytes, for the next wake's stuck check
    except OSError as e:
        log("stuck check state not saved: %s", e)   # the reading goes on regardless
    # Parts kept out after they hung the node read as failed parts (node/steps.py).
    return kind, values, faults | steps.fault_bits(kind)


def _plan(board, settings):
    import kinds
    plan = getattr(kinds.load(settings.kind), "plan", None)
    if plan is None:
        return True, None
    try:
        return plan(board, settings)
    except Exception as e:  # noqa: BLE001 - a broken plan must not cost the reading
        log("plan error: %s %s", type(e).__name__, e)
        sys.print_exception(e)
        return True, None


def wake():
    """Run the wake; returns the milliseconds to sleep."""
    # The imports left their garbage between the modules: collect it now, so that what
    # lives through the wake (board, settings, queue) fills those holes instead of
    # landing above the garbage and splitting the free heap when it goes.
    gc.collect()
    started = time.ticks_ms()
    cause = machine.reset_cause()
    log("wake reset_cause=%d", cause)
    try:
        board = Board.load()
        watchdog.start(board)       # from here on a hang ends in a reset (node/watchdog.py)
        settings = Settings.load()
    except (BoardError, SettingsError) as e:
        log("not ready: %s", e)
        return _UNPROVISIONED_SLEEP_MS
    steps.load(board, cause)        # a step a watchdog reset hit is skipped a while
    resets = count_reset(cause, steps.slept())
    if resets is not None:
        log("resets %s", resets)
    board = steps.WatchedBoard(board.spec)
    # A kind may wake between its slots (climate watches the rain): its plan() says
    # whether this wake takes a reading and how long to sleep after it (None: interval).
    planned = time.ticks_ms()
    plan_sleep_ms = None
    measure = not steps.skipping(steps.MEASURE)
    if measure:
        steps.begin(steps.MEASURE)
        take, plan_sleep_ms = _plan(board, settings)
        if not take:
            steps.end()
            return max(_MIN_SLEEP_MS, plan_sleep_ms - time.ticks_diff(time.ticks_ms(), planned))
    # A reading or a send follows: the queue, the counters and the send path now, before
    # the measurement, with the plan's garbage collected, so that they fill its holes and
    # the readings land above them (imported after measuring, they found a soil node's
    # heap of 100K too split for a 640-byte piece).
    gc.collect()
    from node.counter import ReservedCounter
    from node.delivery import Sender
    from node.queue import ReadingQueue
    from node.record import NodeRecord
    if measure:
        # Measured before the seq is taken: a wake that hangs in a part costs no seq.
        kind, values, faults = _measure(board, settings)
        steps.end()
    # The ring's capacity: the configuration's, within what the board's flash holds.
    queue = ReadingQueue(min(settings.queue_max, board.spec.get("queue_max", settings.queue_max)))
    reserve = board.spec.get("counter_reserve", 1)
    seqs = ReservedCounter("seq", reserve, rtc_index=1)
    if measure:
        seq = seqs.take()
        if not queue.push(seq, kind.encode(seq, values, faults)):
            log("reading seq=%d: no data rate carries it; dropped (unsendable)", seq)
        watchdog.progress()         # the reading is on the flash
        log("reading seq=%d queued=%d", seq, len(queue))
    if not steps.skipping(steps.MODEM):
        steps.begin(steps.MODEM)
        counter = ReservedCounter("ctr", reserve, rtc_index=0)
        record = NodeRecord(queue, seqs, settings.interval_ms)
        record.prepare()            # a node record takes its seq when one is due
        interval_ms = settings.interval_ms
        Sender(board, settings, queue, counter, record).run()
        steps.end()
        if settings.interval_ms != interval_ms:
            # A downlink changed the interval: it holds from this sleep on, whatever the
            # kind planned with the old one (its plan runs again at the next wake).
            plan_sleep_ms = None
    if plan_sleep_ms is not None:
        return max(_MIN_SLEEP_MS, plan_sleep_ms - time.ticks_diff(time.ticks_ms(), planned))
    awake = time.ticks_diff(time.ticks_ms(), started)
    return max(_MIN_SLEEP_MS, settings.interval_ms - awake)


def main():
    try:
        sleep_ms = wake()
    except Exception as e:  # noqa: BLE001 - a node must never stop at the REPL
        # Whatever went wrong, the node sleeps and tries again next slot: a stuck
        # node sends nothing for the rest of its life. The frames stay queued.
        log("error: %s %s", type(e).__name__, e)
        sys.print_exception(e)
        sleep_ms = _ERROR_SLEEP_MS
    log("sleep %d ms", sleep_ms)
    steps.sleeping()
    watchdog.deepsleep(sleep_ms)
