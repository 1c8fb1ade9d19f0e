"""Payload envelope on the host, byte-identical to firmware/payload/envelope.py.

    frame = seal(key, dev_eui, counter, body)                # uplink
    counter, body = unseal(key, dev_eui, frame, direction=0)

Frame = header || AES-CCM ciphertext || 8-byte tag, with AES-CCM-16-64-128
(RFC 3610, M = 8, L = 2; COSE algorithm 10) and the header as associated data.
The byte layout is documented in docs/payload.md; tests/vectors holds examples.
"""
from __future__ import annotations

from Crypto.Cipher import AES

VERSION = 1
UPLINK = 0
DOWNLINK = 1
TAG_LEN = 8
KEY_LEN = 16
DEV_EUI_LEN = 8
COUNTER_MAX = 0xFFFFFFFF
MIN_FRAME = 1 + 1 + 1 + TAG_LEN  # header byte, 1 counter byte, 1 body byte, tag


class EnvelopeError(ValueError):
    """A frame that cannot be opened, or arguments that cannot make one.

    The message says what was wrong; it never contains key material.
    """


def header(counter: int) -> bytes:
    """Byte 0 (version, counter size, flags) and the counter in the fewest bytes."""
    if not isinstance(counter, int) or not 0 <= counter <= COUNTER_MAX:
        raise EnvelopeError(f"counter must be an integer 0..{COUNTER_MAX}, got {counter!r}")
    n = max(1, (counter.bit_length() + 7) // 8)
    return bytes([(VERSION << 5) | ((n - 1) << 3)]) + counter.to_bytes(n, "big")


def nonce(dev_eui: bytes, counter: int, direction: int) -> bytes:
    """DevEUI (8 bytes, MSB first) || counter (4 bytes, big-endian) || direction."""
    if len(dev_eui) != DEV_EUI_LEN:
        raise EnvelopeError(f"DevEUI must be {DEV_EUI_LEN} bytes, got {len(dev_eui)}")
    if direction not in (UPLINK, DOWNLINK):
        raise EnvelopeError(f"direction must be 0 (uplink) or 1 (downlink), got {direction!r}")
    return bytes(dev_eui) + counter.to_bytes(4, "big") + bytes([direction])


def parse_header(frame: bytes) -> tuple[int, int, int, int]:
    """Return (version, flags, counter, header_len) without checking the tag.

    Raises EnvelopeError if the frame is too short for its header or has an
    unknown version (its layout is then unknown); flags are returned as found.
    """
    if len(frame) < 1:
        raise EnvelopeError("truncated: frame is 0 bytes")
    b0 = frame[0]
    version = b0 >> 5
    if version != VERSION:
        raise EnvelopeError(f"unknown version {version} (this decoder reads version {VERSION})")
    header_len = 2 + ((b0 >> 3) & 0x03)
    if len(frame) < header_len:
        raise EnvelopeError(
            f"truncated: frame is {len(frame)} bytes, its header alone needs {header_len}")
    counter = int.from_bytes(frame[1:header_len], "big")
    return version, b0 & 0x07, counter, header_len


def _cipher(key: bytes, nonce_: bytes):
    if len(key) != KEY_LEN:
        # Only the length: the key itself must never reach a message or a log.
        raise EnvelopeError(f"key must be {KEY_LEN} bytes, got {len(key)}")
    return AES.new(bytes(key), AES.MODE_CCM, nonce=nonce_, mac_len=TAG_LEN)


def seal(key: bytes, dev_eui: bytes, counter: int, body: bytes, direction: int = UPLINK) -> bytes:
    """Return header || ciphertext || tag for a body of at least 1 byte."""
    if len(body) < 1:
        raise EnvelopeError("body must not be empty")
    h = header(counter)
    cipher = _cipher(key, nonce(dev_eui, counter, direction))
    cipher.update(h)
    ciphertext, tag = cipher.encrypt_and_digest(bytes(body))
    return h + ciphertext + tag


def unseal(key: bytes, dev_eui: bytes, frame: bytes, direction: int = UPLINK) -> tuple[int, bytes]:
    """Return (counter, body) of an authentic frame, else raise EnvelopeError.

    Replay is the caller's check: accept only a counter above the last one
    accepted for this device.
    """
    frame = bytes(frame)
    _, flags, counter, header_len = parse_header(frame)
    if flags:
        raise EnvelopeError(f"reserved flags set (0x{flags:x}); version {VERSION} requires 0")
    if len(frame) < header_len + 1 + TAG_LEN:
        raise EnvelopeError(
            f"truncated: frame is {len(frame)} bytes, at least {header_len + 1 + TAG_LEN} "
            f"needed for a {header_len}-byte header, a body and the {TAG_LEN}-byte tag")
    cipher = _cipher(key, nonce(dev_eui, counter, direction))
    cipher.update(frame[:header_len])
    try:
        body = cipher.decrypt_and_verify(frame[header_len:-TAG_LEN], frame[-TAG_LEN:])
    except ValueError:
        raise EnvelopeError(
            "bad tag: wrong key, wrong DevEUI or direction, or the frame was altered") from None
    return counter, body
