"""A small CBOR codec (RFC 8949) for payload bodies.

    body = cbor.dumps([1, 0, 2137, 552, 3310])
    items = cbor.loads(body)   # ValueError with a reason if malformed

Subset: unsigned and negative integers up to 64 bits (major types 0, 1),
byte and text strings (2, 3), arrays (4), maps (5), false/true/null (7).
No floats (the wire carries scaled integers), no tags, no indefinite lengths.
dumps writes the preferred (shortest) head of RFC 8949 s4.2.1 and sorts map
keys by their encoded bytes (core deterministic encoding, s4.2.1), so the same
object always gives the same bytes, on the device and on the host.
"""
from micropython import const

MAX_DEPTH = const(8)
_UINT64_MAX = const(0xFFFFFFFFFFFFFFFF)
_MT_UINT = const(0)
_MT_NINT = const(1)
_MT_BYTES = const(2)
_MT_TEXT = const(3)
_MT_ARRAY = const(4)
_MT_MAP = const(5)
_MT_SIMPLE = const(7)
_FALSE = const(0xF4)
_TRUE = const(0xF5)
_NULL = const(0xF6)


def _head(out, major, n):
    # Shortest argument encoding: 0..23 inline, else 1, 2, 4 or 8 bytes (RFC 8949 s3).
    mt = major << 5
    if n < 24:
        out.append(mt | n)
        return
    if n < 0x100:
        out.append(mt | 24)
        size = 1
    elif n < 0x10000:
        out.append(mt | 25)
        size = 2
    elif n < 0x100000000:
        out.append(mt | 26)
        size = 4
    else:
        out.append(mt | 27)
        size = 8
    shift = (size - 1) * 8
    while shift >= 0:
        out.append((n >> shift) & 0xFF)
        shift -= 8


def _enc(obj, out, depth):
    if depth > MAX_DEPTH:
        raise ValueError("nesting deeper than %d" % MAX_DEPTH)
    # bool before int: on CPython bool is an int subclass.
    if obj is None:
        out.append(_NULL)
    elif obj is False:
        out.append(_FALSE)
    elif obj is True:
        out.append(_TRUE)
    elif isinstance(obj, int):
        if obj >= 0:
            if obj > _UINT64_MAX:
                raise ValueError("integer does not fit 64 bits")
            _head(out, _MT_UINT, obj)
        else:
            if -1 - obj > _UINT64_MAX:
                raise ValueError("integer does not fit 64 bits")
            _head(out, _MT_NINT, -1 - obj)
    elif isinstance(obj, (bytes, bytearray)):
        _head(out, _MT_BYTES, len(obj))
        out.extend(obj)
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        _head(out, _MT_TEXT, len(b))
        out.extend(b)
    elif isinstance(obj, (list, tuple)):
        _head(out, _MT_ARRAY, len(obj))
        for item in obj:
            _enc(item, out, depth + 1)
    elif isinstance(obj, dict):
        pairs = []
        for k in obj:
            kb = bytearray()
            _enc(k, kb, depth + 1)
            pairs.append((bytes(kb), obj[k]))
        pairs.sort(key=lambda p: p[0])
        _head(out, _MT_MAP, len(pairs))
        for kb, v in pairs:
            out.extend(kb)
            _enc(v, out, depth + 1)
    else:
        raise TypeError("cannot encode %s to CBOR" % type(obj).__name__)


def dumps(obj):
    """Encode obj; TypeError for an unsupported type, ValueError if out of range."""
    out = bytearray()
    _enc(obj, out, 0)
    return bytes(out)


def _arg(data, i, ai):
    # Returns (argument, next index); definite lengths only (RFC 8949 s3).
    if ai < 24:
        return ai, i
    if ai > 27:
        if ai == 31:
            raise ValueError("indefinite length not supported")
        raise ValueError("reserved additional information %d" % ai)
    size = 1 << (ai - 24)
    if i + size > len(data):
        raise ValueError("truncated")
    n = 0
    for j in range(i, i + size):
        n = (n << 8) | data[j]
    return n, i + size


def _dec(data, i, depth):
    if depth > MAX_DEPTH:
        raise ValueError("nesting deeper than %d" % MAX_DEPTH)
    if i >= len(data):
        raise ValueError("truncated")
    ib = data[i]
    major = ib >> 5
    ai = ib & 0x1F
    i += 1
    if major == _MT_SIMPLE:
        if ib == _FALSE:
            return False, i
        if ib == _TRUE:
            return True, i
        if ib == _NULL:
            return None, i
        if 25 <= ai <= 27:
            raise ValueError("floats not supported")
        raise ValueError("unsupported simple value 0x%02x" % ib)
    if major == 6:
        raise ValueError("tags not supported")
    n, i = _arg(data, i, ai)
    if major == _MT_UINT:
        return n, i
    if major == _MT_NINT:
        return -1 - n, i
    if major == _MT_BYTES or major == _MT_TEXT:
        if i + n > len(data):
            raise ValueError("truncated")
        b = bytes(data[i:i + n])
        if major == _MT_BYTES:
            return b, i + n
        try:
            return b.decode("utf-8"), i + n
        except Exception:
            raise ValueError("invalid UTF-8 in text string")
    # Every item takes at least one byte: a count beyond the rest is truncated
    # data, and checking first keeps a forged count from looping for long.
    if major == _MT_ARRAY:
        if n > len(data) - i:
            raise ValueError("truncated")
        items = []
        for _ in range(n):
            v, i = _dec(data, i, depth + 1)
            items.append(v)
        return items, i
    # major == _MT_MAP
    if 2 * n > len(data) - i:
        raise ValueError("truncated")
    m = {}
    for _ in range(n):
        k, i = _dec(data, i, depth + 1)
        if isinstance(k, (list, dict)):
            raise ValueError("map key is not a scalar")
        if k in m:
            raise ValueError("duplicate map key")
        v, i = _dec(data, i, depth + 1)
        m[k] = v
    return m, i


def loads(data):
    """Decode exactly one item; ValueError("truncated" / "trailing data" / ...) otherwise."""
    obj, i = _dec(data, 0, 0)
    if i != len(data):
        raise ValueError("trailing data")
    return obj
