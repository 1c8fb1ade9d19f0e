"""Counters that never hand out the same value twice: the payload frame counter
(the AEAD nonce) and the reading sequence number.

    counter = ReservedCounter("ctr")
    c = counter.take()   # reserved in flash before it is returned

Reserve-ahead (design.md): the flash holds a limit L; every value below L may have been
used. `take()` persists a new limit before it hands out a value at or above the old
one, so a power cut at any instant costs a gap, never a reuse. Two slots are written
alternately, each with a CRC, and the higher valid limit wins: a write torn by a power
cut leaves the other slot, whose limit is still safe.

Where the board keeps RTC memory through deep sleep (ESP32), the next value lives
there between wakes and the flash is written once per `reserve` values; elsewhere
(RP2040) the limit is written on every wake.
"""
from micropython import const
import struct
from binascii import crc32

import machine

from node.flashfs import ensure_dir

_DIR = "state"
_MAGIC = b"FC"
_RTC_RECORD = const(12)   # tag(4) value(4) crc32(4) per counter in RTC memory
_MAX = const(0xFFFFFFFF)


class CounterError(Exception):
    pass


def _pack(value):
    body = _MAGIC + struct.pack(">I", value)
    return body + struct.pack(">I", crc32(body))


def _unpack(data):
    if len(data) != 10 or data[:2] != _MAGIC:
        return None
    if struct.unpack(">I", data[6:])[0] != crc32(data[:6]):
        return None
    return struct.unpack(">I", data[2:6])[0]


class ReservedCounter:
    def __init__(self, name, reserve=1, rtc_index=0):
        self.name = name
        self.reserve = max(1, reserve)
        self._slots = ("%s/%s0" % (_DIR, name), "%s/%s1" % (_DIR, name))
        self._rtc_tag = (name + "____")[:4].encode()
        self._rtc_at = rtc_index * _RTC_RECORD
        self._next = None
        self._limit = None
        rtc = machine.RTC()
        self._rtc_memory = getattr(rtc, "memory", None)
        ensure_dir(_DIR)

    def _read_limit(self):
        best = None
        for path in self._slots:
            try:
                with open(path, "rb") as f:
                    v = _unpack(f.read())
            except OSError:
                v = None
            if v is not None and (best is None or v > best):
                best = v
        return best or 0

    def _write_limit(self, limit):
        # The slot not holding the current limit is overwritten, so one always survives.
        path = self._slots[(limit // self.reserve) % 2]
        with open(path, "wb") as f:
            f.write(_pack(limit))
        self._limit = limit

    def _from_rtc(self):
        if self._rtc_memory is None or machine.reset_cause() != machine.DEEPSLEEP_RESET:
            return None
        data = self._rtc_memory()[self._rtc_at:self._rtc_at + _RTC_RECORD]
        if len(data) < _RTC_RECORD or data[:4] != self._rtc_tag:
            return None
        value, check = struct.unpack(">II", data[4:12])
        return value if check == crc32(data[:8]) else None

    def _to_rtc(self, value):
        if self._rtc_memory is not None:
            body = self._rtc_tag + struct.pack(">I", value)
            mem = bytearray(self._rtc_memory())
            end = self._rtc_at + _RTC_RECORD
            if len(mem) < end:
                mem.extend(bytes(end - len(mem)))
            mem[self._rtc_at:end] = body + struct.pack(">I", crc32(body))
            self._rtc_memory(mem)

    def take(self):
        if self._limit is None:
            self._limit = self._read_limit()
            nxt = self._from_rtc()
            # RTC memory is only trusted below the limit it was reserved under.
            self._next = nxt if nxt is not None and nxt <= self._limit else self._limit
        if self._next >= _MAX:
            raise CounterError("frame counter exhausted: the payload key must be renewed")
        if self._next >= self._limit:
            self._write_limit(min(_MAX, self._next + self.reserve))
        value = self._next
        self._next += 1
        self._to_rtc(self._next)
        return value
