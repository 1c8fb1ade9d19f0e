"""Store-and-forward queue of encoded readings on the flash: a ring of small segment
files under littlefs, with the losses it had to take kept for the node record.

    queue = ReadingQueue(limit=288)
    queue.push(seq, body)                    # False: unsendable, recorded as dropped
    for seq, body in queue.unsent(8): ...    # oldest first
    queue.mark_sent(last_seq, acked=True)    # they leave the ring

Layout (docs/architecture.md, "The queue on the flash"):
- `q/<n>`: segment files, n an increasing 8-hex-digit number. A record is appended
  to the newest segment as `len (1) | seq (4, big-endian) | body | CRC-32 (4)` of the
  rest; a new segment starts when the next record would take the file past
  _SEG_BYTES, so every segment stays inline in littlefs's directory metadata (one
  program of a 256-byte page per append, no block of its own to copy on write).
- `q/h0`, `q/h1`: the head state, written alternately with a CRC and a generation
  like the counters: `head` (records with a lower seq are gone), `sent` (records below
  it went out but no ACK has confirmed them yet), `next` (every seq below it was handed
  to the queue) and the dropped ranges not yet carried by a node record reported sent.
A segment is deleted once every record in it is below `head`.

Every seq the node takes passes through here: queued, or dropped with a reason, or
noted (a node record's own seq). A seq that skips ahead of `next` is a number a power
cut (or a failed wake) took before its reading was stored: reason 2. When the ring is
full the oldest give way (reason 1); a body no data rate can carry is reason 3. A record
whose CRC fails (cut short, or flash gone bad) is cut off with the rest of its segment:
what it held is a gap, reported like any other. The head state is written before the
files change, so a power cut at any instant repeats work, never loses a reading.
"""
import os
import struct
from binascii import crc32

from micropython import const

from node.flashfs import ensure_dir

_DIR = "q"
_HEADS = ("q/h0", "q/h1")
_MAGIC = b"QH"
_SEG_BYTES = const(192)      # inline in littlefs metadata: one 256-byte program per append
# The largest application payload of any EU868 data rate (242) less the envelope around
# the body (header up to 5, tag 8): a longer body can never be sent.
BODY_MAX = const(229)
_RANGES_MAX = const(24)      # dropped ranges kept; beyond, the two oldest merge

QUEUE_FULL = const(1)
POWER_CUT = const(2)
UNSENDABLE = const(3)


class TornReading(Exception):
    pass


def _pack_head(gen, head, sent, nxt, ranges):
    out = bytearray(_MAGIC)
    out += struct.pack(">IIIIB", gen, head, sent, nxt, len(ranges))
    for first, last, reason in ranges:
        out += struct.pack(">IIB", first, last, reason)
    out += struct.pack(">I", crc32(out))
    return bytes(out)


def _unpack_head(data):
    if len(data) < 23 or data[:2] != _MAGIC:
        return None
    if struct.unpack(">I", data[-4:])[0] != crc32(data[:-4]):
        return None
    gen, head, sent, nxt, n = struct.unpack(">IIIIB", data[2:19])
    if len(data) != 23 + 9 * n:
        return None
    ranges = []
    for i in range(n):
        ranges.append(list(struct.unpack(">IIB", data[19 + 9 * i:28 + 9 * i])))
    return gen, head, sent, nxt, ranges


def _u32(b, at):
    return (b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]


def _walk(data, bodies):
    """The whole records at the start of a segment: ([(seq, body)] if `bodies` else
    [seq], their bytes, whether the segment goes on past them (a record that is cut
    short or fails its CRC)."""
    out = []
    mv = memoryview(data)       # the CRC reads the record in place, not a copy of it
    pos = 0
    prev = -1
    while pos < len(data):
        n = data[pos]
        end = pos + 5 + n + 4
        if n == 0 or end > len(data):
            return out, pos, True
        if _u32(data, end - 4) != crc32(mv[pos:end - 4]):
            return out, pos, True
        seq = _u32(data, pos + 1)
        if seq <= prev:
            return out, pos, True
        out.append((seq, data[pos + 5:end - 4]) if bodies else seq)
        prev = seq
        pos = end
    return out, pos, False


def _parse(data):
    """[(seq, body)] of the whole records at the start of a segment, and whether the
    segment goes on past them."""
    recs, _, broken = _walk(data, True)
    return recs, broken


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


