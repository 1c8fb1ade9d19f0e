"""The node record (schema 6): what the node lost, and how often it reset.

    record = NodeRecord(queue, seq_counter, settings.interval_ms)
    record.prepare()                     # takes a seq when a record is due
    body, ranges = record.body(room)     # CBOR [6, seq, 0, resets, dropped(, downlinks)]
    record.sent(ranges)                  # once a frame carrying it was ACKed

A record is due when the queue holds dropped ranges not yet reported, when the reset
counts changed since the last record sent, or once a day's worth of readings at the
configured interval went by (the node has no clock that a power cut cannot stop, so a
day is counted in seqs). It takes a fresh seq from the reading counter, keeps it until
a frame carrying it is reported sent (a record sent again keeps its seq, as a reading
does), and is never subject to the queue's give-way rule: it is built from the state
at each attempt, so ranges dropped meanwhile ride along. docs/kinds/node.md.
"""
from micropython import const
import json

from node import downlink, resets
from node.flashfs import ensure_dir
from payload import cbor

SCHEMA = 6
_FILE = "state/noderec"
# Fixed order on the wire (docs/kinds/node.md, node/resets.py NAMES); new names only
# ever go at the end.
RESET_NAMES = ("pwron", "hard", "wdt", "soft", "brownout", "other")
_DAY_MS = const(86400000)


def reset_counts():
    """The node's reset counts since install, in the wire's order."""
    totals = getattr(resets, "totals", None)
    if totals is not None:
        return totals()
    c = resets.counts()
    return [int(c.get(n, 0)) for n in RESET_NAMES]


class NodeRecord:
    def __init__(self, queue, counter, interval_ms):
        self.queue = queue
        self.counter = counter
        self.per_day = max(1, _DAY_MS // max(1, interval_ms))
        self._st = self._load()
        if self._st is None:
            # Installed just now: the counts so far are the baseline (they are totals,
            # so the next record still shows them), the first daily record a day on.
            self._st = {"pending": None, "resets": reset_counts(),
                        "due": queue.next_seq() + self.per_day}
            self._save()

    def _load(self):
        try:
            with open(_FILE) as f:
                st = json.load(f)
        except (OSError, ValueError):
            return None
        if not isinstance(st, dict) or not isinstance(st.get("resets"), list) \
                or not isinstance(st.get("due"), int):
            return None
        return st

    def _save(self):
        ensure_dir("state")
        with open(_FILE, "w") as f:
            json.dump(self._st, f)

    def due(self):
        st = self._st
        return (st["pending"] is not None or bool(self.queue.dropped())
                or bool(downlink.confirmations())
                or reset_counts() != st["resets"] or self.queue.next_seq() >= st["due"])

    def pending(self):
        """The seq of the record waiting to be sent, or None."""
        return self._st["pending"]

    def prepare(self):
        """If a record is due and none waits, take its seq (persisted before use)."""
        if self._st["pending"] is None and self.due():
            seq = self.counter.take()
            self.queue.note(seq)
            self._st["pending"] = seq
            self._save()
        return self._st["pending"]

    def body(self, room):
        """(CBOR body, the dropped ranges it carries) within `room` bytes, oldest ranges
        first; None if not even a record without ranges fits."""
        seq = self._st["pending"]
        if seq is None:
            return None
        counts = reset_counts()
        ranges = self.queue.dropped()
        # Downlink confirmations (node/downlink.py) go as a sixth element, only when
        # there are some: a record without them is the five elements an older decoder
        # reads. Ranges give way first, then the newest confirmations.
        confs = downlink.confirmations()
        while True:
            items = [SCHEMA, seq, 0, counts, ranges]
            if confs:
                items.append(confs)
            body = cbor.dumps(items)
            if len(body) <= room:
                self._confs = len(confs)
                return body, ranges
            if ranges:
                ranges = ranges[:-1]
            elif confs:
                confs = confs[:-1]
            else:
                return None

    def sent(self, ranges):
        """A frame carrying the record was sent (and ACKed): the queue has forgotten
        `ranges`; the next record is due when something new happens, or in a day."""
        downlink.reported(getattr(self, "_confs", 0))
        self._confs = 0
        self._st = {"pending": None, "resets": reset_counts(),
                    "due": self.queue.next_seq() + self.per_day}
        self._save()
