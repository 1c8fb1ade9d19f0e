"""Payload envelope: header || AES-CCM ciphertext || 8-byte tag (docs/payload.md).

    frame = envelope.seal(key, dev_eui, counter, body)              # uplink
    counter, body = envelope.unseal(key, dev_eui, frame, direction)

Header byte 0: version (bits 7..5), counter bytes - 1 (bits 4..3), flags
(bits 2..0, reserved, zero); then the counter big-endian in 1..4 bytes.
The header is in clear so a decoder without state can rebuild the nonce, and
authenticated as CCM associated data (RFC 3610 s2.2) so it cannot be changed.
Nonce = DevEUI (8) || counter (4, big-endian) || direction (1).
"""
from micropython import const

from payload import ccm

VERSION = const(1)
UPLINK = const(0)
DOWNLINK = const(1)
TAG_LEN = const(8)
MIN_FRAME = const(11)  # header byte, 1 counter byte, 1 body byte, tag
COUNTER_MAX = const(0xFFFFFFFF)
_DEV_EUI_LEN = const(8)
_VERSION_SHIFT = const(5)
_SIZE_SHIFT = const(3)
_SIZE_MASK = const(0x03)
_FLAGS_MASK = const(0x07)


def _nonce(dev_eui, counter, direction):
    if len(dev_eui) != _DEV_EUI_LEN:
        raise ValueError("DevEUI must be 8 bytes")
    if direction != UPLINK and direction != DOWNLINK:
        raise ValueError("direction must be 0 (uplink) or 1 (downlink)")
    return bytes(dev_eui) + bytes((
        (counter >> 24) & 0xFF, (counter >> 16) & 0xFF,
        (counter >> 8) & 0xFF, counter & 0xFF, direction))


def header(counter):
    """The clear header for counter: byte 0 then the counter in the fewest bytes."""
    if counter < 0 or counter > COUNTER_MAX:
        raise ValueError("counter must be 0..2**32-1")
    n = 1
    while n < 4 and counter >> (8 * n):
        n += 1
    h = bytearray(1 + n)
    h[0] = (VERSION << _VERSION_SHIFT) | ((n - 1) << _SIZE_SHIFT)
    for i in range(n):
        h[n - i] = (counter >> (8 * i)) & 0xFF
    return bytes(h)


def seal(key, dev_eui, counter, body, direction=UPLINK):
    """Return the sealed frame for body (at least 1 byte) under counter."""
    if len(body) < 1:
        raise ValueError("body must not be empty")
    h = header(counter)
    return h + ccm.encrypt(key, _nonce(dev_eui, counter, direction), h, body)


def unseal(key, dev_eui, frame, direction):
    """Return (counter, body); ValueError "truncated", "unknown version N",
    "reserved flags set" or "bad tag". The caller still checks the counter is
    above the last one it accepted."""
    if len(frame) < 1:
        raise ValueError("truncated")
    b0 = frame[0]
    version = b0 >> _VERSION_SHIFT
    if version != VERSION:
        raise ValueError("unknown version %d" % version)
    hlen = 2 + ((b0 >> _SIZE_SHIFT) & _SIZE_MASK)
    # Same order of checks as host_tools/envelope.py, so both give one reason.
    if len(frame) < hlen:
        raise ValueError("truncated")
    if b0 & _FLAGS_MASK:
        raise ValueError("reserved flags set")
    if len(frame) < hlen + 1 + TAG_LEN:
        raise ValueError("truncated")
    counter = 0
    for i in range(1, hlen):
        counter = (counter << 8) | frame[i]
    h = bytes(frame[:hlen])
    body = ccm.decrypt(key, _nonce(dev_eui, counter, direction), h,
                       memoryview(frame)[hlen:])
    return counter, body
