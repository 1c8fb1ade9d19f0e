"""Fuzz: SDI-12 reply parsing (firmware/drivers/sdi12.py) and Modbus RTU reply validation
(firmware/drivers/modbus_rtu.py) on the real MicroPython, the sensor's replies replaced by
arbitrary and near-valid bytes through a fake UART. A call returns a valid value or raises
the driver's documented error (SensorError / ModbusError), never another exception or a
hang; a Modbus read returns registers only from a reply whose CRC, unit and function match."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzkit import BATCH, EXAMPLES, MicroPythonWorker, check, fuzz_settings

SDI12_HARNESS = r"""
import time
from drivers import SensorError
from drivers.sdi12 import SDI12, split_values, scaled, crc16, crc_ascii

class FuzzUart:
    # A one-wire adapter: hears its own command (echo), then the next scripted reply.
    def __init__(self, replies, echo):
        self.replies = replies
        self.echo = echo
        self.rx = b""
        self.timeout = 50

    def init(self, baudrate=1200, bits=7, parity=0, stop=1, timeout=50, timeout_char=50):
        self.timeout = timeout

    def flush(self):
        pass

    def sendbreak(self):
        pass

    def write(self, data):
        if self.echo:
            self.rx += bytes(data)
        if self.replies:
            self.rx += self.replies.pop(0)
        return len(data)

    def any(self):
        return len(self.rx)

    def read(self, n=None):
        if not self.rx:
            time.sleep_ms(self.timeout)
            return None
        n = len(self.rx) if n is None else n
        out = self.rx[:n]
        self.rx = self.rx[n:]
        return out

    def readline(self):
        if not self.rx:
            time.sleep_ms(self.timeout)
            return None
        i = self.rx.find(b"\n")
        n = len(self.rx) if i < 0 else i + 1
        out = self.rx[:n]
        self.rx = self.rx[n:]
        return out

OPS = ("measure", "measure_nocrc", "data", "start", "query", "identify", "ack", "split")

def valid_value(v):
    if not isinstance(v, bytes) or len(v) < 2 or v[0] not in b"+-":
        return False
    scaled(v, 2)      # what a kind does with it: must not raise
    return True

def fuzz_one(data):
    op = OPS[data[0] % len(OPS)]
    echo = bool(data[1] & 1)
    if op == "split":
        try:
            vals = split_values(data[2:])
        except ValueError:
            return "rej ValueError"
        for v in vals:
            if not valid_value(v):
                return "BUG split_values gave %r" % v
        return "ok split %d" % len(vals)
    replies = []
    i = 2
    while i + 1 <= len(data):
        n = data[i]
        replies.append(bytes(data[i + 1:i + 1 + n]))
        i += 1 + n
    bus = SDI12(FuzzUart(replies, echo), echo=echo, sequences=1)
    try:
        if op in ("measure", "measure_nocrc"):
            values, raw = bus.measure("0", crc=op == "measure")
            for v in values:
                if not valid_value(v):
                    return "BUG measure gave %r" % v
            if raw != b"".join(values):
                return "BUG raw %r" % raw
        elif op == "data":
            values = bus.data("0", 0)
            for v in values:
                if not valid_value(v):
                    return "BUG data gave %r" % v
        elif op == "start":
            seconds, n = bus.start("0")
            if not (0 <= seconds <= 999 and 0 <= n <= 9):
                return "BUG start gave %r" % ((seconds, n),)
        elif op == "query":
            a = bus.query_address()
            if not isinstance(a, str) or len(a) != 1:
                return "BUG address %r" % a
        elif op == "identify":
            if not isinstance(bus.identify("0"), bytes):
                return "BUG identify"
        else:
            if bus.acknowledge("0") not in (True, False):
                return "BUG acknowledge"
        return "ok " + op
    except SensorError as e:
        if e.part != "sdi12" or not isinstance(e.reason, str):
            return "BUG SensorError %r" % e
        return "rej SensorError"
"""

MODBUS_HARNESS = r"""
import time
from drivers.modbus_rtu import ModbusRTU, ModbusError, crc16

class FuzzUart:
    def __init__(self, reply, chunk):
        self.reply = reply
        self.chunk = chunk
        self.rx = b""
        self.written = []

    def write(self, data):
        self.written.append(bytes(data))
        self.rx += self.reply
        self.reply = b""
        return len(data)

    def flush(self):
        pass

    def any(self):
        return len(self.rx)

    def read(self, n=None):
        if not self.rx:
            time.sleep_ms(5)
            return None
        n = len(self.rx) if n is None else n
        if self.chunk:
            n = min(n, self.chunk)
        out = self.rx[:n]
        self.rx = self.rx[n:]
        return out