class ReadingQueue:
    def __init__(self, limit=288):
        self.limit = max(1, limit)
        ensure_dir(_DIR)
        self._load_head()
        self._scan()

    # --- the head state ------------------------------------------------------------
    def _load_head(self):
        best = None
        for path in _HEADS:
            st = _unpack_head(_read(path))
            if st is not None and (best is None or st[0] > best[0]):
                best = st
        if best is None:
            best = (0, 0, 0, 0, [])
        self._gen, self._head, self._sent, self._next, self._ranges = best

    def _save_head(self):
        self._gen += 1
        with open(_HEADS[self._gen % 2], "wb") as f:
            f.write(_pack_head(self._gen, self._head, self._sent, self._next, self._ranges))

    def _drop(self, first, last, reason):
        r = self._ranges
        for x in r:
            if x[2] == reason and x[1] + 1 == first:
                x[1] = last
                return
        r.append([first, last, reason])
        if len(r) > _RANGES_MAX:
            # Never silent: the two oldest become one range that covers both.
            r[1][0] = r[0][0]
            r[1][2] = r[0][2]
            del r[0]

    # --- the segments ----------------------------------------------------------------
    def _scan(self):
        """Read every segment: the live records' seqs, stale segments removed, a
        segment with a broken record cut back to its whole records."""
        names = [n for n in os.listdir(_DIR) if len(n) == 8]
        names.sort()
        self._segs = []          # [name, [seqs of live records], size in bytes, closed]
        lost = []
        prev_last = self._head - 1
        handed = self._next          # as the head state last knew it
        for i, name in enumerate(names):
            # Seqs only, not the bodies: a full ring is ~60 segments, read every wake.
            data = _read(_DIR + "/" + name)
            seqs, size, broken = _walk(data, False)
            if broken:
                # What followed the last whole record is lost, up to the next segment's
                # first record; in the newest segment, up to the last seq the head state
                # knew of (the next push reports any beyond).
                first = max(seqs[-1] if seqs else prev_last, prev_last) + 1
                last = handed - 1
                if i + 1 < len(names):
                    nseqs = _walk(_read(_DIR + "/" + names[i + 1]), False)[0]
                    last = nseqs[0] - 1 if nseqs else -1
                if first <= last:
                    lost.append((first, last))
            if seqs and seqs[-1] > prev_last:
                prev_last = seqs[-1]
            live = seqs if not seqs or seqs[0] >= self._head else [q for q in seqs if q >= self._head]
            if not live:
                self._remove(name)
                continue
            if broken:
                self._rewrite(name, _parse(data)[0])
            self._segs.append([name, live, size, broken])
            if live[-1] + 1 > self._next:
                self._next = live[-1] + 1
        if lost:
            # Reported before the next write can change the files again.
            for first, last in lost:
                self._drop(first, last, POWER_CUT)
            self._save_head()

    def _rewrite(self, name, recs):
        with open(_DIR + "/" + name, "wb") as f:
            for seq, body in recs:
                f.write(self._record(seq, body))

    def _record(self, seq, body):
        rec = bytearray(5 + len(body))
        rec[0] = len(body)
        struct.pack_into(">I", rec, 1, seq)
        rec[5:] = body
        return bytes(rec) + struct.pack(">I", crc32(rec))

    def _remove(self, name):
        try:
            os.remove(_DIR + "/" + name)
        except OSError:
            pass

    def _forget_below_head(self):
        while self._segs and self._segs[0][1][-1] < self._head:
            self._remove(self._segs.pop(0)[0])
        if self._segs:
            seqs = self._segs[0][1]
            while seqs[0] < self._head:
                seqs.pop(0)

    # --- what the node does with it ------------------------------------------------
    def __len__(self):
        return sum(len(s[1]) for s in self._segs)

    def next_seq(self):
        """Every seq below this one was handed to the queue."""
        return self._next

    def unsent_count(self):
        return sum(1 for s in self._segs for q in s[1] if q >= self._sent)

    def seqs(self):
        """Seqs of the records in the ring, oldest first (sent but unconfirmed too)."""
        return [q for s in self._segs for q in s[1]]

    def push(self, seq, body):
        """Queue a reading. False if no data rate could ever carry it: then it is
        recorded as dropped (unsendable) instead. ValueError for a seq that was
        already handed to the queue (nothing is changed)."""
        if seq < self._next:
            raise ValueError("seq %d is not above %d, the last one queued" % (seq, self._next - 1))
        if not body:
            raise ValueError("empty body")
        changed = False
        if seq > self._next:
            self._drop(self._next, seq - 1, POWER_CUT)
            changed = True
        if len(body) > BODY_MAX:
            self._drop(seq, seq, UNSENDABLE)
            self._next = seq + 1
            self._save_head()
            return False
        over = len(self) + 1 - self.limit
        if over > 0:
            self._give_way(over)
            changed = True
        if changed:
            # `next` stays at seq: a cut before the append below reports it lost.
            self._next = seq
            self._save_head()
            self._forget_below_head()
        rec = self._record(seq, body)
        tail = self._segs[-1] if self._segs else None
        if tail is None or tail[3] or tail[2] + len(rec) > _SEG_BYTES:
            name = "%08x" % (int(tail[0], 16) + 1 if tail else self._first_free())
            tail = [name, [], 0, False]
            self._segs.append(tail)
        with open(_DIR + "/" + tail[0], "ab") as f:
            f.write(rec)
        tail[1].append(seq)
        tail[2] += len(rec)
        self._next = seq + 1
        return True

    def _first_free(self):
        # The ring is empty: any name above the ones a cut may have left behind.
        names = [n for n in os.listdir(_DIR) if len(n) == 8]
        return max([int(n, 16) for n in names] + [-1]) + 1

    def _give_way(self, n):
        seqs = []               # the oldest n, without a list of the whole ring
        for seg in self._segs:
            for q in seg[1]:
                if len(seqs) == n:
                    break
                seqs.append(q)
        first = prev = seqs[0]
        for q in seqs[1:]:
            if q != prev + 1:
                self._drop(first, prev, QUEUE_FULL)
                first = q
            prev = q
        self._drop(first, prev, QUEUE_FULL)
        self._head = prev + 1
        if self._sent < self._head:
            self._sent = self._head

    def note(self, seq):
        """A seq taken for something that is not queued (a node record)."""
        if seq < self._next:
            raise ValueError("seq %d is not above %d, the last one queued" % (seq, self._next - 1))
        if seq > self._next:
            self._drop(self._next, seq - 1, POWER_CUT)
        self._next = seq + 1
        self._save_head()

    def unsent(self, n):
        """[(seq, body)] of up to n records not yet sent, oldest first."""
        out = []
        for seg in self._segs:
            if len(out) >= n:
                break
            if seg[1][-1] < self._sent:
                continue
            recs, broken = _parse(_read(_DIR + "/" + seg[0]))
            if [q for q, _ in recs if q >= self._head] != seg[1]:
                # It no longer reads back as scanned (the flash went bad): the scan
                # reports what it lost and cuts it back; the caller asks again.
                self._scan()
                raise TornReading("segment %s no longer reads back whole" % seg[0])
            for seq, body in recs:
                if seq >= self._sent and len(out) < n:
                    out.append((seq, body))
        return out

    def mark_sent(self, last_seq, acked, reported=()):
        """Records up to `last_seq` went out; `acked`: an ACK confirmed everything sent
        so far, which then leaves the ring. `reported`: dropped ranges a node record in
        that frame carried, forgotten now."""
        if last_seq is not None and last_seq + 1 > self._sent:
            self._sent = last_seq + 1
        if acked:
            self._head = self._sent
        for r in reported:
            self._forget(r)
        self._save_head()
        self._forget_below_head()

    def rewind(self):
        """No ACK came: what went out since the last one is sent again."""
        if self._sent != self._head:
            self._sent = self._head
            self._save_head()

    def dropped(self):
        """Dropped ranges [first, last, reason] not yet reported, oldest first."""
        return [list(r) for r in self._ranges]

    def _forget(self, done):
        first, last, reason = done
        keep = []
        for r in self._ranges:
            if r[2] != reason or r[1] < first or r[0] > last:
                keep.append(r)
                continue
            if r[0] < first:
                keep.append([r[0], first - 1, reason])
            if r[1] > last:
                keep.append([last + 1, r[1], reason])
        self._ranges = keep
