"""Fuzz: the AT transport (firmware/modems/at.py) and the RAK3172 driver's line handling
(firmware/modems/rak3172.py) on the real MicroPython, fed garbage and near-valid modem output
through a fake UART. Every call ends in its documented result or error (ATError/ATTimeout,
ModemError), never another exception or a hang; the event queue and the downlink list stay
within their bounds, and a downlink is only ever taken from a well-formed `+EVT:RX_` line."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzkit import BATCH, EXAMPLES, MicroPythonWorker, check, fuzz_settings

HARNESS = r"""
import time
from modems.at import AT, ATError, ATTimeout
from modems import rak3172
from modems.rak3172 import RAK3172, ModemError

class FuzzUart:
    def __init__(self, replies, chunk, timeout=50):
        self.replies = replies
        self.chunk = chunk
        self.timeout = timeout
        self.rx = b""
        if replies:
            self.rx = replies.pop(0)    # what was already there before the first command

    def write(self, data):
        if self.replies and self.replies[0][:1] != b"\x00":
            self.rx += self.replies.pop(0)
        return len(data)

    def any(self):
        return len(self.rx)

    def readline(self):
        if not self.rx and self.replies and self.replies[0][:1] == b"\x00":
            self.rx = self.replies.pop(0)[1:]     # a late reply: comes while the line is idle
        if not self.rx:
            time.sleep_ms(self.timeout)
            return None
        i = self.rx.find(b"\n")
        n = len(self.rx) if i < 0 else i + 1
        if self.chunk:
            n = min(n, self.chunk)
        out = self.rx[:n]
        self.rx = self.rx[n:]
        return out

def well_formed_rx(stream):
    # An independent reading of "+EVT:RX_<slot>:<rssi>:<snr>:<UNICAST|MULTICAST>:<port>:<hex>".
    n = 0
    for seg in stream.replace(b"\r", b"\n").split(b"\n"):
        line = bytes(b for b in seg if 32 <= b < 127)
        if not line.startswith(b"+EVT:RX_"):
            continue
        parts = line.split(b":")
        if len(parts) == 7:
            n += 1
    return n

def invariants(at, stream, prefixes):
    if len(at.events) > at._max_events:
        return "BUG event queue %d > bound %d" % (len(at.events), at._max_events)
    for e in at.events:
        ok = False
        for p in prefixes:
            if e.startswith(p):
                ok = True
        if not ok:
            return "BUG non-event line queued as an event: %r" % e
        for c in e:
            if not 32 <= ord(c) < 127:
                return "BUG unprintable character kept in %r" % e
    if len(at._partial) > 1100:
        return "BUG partial line grew to %d" % len(at._partial)
    return None

OPS = ("command", "wake", "join", "send", "data_rate", "joined", "configure", "scan")

def fuzz_one(data):
    op = OPS[data[0] % len(OPS)]
    chunk = data[1] % 80
    replies = []
    i = 2
    while i + 2 <= len(data):
        n = (data[i] << 8) | data[i + 1]
        replies.append(bytes(data[i + 2:i + 2 + n]))
        i += 2 + n
    stream = b"".join(replies)
    uart = FuzzUart(replies, chunk)
    if op == "command":
        prefixes = ("+EVT:", "Current Work Mode:")
        at = AT(uart, rak3172._STATUS_WORDS, event_prefixes=prefixes)
        try:
            lines = at.command("AT+DEVEUI=?", 1000)
            res = "ok %d" % len(lines)
            for l in lines:
                if not isinstance(l, str) or l in rak3172._STATUS_WORDS or l.startswith("+EVT:"):
                    return "BUG command returned line %r" % l
        except ATError as e:
            if e.status != "timeout" and e.status not in rak3172._STATUS_WORDS:
                return "BUG ATError with status %r" % e.status
            res = "rej ATError"
        strays = at.drain()
        for l in strays:
            if l.startswith("+EVT:"):
                return "BUG event handed out as a stray: %r" % l
        return invariants(at, stream, prefixes) or res
    m = RAK3172(uart)
    try:
        if op == "wake":
            r = m.wake(3)
            ok = r is None
        elif op == "join":
            r = m.join(5000)
            ok = r is True or r is False
        elif op == "send":
            r = m.send(2, b"\x01\x02", timeout_ms=5000)
            ok = r == rak3172.SENT or r == rak3172.NOT_ACKED
        elif op == "data_rate":
            r = m.data_rate()
            ok = isinstance(r, int)
        elif op == "joined":
            r = m.joined()
            ok = r is True or r is False
        elif op == "configure":
            r = m.configure(b"\x01" * 8, b"\x02" * 8, b"\x03" * 16)
            ok = r is None
        else:
            m._at.drain()
            r = m._scan()
            ok = r is None
        if not ok:
            return "BUG %s returned %r" % (op, r)
        res = "ok " + op
    except ModemError as e:
        if not 2 <= e.reason <= 8:
            return "BUG ModemError reason %r" % e.reason
        if e.reason == rak3172.RESTRICTED and e.wait_ms < 0:
            return "BUG negative duty-cycle wait %d ms" % e.wait_ms
        res = "rej ModemError %d" % e.reason
    m._scan()
    bad = invariants(m._at, stream, ("+EVT:", "Current Work Mode:"))
    if bad:
        return bad
    if len(m.downlinks) > 8:
        return "BUG %d downlinks kept" % len(m.downlinks)
    if m.downlinks and not well_formed_rx(stream):
        return "BUG downlink %r taken from no well-formed RX line" % (m.downlinks,)
    for port, payload in m.downlinks:
        if not isinstance(payload, bytes) or not isinstance(port, int):
            return "BUG downlink (%r, %r) accepted" % (port, payload)
        if not 0 <= port <= 255:
            return "BUG downlink port %d accepted" % port
    return res