def fuzz_one(data):
    op = data[0] % 3
    unit = data[1] or 1
    count = 1 + data[2] % 125
    chunk = data[3] % 8
    reply = bytes(data[4:])
    bus = ModbusRTU(FuzzUart(reply, chunk), baudrate=9600, timeout_ms=50)
    try:
        if op == 2:
            r = bus.write_single(unit, 0x10, 0x1234)
            if r is not None or reply[:6] != bus._tx[:6]:
                return "BUG write accepted echo %r" % reply[:8]
            return "ok write"
        r = bus.read_holding(unit, 0, count) if op == 0 else bus.read_input(unit, 0, count)
    except ModbusError as e:
        if not isinstance(e.reason, str):
            return "BUG ModbusError %r" % e
        if e.exception_code is not None and not 0 <= e.exception_code <= 255:
            return "BUG exception code %r" % e.exception_code
        return "rej ModbusError"
    # Accepted: the reply must be exactly what the slave was asked for, under a good CRC.
    n = 5 + 2 * count
    fc = 3 if op == 0 else 4
    if (len(reply) < n or reply[0] != unit or reply[1] != fc or reply[2] != 2 * count
            or crc16(reply, n - 2) != reply[n - 2] | (reply[n - 1] << 8)):
        return "BUG read accepted reply %r" % reply
    if len(r) != count:
        return "BUG %d registers for %d" % (len(r), count)
    for i in range(count):
        if r[i] != (reply[3 + 2 * i] << 8) | reply[4 + 2 * i]:
            return "BUG register %d" % i
    return "ok read %d" % count
