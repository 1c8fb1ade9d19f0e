"""The provisioning protocol's frames, and a link that speaks them to a node.

    with open_provisioning("/dev/ttyACM0") as link:     # Ctrl-C, raw REPL, serve()
        status = link.json(STATUS)
        link.request(SET_PAYLOAD_KEY, key)               # Reply(status, payload)

The node's side is firmware/node/provision.py; docs/provisioning.md describes both:
0xFE | escaped(LEN(2) | SEQ | CODE | PAYLOAD | CRC-16/CCITT-FALSE(2)), 0xFD escapes the
next byte (XOR 0x20). The CRC is crcmod's "crc-ccitt-false" (poly 0x1021, init 0xFFFF,
not reflected, no final XOR); tests check it against the firmware's own on the same
bytes.

A request whose frame the node could not trust (its SEQ-0 error reply), or whose reply
was lost or damaged, is sent again with the same SEQ: the node answers a repeated
frame from its last reply without doing the command twice.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import select
import struct
import time
from dataclasses import dataclass

import crcmod.predefined

crc16 = crcmod.predefined.mkCrcFun("crc-ccitt-false")

SOF = 0xFE
ESC = 0xFD
ESCAPED = frozenset(b"\x01\x02\x03\x04\x05\x0a\x0d\xfd\xfe")
MAX_PAYLOAD = 2048

STATUS, GET_CONFIG, SELFTEST, LOG = 0x01, 0x02, 0x03, 0x04
SET_IDS, SET_APP_KEY, SET_PAYLOAD_KEY = 0x10, 0x11, 0x12
SET_INTERVAL, SET_SITE, SET_OPTIONS = 0x13, 0x14, 0x15
LOCK, CHALLENGE, UNLOCK, ERASE, BYE = 0x20, 0x21, 0x22, 0x23, 0x2F

OK, READY, IDLE_END = 0x00, 0x01, 0x02
STATUS_NAMES = {
    0x00: "ok", 0x01: "ready", 0x02: "idle end", 0x81: "malformed", 0x82: "truncated",
    0x83: "oversize", 0x84: "bad CRC", 0x85: "unknown command", 0x86: "bad value",
    0x87: "locked", 0x88: "not ready", 0x89: "device error", 0x8A: "authentication failed",
    0x8B: "unsupported",
}
LINK_ERRORS = (0x81, 0x82, 0x83, 0x84)   # the node could not trust the frame: send again
UNLOCK_LABEL = b"citynodes-unlock"
SERVE = "import node.provision\nnode.provision.serve()"
CONNECT_TIMEOUT_S = 10


def escape(body: bytes) -> bytes:
    out = bytearray()
    for b in body:
        if b in ESCAPED:
            out += bytes((ESC, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def encode(seq: int, code: int, payload: bytes = b"") -> bytes:
    body = struct.pack(">HBB", len(payload), seq, code) + payload
    return bytes((SOF,)) + escape(body + struct.pack(">H", crc16(body)))


@dataclass
class Frame:
    seq: int
    code: int
    payload: bytes


@dataclass
class BadFrame:
    reason: str


class FrameReader:
    """Bytes from the node in; frames, damaged frames and the text between frames out."""

    def __init__(self):
        self.buf = bytearray()
        self.in_frame = False
        self.esc = False
        self.text = bytearray()       # what the node printed outside frames

    def feed(self, data: bytes) -> list:
        out = []
        for b in data:
            if b == SOF:
                if self.in_frame and self.buf:
                    out.append(BadFrame(f"a frame cut short after {len(self.buf)} bytes"))
                self.buf, self.in_frame, self.esc = bytearray(), True, False
                continue
            if not self.in_frame:
                self.text.append(b)
                continue
            if self.esc:
                self.esc = False
                b ^= 0x20
            elif b == ESC:
                self.esc = True
                continue
            self.buf.append(b)
            if len(self.buf) >= 2:
                n = int.from_bytes(self.buf[:2], "big")
                if n > MAX_PAYLOAD:
                    out.append(BadFrame(f"a frame announcing {n} bytes"))
                    self.in_frame = False
                elif len(self.buf) == n + 6:
                    self.in_frame = False
                    body, crc = bytes(self.buf[:-2]), int.from_bytes(self.buf[-2:], "big")
                    if crc16(body) != crc:
                        out.append(BadFrame("a frame whose CRC does not match"))
                    else:
                        out.append(Frame(body[2], body[3], body[4:]))
        return out

    def take_text(self) -> str:
        t, self.text = self.text, bytearray()
        return t.decode(errors="replace")


class LinkError(Exception):
    """The node did not answer as the protocol says."""


@dataclass
class Reply:
    status: int
    payload: bytes

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def reason(self) -> str:
        return self.payload.decode(errors="replace")

    def describe(self) -> str:
        return f"{STATUS_NAMES.get(self.status, hex(self.status))}: {self.reason}"


class FdStream:
    """Read/write on file descriptors (a pty, a pipe): what a Link runs over."""

    def __init__(self, rfd: int, wfd: int | None = None):
        self.rfd = rfd
        self.wfd = rfd if wfd is None else wfd

    def read(self, timeout: float) -> bytes:
        r, _, _ = select.select([self.rfd], [], [], max(0.0, timeout))
        if not r:
            return b""
        data = os.read(self.rfd, 4096)
        if not data:
            raise LinkError("the line closed")
        return data

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.wfd, view)
            view = view[n:]


class SerialStream:
    """A pyserial port as a stream."""

    def __init__(self, serial):
        self.serial = serial

    def read(self, timeout: float) -> bytes:
        self.serial.timeout = max(0.01, min(timeout, 0.2))
        data = self.serial.read(max(1, self.serial.in_waiting))
        return data

    def write(self, data: bytes) -> None:
        self.serial.write(data)
        self.serial.flush()


class Link:
    def __init__(self, stream, retries: int = 3):
        self.stream = stream
        self.reader = FrameReader()
        self.retries = retries
        self.seq = 0
        self.pending: list = []
        self.console: list[str] = []      # text the node printed while serving

    # --- frames ----------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        self.stream.write(data)

    def next_event(self, timeout: float):
        """The next Frame or BadFrame from the node, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            data = self.stream.read(left)
            if data:
                self.pending += self.reader.feed(data)
                text = self.reader.take_text()
                if text:
                    self.console.append(text)
        return self.pending.pop(0)

    def wait_ready(self, timeout: float = CONNECT_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next_event(deadline - time.monotonic())
            if ev is None:
                said = "".join(self.console).strip()
                raise LinkError("the node did not start its provisioning mode"
                                + (f"; it said: {said[-300:]}" if said else ""))
            if isinstance(ev, Frame) and ev.seq == 0 and ev.code == READY:
                return json.loads(ev.payload)

    def request(self, code: int, payload: bytes = b"", timeout: float = 20.0) -> Reply:
        """Send one command and return the node's reply (any status)."""
        self.seq = self.seq % 255 + 1
        frame = encode(self.seq, code, payload)
        for _attempt in range(self.retries + 1):
            self.stream.write(frame)
            deadline = time.monotonic() + timeout
            while True:
                ev = self.next_event(deadline - time.monotonic())
                if ev is None or isinstance(ev, BadFrame):
                    break                              # send the same frame again
                if ev.seq == self.seq:
                    return Reply(ev.code, ev.payload)
                if ev.seq == 0 and ev.code in LINK_ERRORS:
                    break                              # the node could not read ours
                if ev.seq == 0 and ev.code == IDLE_END:
                    raise LinkError("the node left provisioning mode (idle too long)")
                # a late answer to an earlier request: not ours
        raise LinkError(f"no answer from the node after {self.retries + 1} tries")

    def ok(self, code: int, payload: bytes = b"", timeout: float = 20.0) -> bytes:
        """The reply's payload; NodeRefused if the node answered with an error."""
        reply = self.request(code, payload, timeout)
        if not reply.ok:
            raise NodeRefused(code, reply)
        return reply.payload

    def json(self, code: int, payload: bytes = b"", timeout: float = 20.0):
        return json.loads(self.ok(code, payload, timeout))


class NodeRefused(Exception):
    def __init__(self, code: int, reply: Reply):
        super().__init__(reply.describe())
        self.code = code
        self.reply = reply


def unlock_tag(payload_key: bytes, dev_eui: bytes, challenge: bytes) -> bytes:
    """AES-CMAC (RFC 4493) over label | DevEUI | challenge: proof of the payload key
    that never puts the key on the line."""
    from Crypto.Cipher import AES
    from Crypto.Hash import CMAC
    return CMAC.new(payload_key, UNLOCK_LABEL + dev_eui + challenge, ciphermod=AES).digest()


class ProvisioningSession:
    """A node's console in provisioning mode: entered with mpremote's raw REPL (as
    `nodectl flash` does), left with BYE (the node resets and runs its wake cycle)."""

    def __init__(self, port: str, timeout: float = CONNECT_TIMEOUT_S):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport
        self.port = port
        self.closed = False
        if not os.path.exists(port):
            raise LinkError(f"there is no serial port {port}: nothing was changed. Check the "
                            f"cable and the port name (`mpremote connect list`), or start a "
                            f"virtual board with `nodectl board` and use the path it prints")
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.t = SerialTransport(port, baudrate=115200, timeout=1)
        except (TransportError, OSError) as e:
            raise LinkError(f"cannot open {port} ({e}): it may be in use by another program "
                            f"(mpremote, nodectl monitor, a terminal). Nothing was changed; "
                            f"close that program and run again") from None
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                # A soft reset, as mpremote does: a fresh heap for the session.
                self.t.enter_raw_repl(soft_reset=True, timeout_overall=timeout)
                self.t.exec_raw_no_follow(SERVE)
        except (TransportError, OSError) as e:
            self._close_port()
            raise LinkError(f"no MicroPython REPL answered on {port} within {timeout:g} s "
                            f"({e}). Nothing was changed. If the node is in deep sleep, press "
                            f"its RESET button and run the command again at once") from None
        self.link = Link(SerialStream(self.t.serial))
        try:
            self.hello = self.link.wait_ready(timeout)
        except LinkError as e:
            self.close(bye=False)
            raise LinkError(f"{e}. Nothing was changed. Is the firmware too old for "
                            f"provisioning (no node/provision)? Flash it: nodectl flash") from None

    def close(self, bye: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        if bye:
            try:
                self.link.request(BYE, timeout=5)
            except LinkError:
                pass
        else:
            with contextlib.suppress(Exception):
                self.t.serial.write(b"\x03")    # stop serve(): back to the REPL
        self._close_port()

    def _close_port(self) -> None:
        with contextlib.suppress(OSError):
            self.t.close()

    def __enter__(self) -> Link:
        return self.link

    def __exit__(self, *exc) -> None:
        self.close(bye=True)


def open_provisioning(port: str, timeout: float = CONNECT_TIMEOUT_S) -> ProvisioningSession:
    return ProvisioningSession(port, timeout)


def console_lines(port: str, seconds: float | None = None):
    """The node's console, line by line, as it prints them (`nodectl monitor`): nothing
    is sent to the node, so it runs on undisturbed. Ends after `seconds` (None: never)."""
    import serial
    if not os.path.exists(port):
        raise LinkError(f"there is no serial port {port}. Check the cable and the port name "
                        f"(`mpremote connect list`), or start a virtual board with `nodectl board`")
    try:
        ser = serial.Serial(port, 115200, timeout=0.2, exclusive=True)
    except (serial.SerialException, OSError) as e:
        raise LinkError(f"cannot open {port} ({e}): it may be in use by another program "
                        f"(mpremote, nodectl provision, a terminal); close it and run again") from None
    end = None if seconds is None else time.monotonic() + seconds
    partial = bytearray()
    try:
        while end is None or time.monotonic() < end:
            data = ser.read(max(1, ser.in_waiting))
            if not data:
                continue
            partial += data
            while b"\n" in partial:
                line, _, rest = bytes(partial).partition(b"\n")
                partial = bytearray(rest)
                yield line.rstrip(b"\r").decode(errors="replace")
    finally:
        ser.close()
    if partial:
        yield bytes(partial).rstrip(b"\r").decode(errors="replace")
