"""Whether the network has been answering: the node's memory of its last confirmed
uplink, so that it probes a silent network now and then instead of talking into it.

    link = LinkState.load()
    if link.probe_due(time.time()): ...send one confirmed frame...
    link.failed(time.time())   # no ACK: in doubt, next probe later
    link.acked()               # an ACK: the network hears us

An unconfirmed uplink reports "sent" whether or not anyone heard it; only an ACK says
the network is there. After a confirmed frame gets no ACK the link is in doubt: one
confirmed probe a wake at most, the first after PROBE_FIRST_S, each further one after
twice the wait, up to PROBE_MAX_S. Written only when that changes (rare), with a CRC.
"""
import struct
from binascii import crc32

from micropython import const

from node.flashfs import ensure_dir

_FILE = "state/link"
PROBE_FIRST_S = const(600)
PROBE_MAX_S = const(3600)
_EARLY_S = const(120)


class LinkState:
    def __init__(self, fails=0, next_probe=0):
        self.fails = fails            # confirmed frames without ACK in a row
        self.next_probe = next_probe  # RTC seconds

    @property
    def doubt(self):
        return self.fails > 0

    @classmethod
    def load(cls):
        try:
            with open(_FILE, "rb") as f:
                data = f.read()
        except OSError:
            return cls()
        if len(data) == 10 and struct.unpack(">I", data[6:])[0] == crc32(data[:6]):
            fails, probe = struct.unpack(">HI", data[:6])
            return cls(fails, probe)
        return cls()

    def _save(self):
        ensure_dir("state")
        body = struct.pack(">HI", min(self.fails, 0xFFFF), self.next_probe)
        with open(_FILE, "wb") as f:
            f.write(body + struct.pack(">I", crc32(body)))

    def probe_due(self, now):
        if not self.doubt:
            return True
        # The wake that comes a wait later may come a little early (the interval counts
        # from the start of the last wake). A clock set back (an RTC lost with the
        # power) must not postpone the probe beyond the longest wait.
        return now + _EARLY_S >= self.next_probe or self.next_probe - now > PROBE_MAX_S

    def acked(self):
        if self.fails:
            self.fails = 0
            self._save()

    def failed(self, now):
        self.fails += 1
        wait = PROBE_FIRST_S << min(self.fails - 1, 8)
        self.next_probe = now + min(PROBE_MAX_S, wait)
        self._save()
