"""Sending the queued readings through the board's modem.

    Sender(board, settings, queue, counter).run()

Oldest reading first. Each is sealed at the moment it is handed to the modem, under a
counter reserved in flash just before, and leaves the queue only when the modem
reports it sent. Anything else (no modem answer, join refused, duty-cycle wait, a
frame too big for the current data rate) leaves it queued for the next wake.
"""
import time

import machine

import modems
from node.join_backoff import JoinBackoff
from node.log import log
from node.queue import TornReading
from payload import envelope

_HEADER_MAX = 5   # version byte + up to 4 counter bytes (docs/payload.md)
_TAG = 8
# A duty-cycle wait this short is slept through (light sleep, modem idle) rather than
# leaving the reading for the next slot; a longer one ends the wake.
_DUTY_WAIT_MAX_MS = 30000
_DUTY_WAITS_PER_WAKE = 4
# Join requests per wake, when the back-off allows them that close together.
_JOIN_TRIES_PER_WAKE = 3


class Sender:
    def __init__(self, board, settings, queue, counter):
        self.board = board
        self.settings = settings
        self.queue = queue
        self.counter = counter

    def run(self):
        names = self.queue.pending()
        if not names:
            return 0
        s = self.settings
        modem = modems.open_modem(self.board)
        try:
            modem.wake()
            if not modem.joined():
                modem.configure(s.dev_eui, s.join_eui, s.app_key, dr=s.dr, adr=s.adr)
                if not self._join(modem):
                    log("join failed; %d readings stay queued", len(names))
                    return 0
            sent = self._send_all(modem, names)
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
        backoff = JoinBackoff()
        dr = modem.data_rate()
        waits = 0
        for _ in range(_JOIN_TRIES_PER_WAKE):
            wait_s = backoff.wait_s(time.time())
            if wait_s * 1000 > _DUTY_WAIT_MAX_MS:
                log("join back-off: next request in %d s", wait_s)
                return False
            if wait_s:
                machine.lightsleep(wait_s * 1000)
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
                machine.lightsleep(e.wait_ms + 50)
        return False

    def _send_all(self, modem, names):
        s = self.settings
        limit = modem.max_payload()
        sent = 0
        waits = 0
        i = 0
        while i < len(names):
            name = names[i]
            try:
                body = self.queue.read(name)
            except TornReading as e:
                log("%s", e)
                i += 1
                continue
            if _HEADER_MAX + len(body) + _TAG > limit:
                # RUI3 would transmit an empty frame and drop ours: never hand it over.
                log("reading seq=%d needs %d bytes, the data rate allows %d: kept queued",
                    int(name, 16), _HEADER_MAX + len(body) + _TAG, limit)
                break
            counter = self.counter.take()
            frame = envelope.seal(s.payload_key, s.dev_eui, counter, body)
            log("seal counter=%d seq=%d len=%d", counter, int(name, 16), len(frame))
            try:
                result = modem.send(s.port, frame)
            except modems.ModemError as e:
                if (e.reason == modems.RESTRICTED and e.wait_ms <= _DUTY_WAIT_MAX_MS
                        and waits < _DUTY_WAITS_PER_WAKE):
                    # Not transmitted: wait out the sub-band's off-time, then reseal.
                    log("duty cycle: waiting %d ms", e.wait_ms)
                    waits += 1
                    machine.lightsleep(e.wait_ms + 50)
                    continue
                log("send refused: %s %s (wait %d ms); %d readings stay queued",
                    modems.reason_name(e.reason), e.detail,
                    e.wait_ms, len(names) - sent)
                break
            if result != modems.SENT:
                log("send: no ACK; %d readings stay queued", len(names) - sent)
                break
            self.queue.remove(name)
            sent += 1
            i += 1
        return sent
