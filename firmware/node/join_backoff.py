"""Join-request back-off of LoRaWAN 1.0.4, section 7 "Retransmissions back-off".

    backoff = JoinBackoff()
    if backoff.wait_s(time.time()) == 0:
        token = backoff.attempt(time.time(), dr)   # before the request goes on air
        joined = modem.join()

The specification caps the aggregated time on air of join requests, counted from the first
request of a series: 36 s in the first hour, 36 s in the next 10 hours, then 8.7 s per
24 hours. Like LoRaMac-node (`RegionCommonGetJoinDc`: 1/100, 1/1000, 1/10000) each request
is followed by an off-time of its time on air times 100, 1000 or 10000, which keeps every
aggregate inside its cap (1 % of an hour is 36 s, 0.01 % of a day 8.64 s), plus a random
part so that a fleet back from a network outage does not rejoin in step.

The modem may apply its own back-off, but it forgets it at every reset and power cut; the
node keeps the series on the flash so that neither a reset loop nor a power cut can make it
hammer the network. A join accept ends the series.
"""
from micropython import const
import os
import struct

from node import airtime
from node.flashfs import ensure_dir

_FILE = "state/join"
_TMP = "state/join.new"
_JOIN_REQUEST_LEN = const(23)    # MHDR, JoinEUI, DevEUI, DevNonce, MIC
_HOUR = const(3600)
_STEPS = ((_HOUR, 100), (11 * _HOUR, 1000))
_LATE_FACTOR = const(10000)
_JITTER = const(5)   # up to 1/5 of the off-time added at random


def toa_ms(dr):
    return (airtime.toa_us(_JOIN_REQUEST_LEN, dr) + 999) // 1000


def factor(elapsed_s):
    """Off-time factor for a request sent `elapsed_s` after the series began."""
    for limit, f in _STEPS:
        if elapsed_s < limit:
            return f
    return _LATE_FACTOR


class JoinBackoff:
    def __init__(self):
        self.start = None     # RTC seconds of the series' first request
        self.last = None      # RTC seconds of the latest request
        self.next = None      # no request before this
        self._load()

    def wait_s(self, now):
        """Seconds until a join request is allowed (0: now)."""
        if self.next is None:
            return 0
        if self.last is not None and now < self.last:
            # The clock went back (an RTC lost with the power): keep what was left to wait.
            self._shift(now - self.last)
        return max(0, self.next - now)

    def attempt(self, now, dr):
        """Book a request about to go on air at data rate `dr`; returns the state before it,
        for `undo` when the modem then refuses to transmit it."""
        before = (self.start, self.last, self.next)
        if self.start is None:
            self.start = now
        off_ms = toa_ms(dr) * factor(now - self.start)
        off_ms += _random(off_ms // _JITTER + 1)
        self.last = now
        self.next = now + (toa_ms(dr) + off_ms + 999) // 1000
        self._save()
        return before

    def undo(self, before):
        self.start, self.last, self.next = before
        self._save()

    def joined(self):
        self.start = self.last = self.next = None
        try:
            os.remove(_FILE)
        except OSError:
            pass

    def _shift(self, delta):
        self.start += delta
        self.last += delta
        self.next += delta
        self._save()

    def _load(self):
        try:
            with open(_FILE, "rb") as f:
                data = f.read()
        except OSError:
            return
        if len(data) == 12:
            self.start, self.last, self.next = struct.unpack(">III", data)

    def _save(self):
        if self.start is None:
            self.joined()
            return
        ensure_dir("state")
        # Written aside and renamed: littlefs renames atomically, so a power cut leaves the
        # old series or the new one, never a torn file that would allow a request at once.
        with open(_TMP, "wb") as f:
            f.write(struct.pack(">III", self.start, self.last, self.next))
        os.rename(_TMP, _FILE)


def _random(n):
    return int.from_bytes(os.urandom(4), "big") % n if n > 0 else 0
