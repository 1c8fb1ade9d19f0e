"""Store-and-forward queue of sealed frames on the flash.

    queue = FrameQueue(limit=48)
    queue.push(counter, frame)
    for name in queue.pending(): ...

One file per frame, named by its counter, so the oldest is sent first and a frame
leaves the queue only once the modem reports it sent. Each file is written whole by
littlefs (copy on write), so a power cut leaves a frame either queued or absent. When
the queue is full the oldest frame gives way, and the loss is counted, never silent.
"""
import os

_DIR = "q"
_DROPPED = "state/dropped"


class FrameQueue:
    def __init__(self, limit=48):
        self.limit = limit
        for d in ("state", _DIR):
            try:
                os.mkdir(d)
            except OSError:
                pass

    def pending(self):
        """Queued frame names, oldest first."""
        names = [n for n in os.listdir(_DIR) if len(n) == 8]
        names.sort()
        return names

    def push(self, counter, frame):
        names = self.pending()
        while len(names) >= self.limit:
            self.remove(names.pop(0))
            self._count_dropped()
        with open("%s/%08x" % (_DIR, counter), "wb") as f:
            f.write(frame)

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
