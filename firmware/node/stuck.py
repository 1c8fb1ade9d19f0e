"""Telling a part that repeats itself from one that measures.

    if repeats("sht4x", sensor.raw()): raise SensorError("sht4x", "stuck")

A measuring part's raw words carry noise, so two wakes with identical raw bytes mean a
frozen part or bus. The last raw bytes of each part are kept on the flash.
"""
from node.flashfs import ensure_dir

_DIR = "state"


def repeats(part, raw):
    path = "%s/raw_%s" % (_DIR, part)
    try:
        with open(path, "rb") as f:
            same = f.read() == raw
    except OSError:
        same = False
    if not same:
        ensure_dir(_DIR)
        with open(path, "wb") as f:
            f.write(raw)
    return same