"""


# --- SDI-12 inputs -----------------------------------------------------------------------
def _crc16(buf: bytes) -> int:
    crc = 0
    for b in buf:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def _with_crc(line: bytes) -> bytes:
    c = _crc16(line)
    return line + bytes((0x40 | (c >> 12), 0x40 | ((c >> 6) & 0x3F), 0x40 | (c & 0x3F)))


value = st.builds(lambda s, w, f: s + w + f, st.sampled_from([b"+", b"-", b""]),
                  st.text("0123456789", max_size=5).map(str.encode),
                  st.sampled_from([b"", b".", b".5", b".25", b"..", b"e1"]))
values = st.lists(value, max_size=6).map(b"".join)
sdi_line = st.one_of(
    st.builds(lambda v: b"0" + v, values),                       # aD0! without CRC
    st.builds(lambda v: _with_crc(b"0" + v), values),            # aD0! with a good CRC
    st.builds(lambda t, n: b"0" + t + n, st.text("0123456789", min_size=3, max_size=3)
              .map(str.encode), st.sampled_from([b"0", b"1", b"3", b"9", b"x"])),   # atttn
    st.sampled_from([b"0", b"1", b"", b"0TRUEBNER", b"?"]),
    st.binary(max_size=40),
)
sdi_reply = st.one_of(
    st.builds(lambda l, e: l + e, sdi_line, st.sampled_from([b"\r\n", b"\r\n", b"\n", b""])),
    st.binary(max_size=90),
)


def sdi_encode(op, flags, replies):
    out = bytes([op, flags])
    for r in replies:
        r = r[:255]
        out += bytes([len(r)]) + r
    return out


# A whole measurement conversation: atttn, then data lines (CRC'd or not), now and then damaged.
sdi_conversation = st.builds(
    lambda op, echo, ttt, n, datas, eol: sdi_encode(op, echo, [b"0%03d%d" % (ttt, n) + eol] + datas),
    st.sampled_from([0, 1, 3]), st.integers(0, 1), st.sampled_from([0, 0, 1, 2]),
    st.integers(0, 9),
    st.lists(st.one_of(st.builds(lambda v: _with_crc(b"0" + v) + b"\r\n", values),
                       st.builds(lambda v: b"0" + v + b"\r\n", values), sdi_reply), max_size=10),
    st.sampled_from([b"\r\n", b"\r\n", b"\n"]))
good_value = st.builds(lambda s, w, f: s + w + f, st.sampled_from([b"+", b"-"]),
                       st.text("0123456789", min_size=1, max_size=4).map(str.encode),
                       st.sampled_from([b"", b".5", b".25", b".125"]))
sdi_measurement = st.lists(good_value, min_size=1, max_size=9).flatmap(
    lambda vs: st.builds(
        lambda op, echo, crc_ok: sdi_encode(op, echo, [b"0000%d\r\n" % len(vs)] + [
            (_with_crc(b"0" + b"".join(vs)) if crc_ok else b"0" + b"".join(vs)) + b"\r\n"]),
        st.sampled_from([0, 1]), st.integers(0, 1), st.booleans()))
sdi_input = st.one_of(
    sdi_measurement,
    sdi_conversation,
    st.builds(sdi_encode, st.integers(0, 255), st.integers(0, 255), st.lists(sdi_reply, max_size=8)),
    st.builds(lambda v: bytes([7, 0]) + v, st.one_of(values, st.binary(max_size=40))),
)


# --- Modbus inputs -----------------------------------------------------------------------
def _mb_crc(buf: bytes) -> bytes:
    crc = 0xFFFF
    for b in buf:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return struct.pack("<H", crc)


@st.composite
def modbus_input(draw):
    op = draw(st.integers(0, 2))
    unit = draw(st.integers(0, 255))
    count_byte = draw(st.integers(0, 255))
    count = 1 + count_byte % 125
    chunk = draw(st.integers(0, 255))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        reply = draw(st.binary(max_size=300))
    else:
        r_unit = draw(st.sampled_from([unit or 1, unit or 1, draw(st.integers(0, 255))]))
        fc = draw(st.sampled_from([3 if op == 0 else 4, 6, 0x83, 0x84, 0x86,
                                   draw(st.integers(0, 255))]))
        if op == 2 and kind == 1:
            body = bytes([r_unit, 6, 0, 0x10, 0x12, 0x34])
        elif fc & 0x80:
            body = bytes([r_unit, fc, draw(st.integers(0, 255))])
        else:
            n = draw(st.sampled_from([2 * count, 2 * count, draw(st.integers(0, 255))]))
            body = bytes([r_unit, fc, n]) + draw(st.binary(min_size=min(n, 250), max_size=min(n, 250)))
        reply = body + _mb_crc(body)
        if kind == 3:      # then damaged: a flipped bit, a cut or an extra byte
            how = draw(st.integers(0, 2))
            pos = draw(st.integers(0, len(reply) - 1))
            if how == 0:
                reply = reply[:pos] + bytes([reply[pos] ^ (1 << draw(st.integers(0, 7)))]) + reply[pos + 1:]
            elif how == 1:
                reply = reply[:pos]
            else:
                reply = reply + draw(st.binary(min_size=1, max_size=8))
    return bytes([op, unit, count_byte, chunk]) + reply


@pytest.fixture(scope="module")
def sdi12_worker(tmp_path_factory):
    w = MicroPythonWorker(SDI12_HARNESS, tmp_path_factory.mktemp("fuzz-sdi12"))
    yield w
    w.close()


@pytest.fixture(scope="module")
def modbus_worker(tmp_path_factory):
    w = MicroPythonWorker(MODBUS_HARNESS, tmp_path_factory.mktemp("fuzz-modbus"))
    yield w
    w.close()


def test_sdi12_driver_returns_values_or_sensor_error_for_any_reply(sdi12_worker):
    start = sdi12_worker.inputs

    @fuzz_settings(BATCH)
    @given(st.lists(sdi_input, min_size=BATCH, max_size=BATCH))
    def run(inputs):
        check(sdi12_worker, inputs)

    run()
    ran = sdi12_worker.inputs - start
    print(f"\nSDI-12: {ran} inputs; known findings hit: {sdi12_worker.known}\n  outcomes: {dict(sorted(sdi12_worker.outcomes.items()))}")
    assert ran >= EXAMPLES


def test_modbus_master_returns_registers_only_from_a_valid_reply(modbus_worker):
    start = modbus_worker.inputs

    @fuzz_settings(BATCH)
    @given(st.lists(modbus_input(), min_size=BATCH, max_size=BATCH))
    def run(inputs):
        check(modbus_worker, inputs)

    run()
    ran = modbus_worker.inputs - start
    print(f"\nModbus RTU: {ran} inputs; known findings hit: {modbus_worker.known}\n  outcomes: {dict(sorted(modbus_worker.outcomes.items()))}")
    assert ran >= EXAMPLES
