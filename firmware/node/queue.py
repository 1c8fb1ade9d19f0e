"""Store-and-forward queue of encoded readings on the flash.

    queue = ReadingQueue(limit=48)
    queue.push(seq, body)
    for name in queue.pending(): ...

One file per reading, named by its sequence number, so the oldest is sent first and
a reading leaves the queue only once the modem reports it sent. Readings are queued
as bodies and sealed at each send, under a fresh counter: a power cut between a
transmission and its confirmation then costs a repeat of the reading (same seq), never
a repeat of a counter. littlefs commits a file's contents at close (copy on write), but
it commits a new file's name at open: a power cut in between leaves an empty file. Each
file therefore ends in a CRC-32 of its body; one that fails the check is a reading the
power cut took, and is removed and counted. When the queue is full the oldest reading
gives way, and that loss is counted too, never silent.
"""
import os
import struct
from binascii import crc32

from node.flashfs import ensure_dir

_DIR = "q"
_DROPPED = "state/dropped"


class TornReading(Exception):
    pass


class ReadingQueue:
    def __init__(self, limit=48):
        self.limit = limit
        ensure_dir("state")
        ensure_dir(_DIR)

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
            f.write(struct.pack(">I", crc32(body)))

    def read(self, name):
        """The body of a queued reading; TornReading (and the file is gone) if it is
        not whole."""
        try:
            with open(_DIR + "/" + name, "rb") as f:
                data = f.read()
        except OSError:
            data = b""
        if len(data) < 5 or struct.unpack(">I", data[-4:])[0] != crc32(data[:-4]):
            self.remove(name)
            self._count_dropped()
            raise TornReading("reading seq=%d was cut short by a power loss: dropped" % int(name, 16))
        return data[:-4]

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
