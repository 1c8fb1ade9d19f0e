"""The node's share of a public network: airtime and downlinks per day.

    budget = FairUse(settings)
    if budget.may_confirm(time.time()): ...
    budget.spend(time.time(), toa_us, confirmed=True)

The Things Network's Fair Access Policy (lorawan-modems.md §2.4) allows a device an average
of 30 s of uplink airtime and at most 10 downlinks per 24 hours, ACKs of confirmed uplinks
included. The node keeps its own account, per day of its clock, so that a confirmed uplink
is asked for only while the downlink budget lasts (two are kept back for a join accept and a
configuration downlink), and so that a backlog is drained only while the airtime budget
lasts. The budgets are settings (`airtime_s_per_day`, `downlinks_per_day`): a private network
may allow more.
"""
from micropython import const
import struct

from node.flashfs import ensure_dir

_FILE = "state/fairuse"
_DAY = const(86400)
_RESERVED_DOWNLINKS = const(2)


class FairUse:
    def __init__(self, airtime_s=30, downlinks=10):
        self.airtime_us = airtime_s * 1000000
        self.downlinks = downlinks
        self.day = -1
        self.used_us = 0
        self.used_downlinks = 0
        try:
            with open(_FILE, "rb") as f:
                data = f.read()
            if len(data) == 12:
                self.day, self.used_us, self.used_downlinks = struct.unpack(">iII", data)
        except OSError:
            pass

    def _roll(self, now):
        day = now // _DAY
        if day != self.day:
            self.day, self.used_us, self.used_downlinks = day, 0, 0

    def airtime_left_us(self, now):
        self._roll(now)
        return max(0, self.airtime_us - self.used_us)

    def may_confirm(self, now):
        self._roll(now)
        return self.used_downlinks < self.downlinks - _RESERVED_DOWNLINKS

    def spend(self, now, toa_us, confirmed=False):
        self._roll(now)
        self.used_us += toa_us
        if confirmed:
            self.used_downlinks += 1
        ensure_dir("state")
        with open(_FILE, "wb") as f:
            f.write(struct.pack(">iII", self.day, self.used_us, self.used_downlinks))
