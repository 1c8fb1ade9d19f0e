"""Sending the queued readings, and the node record, through the board's modem.

    Sender(board, settings, queue, counter, record).run()

Oldest first, and as many in one frame as the current data rate's payload holds: the
body is then a CBOR array of bodies, `[[2, seq, ...], [2, seq, ...]]` (docs/payload.md,
"Several readings in one frame"); a reading alone goes as its own body. A frame is
sealed at the moment it is handed to the modem, under a counter reserved in flash
just before, and is never truncated: a reading the current rate cannot carry waits.

What leaves the ring, and when (docs/architecture.md, "Draining the queue"):
- Frames are unconfirmed, except a frame carrying the node record, a probe while the
  link is in doubt, and one whenever `confirm_after` readings (default 16) went out
  unconfirmed since the last ACK, while the day's downlinks allow (node/fair_use.py).
  An ACK confirms what went out before it: those readings leave the ring. No ACK: they
  are sent again, and the link is in doubt (node/link.py).
- A duty-cycle wait up to 30 s is slept through (light sleep), four times a wake at
  most; a longer one ends the wake with the rest queued.
- A frame goes only while the day's airtime budget (TTN's 30 s) has room for it.
"""
from micropython import const
import time

import machine

import modems
from node import airtime
from node.fair_use import FairUse
from node.link import LinkState
from node.log import log
from node.queue import TornReading
from payload import cbor, envelope

try:
    # Sleeps through a duty-cycle wait in slices the watchdog outlives (RP2040's counts
    # on through a light sleep).
    from node.watchdog import lightsleep as _lightsleep
except ImportError:
    _lightsleep = machine.lightsleep

_HEADER_MAX = const(5)   # version byte + up to 4 counter bytes (docs/payload.md)
_TAG = const(8)
# A duty-cycle wait this short is slept through (light sleep, modem idle) rather than
# leaving the reading for the next slot; a longer one ends the wake.
_DUTY_WAIT_MAX_MS = const(30000)
_DUTY_WAITS_PER_WAKE = const(4)
# Join requests per wake, when the back-off allows them that close together.
_JOIN_TRIES_PER_WAKE = const(3)
# Readings sent unconfirmed before a frame asks for an ACK: at one reading a frame
# every 15 minutes, six ACKs a day, inside TTN's ten downlinks.
_CONFIRM_AFTER = const(16)
_BATCH_MAX = const(23)   # items in one frame: the CBOR array head stays one byte


def _array(bodies):
    return bytes([0x80 | len(bodies)]) + b"".join(bodies)


