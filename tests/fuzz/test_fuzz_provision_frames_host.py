"""Fuzz: the host's provisioning frame reader (host_tools/serial_link.py `FrameReader`) over
arbitrary byte streams, mutated frames and garbage around real ones, fed in random pieces.
It raises nothing (it documents no error: a damaged frame is a BadFrame event); a Frame
comes out only where the stream holds one whose LEN and CRC are right, the same frames in
any chunking; a real frame after any garbage is still found; the text it keeps is what
came outside frames and never holds 0xFE."""
from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from fuzzkit import EXAMPLES, fuzz_settings, mutate
from host_tools import serial_link as sl

CODES = [sl.STATUS, sl.GET_CONFIG, sl.SELFTEST, sl.LOG, sl.SET_IDS, sl.SET_APP_KEY,
         sl.SET_PAYLOAD_KEY, sl.SET_INTERVAL, sl.SET_SITE, sl.SET_OPTIONS, sl.LOCK, sl.CHALLENGE,
         sl.UNLOCK, sl.ERASE, sl.BYE, *sl.STATUS_NAMES]
# Payloads heavy in the bytes that need escaping, so that escapes get cut and damaged.
payloads = st.one_of(
    st.binary(max_size=64),
    st.lists(st.sampled_from(sorted(sl.ESCAPED) + [0x00, 0x20, 0x7B, 0xFF]), max_size=40).map(bytes),
    st.sampled_from([b'{"proto": 1, "idle_s": 60}', b"ERASE", b"flash or bus error"]),
)
frames = st.builds(sl.encode, st.integers(0, 255), st.sampled_from(CODES), payloads)
last_frame = st.one_of(st.none(), frames, frames, frames)
# Text a node prints between frames (a log line, a traceback) and line noise.
text = st.one_of(st.binary(max_size=40), st.sampled_from(
    [b"", b"\r\n", b"OK", b">>> ", b"Traceback (most recent call last):\r\n", b"\xfd", b"\xfe"]))
pieces = st.lists(st.one_of(frames, frames.flatmap(mutate), text, st.binary(max_size=80)),
                  max_size=6)


def expected_frames(stream: bytes) -> list[tuple[int, int, bytes]]:
    """The frames in `stream` as the protocol defines them (docs/provisioning.md), read
    whole rather than byte by byte: after each 0xFE, the bytes unescaped (0xFD: next byte
    XOR 0x20) up to LEN + 6; a frame when LEN <= 2048, all of them came before the next
    0xFE, and the CRC over LEN..PAYLOAD matches."""
    out = []
    for segment in stream.split(bytes((sl.SOF,)))[1:]:
        body, it = bytearray(), iter(segment)
        need = None
        for b in it:
            if b == sl.ESC:
                b = next(it, None)
                if b is None:
                    break
                b ^= 0x20
            body.append(b)
            if len(body) == 2:
                n = int.from_bytes(body, "big")
                if n > sl.MAX_PAYLOAD:
                    break
                need = n + 6
            if len(body) == need:
                if sl.crc16(bytes(body[:-2])) == int.from_bytes(body[-2:], "big"):
                    out.append((body[2], body[3], bytes(body[4:-2])))
                break
    return out


def read(stream: bytes, cuts: list[int]):
    """Feed `stream` cut at `cuts`; the events and the bytes kept as text outside frames."""
    reader = sl.FrameReader()
    events, at = [], 0
    for cut in sorted(cuts) + [len(stream)]:
        events += reader.feed(stream[at:cut])
        at = max(at, cut)
    return events, bytes(reader.text)


def test_frame_reader_takes_only_whole_frames_in_any_chunking_and_resynchronises():
    seen = {"inputs": 0, "frames": 0, "bad": 0}

    @fuzz_settings()
    @given(pieces, last_frame, st.data())
    def run(parts, last, data):
        seen["inputs"] += 1
        stream = b"".join(parts) + (last or b"")
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
        events, kept = read(stream, cuts)
        whole, whole_text = read(stream, [])
        assert events == whole and kept == whole_text, "the chunking changed what was read"
        got = [(e.seq, e.code, e.payload) for e in events if isinstance(e, sl.Frame)]
        assert got == expected_frames(stream), f"stream {stream.hex()}"
        assert all(isinstance(e, (sl.Frame, sl.BadFrame)) for e in events)
        assert sl.SOF not in kept
        if sl.SOF not in stream:
            assert not events and kept == stream     # no frame began: all of it is console text
        if last is not None:
            # Whatever came before, the real frame at the end is found, and is the last event.
            assert isinstance(events[-1], sl.Frame), f"stream {stream.hex()}: {events[-1:]}"
            assert sl.encode(events[-1].seq, events[-1].code, events[-1].payload) == last
        seen["frames"] += len(got)
        seen["bad"] += sum(isinstance(e, sl.BadFrame) for e in events)

    run()
    print(f"\nhost FrameReader: {seen['inputs']} inputs, {seen['frames']} frames and "
          f"{seen['bad']} damaged frames reported")
    assert seen["inputs"] >= EXAMPLES


def test_frame_reader_takes_the_longest_frame_and_refuses_a_longer_one():
    # The LEN limit (2048), not fuzzed above: a 2 KB frame per input would cost the most.
    for n in (sl.MAX_PAYLOAD - 1, sl.MAX_PAYLOAD):
        frame = sl.encode(9, sl.OK, bytes([n % 251]) * n)
        for cuts in ([], [1, 2, 3, 1000]):
            events, _ = read(b"junk" + frame, cuts)
            assert events == [sl.Frame(9, sl.OK, bytes([n % 251]) * n)]
    body = struct.pack(">HBB", sl.MAX_PAYLOAD + 1, 9, sl.OK) + bytes(sl.MAX_PAYLOAD + 1)
    events, _ = read(bytes((sl.SOF,)) + sl.escape(body + struct.pack(">H", sl.crc16(body))), [])
    assert events == [sl.BadFrame(f"a frame announcing {sl.MAX_PAYLOAD + 1} bytes")]
