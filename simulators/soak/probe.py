# MicroPython, run by the soak (simulators/soak.py) on the host: looks into a node's
# flash image through the firmware's own modules, as the node's next boot would see
# it, without changing the image.
#
# The image is opened read-only: whatever the firmware's classes write while they look
# (a queue that cuts back a torn record, a directory it makes sure of) lands in RAM and
# is thrown away. The host asks on stdin, one JSON line per question, and gets one JSON
# line per answer on stdout:
#   ["config", IMAGE]  -> {"mount": bool, "config": the configuration node/config_store
#                          loads (or null), "copies": [[generation, file index], ...],
#                          "files": {"keys.json": sha256 hex or null, "board.json": ...}}
#                          (a digest only: the keys are never written anywhere)
#   ["queue", IMAGE]   -> {"mount": bool, "queued": [[seq, body hex], ...] of what the
#                          queue holds and reads back whole, "torn": [seq, ...] of
#                          records that do not, "dropped": the queue's own losses not yet
#                          reported (ranges [first, last, reason], or a count)}
import hashlib
import json
import os
import sys
import vfs
from binascii import hexlify

_BLOCK = 4096      # as node_runtime/_simflash.py
_PROG = 256
_MOUNT = "/flash"


class ReadOnlyImage:
    """MicroPython's extended block device over an image file; writes stay in RAM."""

    def __init__(self, path):
        self._f = open(path, "rb")
        self._f.seek(0, 2)
        self._count = self._f.tell() // _BLOCK
        self._written = {}

    def close(self):
        self._f.close()

    def _block(self, block):
        b = self._written.get(block)
        if b is None:
            self._f.seek(block * _BLOCK)
            b = bytearray(self._f.read(_BLOCK))
            self._written[block] = b
        return b

    def readblocks(self, block, buf, offset=0):
        b = self._written.get(block)
        if b is None:
            self._f.seek(block * _BLOCK + offset)
            self._f.readinto(buf)
        else:
            buf[:] = b[offset:offset + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        if offset is None:
            for i in range(len(buf) // _BLOCK):
                self._written[block + i] = bytearray(buf[i * _BLOCK:(i + 1) * _BLOCK])
            return
        b = self._block(block)
        b[offset:offset + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return self._count
        if op == 5:
            return _BLOCK
        if op == 6:
            self._written[arg] = bytearray(b"\xff" * _BLOCK)
        return 0


def _mount(image):
    dev = ReadOnlyImage(image)
    try:
        vfs.mount(vfs.VfsLfs2(dev, progsize=_PROG), _MOUNT)
    except OSError:
        dev.close()
        return None
    os.chdir(_MOUNT)
    return dev


def _unmount(dev):
    os.chdir("/")
    vfs.umount(_MOUNT)
    dev.close()


def _digest(path):
    try:
        with open(path, "rb") as f:
            return hexlify(hashlib.sha256(f.read()).digest()).decode()
    except OSError:
        return None


def config(image):
    from node import config_store
    dev = _mount(image)
    if dev is None:
        return {"mount": False}
    try:
        copies = [[c[0], c[1]] for c in config_store._copies()]
        return {"mount": True, "config": config_store.load(), "copies": copies,
                "files": {name: _digest(name) for name in ("keys.json", "board.json")}}
    finally:
        _unmount(dev)


def queue(image):
    from node import queue as q
    dev = _mount(image)
    if dev is None:
        return {"mount": False}
    try:
        rq = q.ReadingQueue(1 << 20)    # the limit matters only to a push
        queued, torn = [], []
        if hasattr(rq, "seqs"):
            # The ring (firmware/node/queue.py): its scan already cut back what is torn
            # and listed it among the dropped ranges.
            wanted = rq.seqs()
            got = {}
            for seg in rq._segs:
                for seq, body in q._parse(q._read(q._DIR + "/" + seg[0]))[0]:
                    got[seq] = body
            for seq in wanted:
                if seq in got:
                    queued.append([seq, hexlify(got[seq]).decode()])
                else:
                    torn.append(seq)
        else:
            # One file per reading, named by its seq.
            for name in rq.pending():
                seq = int(name, 16)
                try:
                    queued.append([seq, hexlify(rq.read(name)).decode()])
                except q.TornReading:
                    torn.append(seq)
        dropped = rq.dropped()
        return {"mount": True, "queued": queued, "torn": torn, "dropped": dropped}
    finally:
        _unmount(dev)


_ASK = {"config": config, "queue": queue}

while True:
    line = sys.stdin.readline()
    if not line:
        break
    ask = json.loads(line)
    try:
        answer = _ASK[ask[0]](*ask[1:])
    except Exception as e:  # noqa: BLE001 - an answer, never a dead probe
        sys.print_exception(e, sys.stderr)
        answer = {"error": "%s: %s" % (type(e).__name__, e)}
    sys.stdout.write(json.dumps(answer) + "\n")