class Sender:
    def __init__(self, board, settings, queue, counter, record=None):
        self.board = board
        self.settings = settings
        self.queue = queue
        self.counter = counter
        self.record = record

    def _record_waits(self):
        return self.record is not None and self.record.pending() is not None

    def run(self):
        """Send what the ring and the link allow; returns how many readings went out."""
        if not self.queue.unsent_count() and not self._record_waits():
            return 0
        s = self.settings
        link = LinkState.load()
        now = time.time()
        if not link.probe_due(now):
            log("link: %d confirmed frames without ACK; next probe in %d s; %d readings "
                "stay queued", link.fails, link.next_probe - now, len(self.queue))
            return 0
        modem = modems.open_modem(self.board)
        try:
            modem.wake()
            if not modem.joined():
                modem.configure(s.dev_eui, s.join_eui, s.app_key, dr=s.dr, adr=s.adr)
                if not self._join(modem):
                    log("join failed; %d readings stay queued", len(self.queue))
                    return 0
            sent = self._send_all(modem, link)
            # Downlinks came in the receive windows of those sends (node/downlink.py).
            from node.downlink import receive
            receive(modem, s)
        except modems.ModemError as e:
            log("modem: %s %s (wait %d ms); readings stay queued", modems.reason_name(e.reason),
                e.detail, e.wait_ms)
            return 0
        except Exception as e:  # noqa: BLE001 - the modem's trouble must not lose readings
            log("modem error: %s %s; readings stay queued", type(e).__name__, e)
            return 0
        try:
            modem.sleep(s.interval_ms)
        except Exception as e:  # noqa: BLE001
            log("modem sleep failed: %s", e)
        return sent

    def _join(self, modem):
        """Join within the LoRaWAN back-off (node/join_backoff.py); True when joined."""
        from node.join_backoff import JoinBackoff   # only a wake that joins needs it
        backoff = JoinBackoff()
        dr = modem.data_rate()
        waits = 0
        for _ in range(_JOIN_TRIES_PER_WAKE):
            wait_s = backoff.wait_s(time.time())
            if wait_s * 1000 > _DUTY_WAIT_MAX_MS:
                log("join back-off: next request in %d s", wait_s)
                return False
            if wait_s:
                _lightsleep(wait_s * 1000)
            before = backoff.attempt(time.time(), dr)
            try:
                if modem.join():
                    backoff.joined()
                    return True
                log("join: no accept")
            except modems.ModemError as e:
                if e.reason != modems.RESTRICTED:
                    raise
                backoff.undo(before)     # the modem did not transmit it
                if e.wait_ms > _DUTY_WAIT_MAX_MS or waits >= _DUTY_WAITS_PER_WAKE:
                    raise
                waits += 1
                log("duty cycle: join waits %d ms", e.wait_ms)
                _lightsleep(e.wait_ms + 50)
        return False

    def _frame(self, room, single, with_record):
        """(bodies, their reading seqs, the ranges the node record carries or None) of
        the next frame: the record first, then the oldest unsent readings that fit."""
        bodies = []
        seqs = []
        ranges = None
        size = 0
        if with_record and self._record_waits():
            built = self.record.body(room)
            if built is not None:
                bodies.append(built[0])
                ranges = built[1]
                size = len(built[0])
        if single and bodies:
            return bodies, seqs, ranges
        for seq, body in self.queue.unsent(_BATCH_MAX):
            n = len(bodies) + 1
            if n > _BATCH_MAX or size + len(body) + (1 if n > 1 else 0) > room:
                break
            bodies.append(body)
            seqs.append(seq)
            size += len(body)
            if single:
                break
        return bodies, seqs, ranges

    def _alarm(self, bodies):
        """Whether a reading of the frame carries a status bit its kind confirms (a kind's
        CONFIRM mask, e.g. climate's heavy rain; setting `confirm_alarms` false: none)."""
        if not self.settings.options.get("confirm_alarms", True):
            return False
        import kinds
        mask = getattr(kinds.load(self.settings.kind), "CONFIRM", 0)
        if not mask:
            return False
        for body in bodies:
            try:
                item = cbor.loads(body)
            except ValueError:
                continue
            if len(item) > 2 and isinstance(item[2], int) and item[2] & mask:
                return True
        return False

    def _send_all(self, modem, link):
        s = self.settings
        opts = s.options
        budget = FairUse(opts.get("airtime_s_per_day", 30), opts.get("downlinks_per_day", 10))
        confirm_after = int(opts.get("confirm_after", _CONFIRM_AFTER))
        sent = 0
        waits = 0
        torn = 0
        while True:
            now = time.time()
            may_confirm = budget.may_confirm(now)
            probe = link.doubt
            if probe and not may_confirm:
                log("fair use: no downlink left today for a probe; %d readings stay queued",
                    len(self.queue))
                break
            room = modem.max_payload() - _HEADER_MAX - _TAG
            try:
                bodies, seqs, ranges = self._frame(room, probe, may_confirm)
            except TornReading as e:
                # The queue reported what the flash lost and cut it off: read again.
                log("queue: %s", e)
                torn += 1
                if torn > 2:
                    break
                continue
            if not bodies:
                if self.queue.unsent_count():
                    log("the oldest reading needs more than the %d body bytes this data rate "
                        "carries: kept queued", room)
                break
            body = bodies[0] if len(bodies) == 1 else _array(bodies)
            toa_us = airtime.uplink_us(modem.data_rate(), _HEADER_MAX + len(body) + _TAG)
            left_us = budget.airtime_left_us(now)
            if toa_us > left_us:
                log("fair use: %d ms of airtime left today, the frame needs %d; %d readings "
                    "stay queued", left_us // 1000, toa_us // 1000, self.queue.unsent_count())
                break
            unacked = len(self.queue) - self.queue.unsent_count()
            confirmed = probe or ranges is not None or (
                may_confirm and (unacked + len(seqs) >= confirm_after or self._alarm(bodies)))
            counter = self.counter.take()
            frame = envelope.seal(s.payload_key, s.dev_eui, counter, body)
            log("seal counter=%d seq=%s len=%d%s%s", counter,
                ",".join([str(q) for q in seqs]) or "-", len(frame),
                " record" if ranges is not None else "", " confirmed" if confirmed else "")
            try:
                result = modem.send(s.port, frame, confirmed)
            except modems.ModemError as e:
                if (e.reason == modems.RESTRICTED and e.wait_ms <= _DUTY_WAIT_MAX_MS
                        and waits < _DUTY_WAITS_PER_WAKE):
                    # Not transmitted: wait out the sub-band's off-time, then reseal.
                    log("duty cycle: waiting %d ms", e.wait_ms)
                    waits += 1
                    _lightsleep(e.wait_ms + 50)
                    continue
                log("send refused: %s %s (wait %d ms); %d readings stay queued",
                    modems.reason_name(e.reason), e.detail, e.wait_ms,
                    self.queue.unsent_count())
                break
            acked = confirmed and result == modems.SENT
            budget.spend(time.time(), toa_us, acked)
            if result != modems.SENT:
                # Nobody may have heard anything since the last ACK: all of it goes again.
                self.queue.rewind()
                link.failed(time.time())
                log("no ACK: %d readings stay queued; next probe in %d s", len(self.queue),
                    link.next_probe - time.time())
                break
            self.queue.mark_sent(seqs[-1] if seqs else None, acked, ranges or ())
            if ranges is not None:
                self.record.sent(ranges)
            if acked:
                link.acked()
            sent += len(seqs)
        return sent