"""

# Lines a RAK3172 really prints, and near misses of them.
LINES = [
    b"OK", b"AT_ERROR", b"AT_PARAM_ERROR", b"AT_BUSY_ERROR", b"AT_NO_NETWORK_JOINED",
    b"AT_COMMAND_NOT_FOUND", b"AT+DR=0", b"AT+DR=5", b"AT+DR=", b"AT+NJS=1", b"AT+NJS=0",
    b"AT+NWM=1", b"AT+BAND=4", b"AT+DEVEUI=0101010101010101", b"AT+CFM=0", b"AT+ADR=1",
    b"+EVT:JOINED", b"+EVT:JOIN_FAILED_RX_TIMEOUT", b"+EVT:JOIN FAILED", b"+EVT:TX_DONE",
    b"+EVT:SEND_CONFIRMED_OK", b"+EVT:SEND_CONFIRMED_FAILED(3)",
    b"+EVT:RX_1:-70:7:UNICAST:2:0A0B", b"+EVT:RX_2:-99:-3:MULTICAST:10:",
    b"+EVT:RX_1:-70:7:UNICAST:x:0A0B", b"+EVT:RX_1:-70:7:UNICAST:2:0A0", b"+EVT:RX_C:1:2",
    b"Restricted_Wait_95200_ms", b"Restricted_Wait__ms", b"Restricted_Wait_x_ms",
    b"Current Work Mode: LoRaWAN.", b"+EVT:", b"", b"AT+DR=9", b"AT+DR=-1", b"AT+DR=abc",
]

line = st.one_of(
    st.sampled_from(LINES),
    st.builds(lambda a, b: a + b, st.sampled_from(LINES), st.binary(max_size=12)),
    st.binary(max_size=40),
    st.sampled_from([b"+EVT:RX_", b"Restricted_Wait_", b"AT+DR="]).flatmap(
        lambda p: st.text("0123456789ABCDEF:-_xms ", max_size=30).map(lambda t: p + t.encode())),
)
eol = st.sampled_from([b"\r\n", b"\n", b"\r", b"", b"\r\r\n"])
STATUS = [b"OK", b"OK", b"OK", b"AT_BUSY_ERROR", b"AT_PARAM_ERROR", b"AT_ERROR",
          b"AT_NO_NETWORK_JOINED"]
reply = st.one_of(
    st.builds(lambda ls, s: b"".join(x + b"\r\n" for x in ls + [s]),
              st.lists(line, max_size=3), st.sampled_from(STATUS)),
    st.builds(lambda ls, s: b"".join(x + b"\r\n" for x in ls + [s]),
              st.lists(line, max_size=3), st.sampled_from(STATUS)),
    st.lists(st.tuples(line, eol).map(lambda t: t[0] + t[1]), max_size=6).map(b"".join),
    st.binary(max_size=200),
)


def encode(op: int, chunk: int, replies: list[bytes]) -> bytes:
    return bytes([op, chunk]) + b"".join(struct.pack(">H", len(r)) + r for r in replies)


OK = b"OK\r\n"
answer = st.one_of(st.just(OK), st.just(OK), reply)
# Near-real conversations: the answers a real modem gives, in order, with fuzzed ones mixed in.
conversation = st.one_of(
    # send: (already there), AT+DR=?, AT+CFM=0, AT+SEND, then the events
    st.builds(lambda dr, rest, ev: encode(3, 0, [b"", b"AT+DR=%s\r\nOK\r\n" % dr] + rest + [b"\x00" + ev]),
              st.sampled_from([b"0", b"5", b"7", b"9", b"-1", b"", b"x", b"12"]),
              st.lists(answer, min_size=2, max_size=2), reply),
    # join: (already there), AT+JOIN, then the events
    st.builds(lambda a, ev: encode(2, 0, [b"", a, b"\x00" + ev]), answer, reply),
    # data_rate / joined
    st.builds(lambda op, v, st_: encode(op, 0, [b"", b"%s\r\n%s\r\n" % (v, st_)]),
              st.sampled_from([4, 5]), line, st.sampled_from(STATUS)),
    # wake and configure: every command answered from the list
    st.builds(lambda op, rs: encode(op, 0, rs), st.sampled_from([1, 6]), st.lists(answer, max_size=14)),
)
fuzz_input = st.one_of(
    conversation,
    st.builds(encode, st.integers(0, 255), st.integers(0, 255), st.lists(reply, max_size=10)))


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = MicroPythonWorker(HARNESS, tmp_path_factory.mktemp("fuzz-at"))
    yield w
    w.close()


def test_at_transport_and_rak3172_survive_any_modem_output(worker):
    start = worker.inputs

    @fuzz_settings(BATCH)
    @given(st.lists(fuzz_input, min_size=BATCH, max_size=BATCH))
    def run(inputs):
        check(worker, inputs)

    run()
    ran = worker.inputs - start
    print(f"\nAT transport + RAK3172: {ran} inputs; known findings hit: {worker.known}\n  outcomes: {dict(sorted(worker.outcomes.items()))}")
    assert ran >= EXAMPLES
