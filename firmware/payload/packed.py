"""Channels packed into one CBOR byte string of big-endian 16-bit integers (the water
and soil bodies, docs/payload.md): a null channel is the most negative int16 or the
largest uint16, so no value may be either.

    if not packed.fits(x, "h"): x = None
    data = packed.pack(">hH", (x, 3100))
"""
import struct

_NULL = {"h": -0x8000, "H": 0xFFFF}
_LIMITS = {"h": (-0x7FFF, 0x7FFF), "H": (0, 0xFFFE)}


def fits(value, code):
    lo, hi = _LIMITS[code]
    return lo <= value <= hi


def pack(fmt, values):
    """`fmt`: ">" and one struct code ("h" or "H") per value; a value is an int that
    fits its code, or None (null)."""
    return struct.pack(fmt, *[_NULL[c] if v is None else v for v, c in zip(values, fmt[1:])])
