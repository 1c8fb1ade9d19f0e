"""Store-and-forward queue of encoded readings on the flash.

    queue = ReadingQueue(limit=48)
    queue.push(seq, body)
    for name in queue.pending(): ...

One file per reading, named by its sequence number, so the oldest is sent first and
a reading leaves the queue only once the modem reports it sent. Readings are queued
as bodies and sealed at each send, under a fresh counter: a power cut between a
transmission and its confirmation then costs a repeat of the reading (same seq), never
a repeat of a counter. Each file is written whole by littlefs (copy on write), so a
power cut leaves a reading either queued or absent. When the queue is full the oldest
reading gives way, and the loss is counted, never silent.
"""
import os

_DIR = "q"
_DROPPED = "state/dropped"


class ReadingQueue:
    def __init__(self, limit=48):
        self.limit = limit
        for d in ("state", _DIR):
            try:
                os.mkdir(d)
            except OSError:
                pass

    def pending(self):
        """Queued reading names (seq as 8 hex digits), oldest first."""
        names = [n for n in os.listdir(_DIR) if len(n) == 8]
        names.sort()
        return names

    def push(self, seq, body):
        names = self.pending()
        while len(names) >= self.limit:
            self.remove(names.pop(0))
            self._count_dropped()
        with open("%s/%08x" % (_DIR, seq), "wb") as f:
            f.write(body)

    def read(self, name):
        with open(_DIR + "/" + name, "rb") as f:
            return f.read()

    def remove(self, name):
        try:
            os.remove(_DIR + "/" + name)
        except OSError:
            pass

    def dropped(self):
        try:
            with open(_DROPPED) as f:
                return int(f.read())
        except (OSError, ValueError):
            return 0

    def _count_dropped(self):
        n = self.dropped() + 1
        with open(_DROPPED, "w") as f:
            f.write(str(n))
