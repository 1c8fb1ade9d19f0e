"""Telling a part that repeats itself from one that measures.

    if repeats("sht4x", sensor.raw()): raise SensorError("sht4x", "stuck")
    ...
    stuck.save()        # once the kind has measured (node/wake.py)

A measuring part's raw words carry noise, so two wakes with identical raw bytes mean a
frozen part or bus. The last raw bytes of every part are kept on the flash in one file,
read at the first check of a wake and written once by save(): one littlefs read and one
write a wake, whatever the number of parts (a file per part cost two of each per part).

File: per part, name length (1 byte), name, raw length (2 bytes, big-endian), raw. A
file cut short by a power cut keeps the parts that are whole; a part whose raw is torn
cannot equal a whole reading, so a cut never makes a part look stuck.
"""
import os

from node.flashfs import ensure_dir

_DIR = "state"
_FILE = "state/raw"
_last = None        # {part: raw bytes} as the flash had them at this wake's first check
_now = {}           # the parts checked in this wake
_first = False      # no file yet: the first save removes the older firmware's files


def _load():
    parts = {}
    try:
        with open(_FILE, "rb") as f:
            data = f.read()
    except OSError:
        return None
    i = 0
    while i + 3 < len(data):
        n = data[i]
        name = data[i + 1:i + 1 + n]
        i += 1 + n
        if i + 2 > len(data):
            break
        m = (data[i] << 8) | data[i + 1]
        parts[name.decode()] = data[i + 2:i + 2 + m]
        i += 2 + m
    return parts


def repeats(part, raw):
    global _last, _first
    if _last is None:
        _last = _load()
        if _last is None:
            _last, _first = {}, True
    raw = bytes(raw)
    _now[part] = raw
    return _last.get(part) == raw


def save():
    """Write what this wake's parts read (the parts it did not check keep theirs)."""
    global _last, _first
    if not _now:
        return
    parts = dict(_last)
    parts.update(_now)
    out = bytearray()
    for name, raw in parts.items():
        b = name.encode()
        out.append(len(b))
        out += b
        out.append(len(raw) >> 8)
        out.append(len(raw) & 0xFF)
        out += raw
    ensure_dir(_DIR)
    with open(_FILE, "wb") as f:
        f.write(out)
    if _first:
        # Firmware before the single file kept a state/raw_<part> per part.
        for name in _now:
            try:
                os.remove("%s/raw_%s" % (_DIR, name))
            except OSError:
                pass
        _first = False
    _last = parts
    _now.clear()
