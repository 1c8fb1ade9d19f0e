"""Modbus RTU master on an RS-485 half-duplex transceiver (MAX485-class, DE/RE on one pin).

    bus = ModbusRTU(machine.UART(1, 9600, bits=8, parity=0, stop=1, tx=4, rx=5, timeout=20),
                    de_pin=machine.Pin(6, machine.Pin.OUT, value=0))
    regs = bus.read_holding(unit=1, address=0, count=4)

Follows "MODBUS over Serial Line Specification and Implementation Guide V1.02":
§2.5.1 RTU frame (11-bit characters: start, 8 data, parity, stop), §2.5.1.1 framing
(a silent interval of at least 3.5 character times before each frame; 1750 µs fixed
above 19200 baud), §2.5.1.2 CRC-16 (init 0xFFFF, reflected polynomial 0xA001, low byte
sent first), §2.4.1 master states (response timeout; a broadcast, unit 0, gets no reply);
and the "MODBUS Application Protocol Specification V1.1b3": §6.3 Read Holding Registers
(0x03), §6.4 Read Input Registers (0x04), §6.6 Write Single Register (0x06), §7
exception responses (function code | 0x80, one exception-code byte).

The caller creates and configures the UART (the driver never creates its bus) and passes
the driver-enable pin, if any: it is driven high while a request is on the wire and low
to receive. Every failure raises `ModbusError(reason, exception_code)`.
"""
from micropython import const
import struct
import time

_FC_READ_HOLDING = const(0x03)
_FC_READ_INPUT = const(0x04)
_FC_WRITE_SINGLE = const(0x06)
_MAX_READ = const(125)          # Application Protocol §6.3: 1..125 registers
_BITS_PER_CHAR = const(11)      # Serial Line §2.5.1: 1 start + 8 data + parity + 1 stop


class ModbusError(Exception):
    """A failed transaction: `reason` says how; `exception_code` is the slave's Modbus
    exception code (1 illegal function, 2 illegal data address, 3 illegal data value,
    4 slave device failure, ...) when it sent an exception reply, else None."""

    def __init__(self, reason, exception_code=None):
        super().__init__(reason, exception_code)
        self.reason = reason
        self.exception_code = exception_code

    def __str__(self):
        if self.exception_code is None:
            return self.reason
        return "%s (exception %d)" % (self.reason, self.exception_code)


def crc16(buf, n=None):
    """CRC-16/MODBUS of buf[:n] (Serial Line §2.5.1.2 and §6.2.2); sent low byte first.
    crc16(b"123456789") == 0x4B37."""
    crc = 0xFFFF
    if n is None:
        n = len(buf)
    for i in range(n):
        crc ^= buf[i]
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0xA001
            else:
                crc >>= 1
    return crc


def float32(hi, lo, order="ABCD"):
    """The IEEE-754 float in two registers read in order (hi = first register).

    `order` names the wire order of the float's bytes A (sign/exponent) .. D (least
    significant): "ABCD" big-endian, "CDAB" word-swapped, "BADC" byte-swapped,
    "DCBA" little-endian. 7.11 as ABCD is registers 0x40E3 0x851F."""
    raw = bytes((hi >> 8, hi & 0xFF, lo >> 8, lo & 0xFF))
    if order == "ABCD":
        b = raw
    elif order == "CDAB":
        b = raw[2:4] + raw[0:2]
    elif order == "BADC":
        b = bytes((raw[1], raw[0], raw[3], raw[2]))
    elif order == "DCBA":
        b = bytes((raw[3], raw[2], raw[1], raw[0]))
    else:
        raise ValueError("word order %r" % (order,))
    return struct.unpack(">f", b)[0]


def float32_registers(value, order="ABCD"):
    """The two registers that carry `value` in `order` (the inverse of float32)."""
    b = struct.pack(">f", value)
    if order == "CDAB":
        b = b[2:4] + b[0:2]
    elif order == "BADC":
        b = bytes((b[1], b[0], b[3], b[2]))
    elif order == "DCBA":
        b = bytes((b[3], b[2], b[1], b[0]))
    elif order != "ABCD":
        raise ValueError("word order %r" % (order,))
    return (b[0] << 8) | b[1], (b[2] << 8) | b[3]


class ModbusRTU:
    def __init__(self, uart, de_pin=None, baudrate=9600, timeout_ms=200):
        self._uart = uart
        self._de = de_pin
        self.timeout_ms = timeout_ms
        self._char_us = _BITS_PER_CHAR * 1000000 // baudrate + 1
        # Serial Line §2.5.1.1: t3.5 is fixed at 1750 µs above 19200 baud.
        self._t35_us = 1750 if baudrate > 19200 else (self._char_us * 35 + 9) // 10
        self._tx = bytearray(8)
        self._rx = bytearray(5 + 2 * _MAX_READ)
        self._idle_since = time.ticks_us()
        if de_pin is not None:
            de_pin.value(0)

    # --- public ---------------------------------------------------------------
    def read_holding(self, unit, address, count):
        """`count` holding registers from `address` (function 0x03), as u16 ints."""
        return self._read(_FC_READ_HOLDING, unit, address, count)

    def read_input(self, unit, address, count):
        """`count` input registers from `address` (function 0x04), as u16 ints."""
        return self._read(_FC_READ_INPUT, unit, address, count)

    def write_single(self, unit, address, value):
        """Write one holding register (function 0x06); the slave echoes the request.
        Unit 0 broadcasts: no reply is awaited."""
        if not 0 <= value <= 0xFFFF:
            raise ValueError("register value %r" % (value,))
        self._put_request(unit, _FC_WRITE_SINGLE, address, value)
        if unit == 0:
            self._send()
            time.sleep_ms(self.timeout_ms)    # §2.4.1: the turnaround delay after a broadcast
            self._idle_since = time.ticks_us()
            return
        self._transact(unit, _FC_WRITE_SINGLE, 0)
        if self._rx[:6] != self._tx[:6]:
            raise ModbusError("write echo differs from the request")

    # --- internals ------------------------------------------------------------
    def _read(self, fc, unit, address, count):
        if not 1 <= count <= _MAX_READ:
            raise ValueError("register count %r" % (count,))
        if not 1 <= unit <= 255:
            # 1..247 per Serial Line §2.3; 248..255 are reserved there, yet some parts
            # answer one (the SMT100 at 0xFD, sensors.md §2.2).
            raise ValueError("a read needs a unit address 1..255, not %r" % (unit,))
        self._put_request(unit, fc, address, count)
        self._transact(unit, fc, 2 * count)
        if self._rx[2] != 2 * count:
            raise ModbusError("byte count %d for %d registers" % (self._rx[2], count))
        rx = self._rx
        return [(rx[3 + 2 * i] << 8) | rx[4 + 2 * i] for i in range(count)]

    def _put_request(self, unit, fc, a, b):
        if not 0 <= unit <= 255:
            raise ValueError("unit address %r" % (unit,))
        if not 0 <= a <= 0xFFFF:
            raise ValueError("register address %r" % (a,))
        tx = self._tx
        tx[0] = unit
        tx[1] = fc
        tx[2] = a >> 8
        tx[3] = a & 0xFF
        tx[4] = b >> 8
        tx[5] = b & 0xFF
        crc = crc16(tx, 6)
        tx[6] = crc & 0xFF
        tx[7] = crc >> 8

    def _send(self):
        uart = self._uart
        # Whatever is still in the receiver (a late reply to an earlier request) is stale.
        while uart.any():
            uart.read(uart.any())
            self._idle_since = time.ticks_us()
        # §2.5.1.1: at least 3.5 character times of silence before a frame.
        quiet = time.ticks_diff(time.ticks_us(), self._idle_since)
        if quiet < self._t35_us:
            time.sleep_us(self._t35_us - quiet)
        if self._de is not None:
            self._de.value(1)
        start = time.ticks_us()
        uart.write(self._tx)
        # Hold DE until the last character (and its stop bit) has left the shift register.
        wire_us = len(self._tx) * self._char_us + self._char_us // 2
        if hasattr(uart, "flush"):
            uart.flush()
        left = wire_us - time.ticks_diff(time.ticks_us(), start)
        if left > 0:
            time.sleep_us(left)
        if self._de is not None:
            self._de.value(0)
        self._idle_since = time.ticks_us()

    def _receive(self, got, n, deadline):
        """Read on from self._rx[got] until n bytes are there or the deadline passes;
        returns the count now there."""
        rx = self._rx
        uart = self._uart
        while got < n:
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                break
            chunk = uart.read(n - got)
            if chunk:
                rx[got:got + len(chunk)] = chunk
                got += len(chunk)
            else:
                time.sleep_ms(1)    # a UART opened with timeout=0 returns at once
        self._idle_since = time.ticks_us()
        return got

    def _transact(self, unit, fc, data_bytes):
        """Send self._tx and take the reply into self._rx. `data_bytes`: the data a read
        returns (its byte count); 0 for a write, whose reply is the 8-byte echo."""
        self._send()
        deadline = time.ticks_add(time.ticks_ms(), self.timeout_ms)
        got = self._receive(0, 5, deadline)
        if got == 0:
            raise ModbusError("timeout")
        if got < 5:
            raise ModbusError("short reply (%d bytes)" % got)
        rx = self._rx
        if rx[1] == fc | 0x80:
            # Application Protocol §7: exception reply, 5 bytes.
            expect = 5
        elif data_bytes:
            # Read reply: unit, function, byte count, data, CRC (§6.3); the byte count is
            # checked against the request once the CRC says it is what the slave sent.
            expect = min(5 + rx[2], len(rx))
        else:
            expect = 8
        if got < expect:
            got = self._receive(got, expect, deadline)
        if got < expect:
            raise ModbusError("short reply (%d of %d bytes)" % (got, expect))
        if crc16(rx, expect - 2) != rx[expect - 2] | (rx[expect - 1] << 8):
            raise ModbusError("bad CRC")
        if rx[0] != unit:
            raise ModbusError("reply from unit %d, asked %d" % (rx[0], unit))
        if rx[1] == fc | 0x80:
            raise ModbusError("exception reply", rx[2])
        if rx[1] != fc:
            raise ModbusError("reply function 0x%02x to 0x%02x" % (rx[1], fc))
