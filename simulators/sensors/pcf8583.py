"""NXP PCF8583 clock/calendar with event counter and 240 bytes of RAM, on I2C, here
in event-counter mode counting the tips of the rain gauge while the node sleeps.

Follows the PCF8583 datasheet (NXP, Rev. 06, 6 October 2010): §1 (auto-incrementing
word address, A0 pin), the control/status register 00h ( bit 7 stop counting, bit 6 hold last count,
bits 5..4 function mode 00 32.768 kHz clock / 01 50 Hz / 10 event counter / 11 test,
bit 3 mask, bit 2 alarm enable, bits 1..0 alarm and timer flags), the event-counter
register layout of §7.4 (01h D1 D0, 02h D3 D2, 03h D5 D4: a 6-digit BCD counter,
0..999 999, counting the pulses at OSCI), the RAM at 10h..FFh, the slave address
A0h/A2h (7-bit 0x50 or 0x51): a write sets the word address then writes data, a read
starts at the word address, and the address increments after every byte.

After power-on the registers are cleared: control 00h (clock mode), counter 0. The
edges come from the rain gauge model (its reed line, debounced on the board).

Faults as its I2C bus shows them (there is no CRC on this part):
absent, nack, timeout, stuck (the bus repeats what a read gave last time) and range
(the counter reads digits that are not BCD).
"""
from __future__ import annotations

from simulators.bus.i2c import Nack
from simulators.sensors.faults import Timeout

REG_CONTROL = 0x00
REG_COUNTER = 0x01
RAM_START = 0x10
MODE_MASK = 0x30
MODE_EVENT = 0x20
STOP = 0x80


def to_bcd(n: int) -> bytes:
    return bytes([((n // 10) % 10) << 4 | n % 10, ((n // 1000) % 10) << 4 | (n // 100) % 10,
                  ((n // 100000) % 10) << 4 | (n // 10000) % 10])


class PCF8583:
    FAULT_MODES = ("absent", "nack", "timeout", "stuck", "range")
    # A one-byte write (the register pointer) is acknowledged in every state but these
    # faults (the fleet's batched wire answers it on the node: node_runtime/_simbatch.py).
    POINTER_WRITE_FAULTS = ("nack",)

    def __init__(self, clock, gauge, address: int = 0x50):
        self.clock = clock
        self.gauge = gauge
        self.address = address
        self.fault: str | None = None
        self.measurements: list = []     # (t_us, unix t) of every counter read
        self.power_on()

    def power_on(self) -> None:
        self.regs = bytearray(256)
        self.pointer = 0
        self.count = 0
        self._synced = self.clock.unix_time()
        self._last: dict = {}

    def _sync(self) -> None:
        """Count the gauge's edges since the last bus access."""
        now = self.clock.unix_time()
        if now <= self._synced:
            return
        tips = self.gauge.tips_between(self._synced, now)
        self._synced = now
        counting = (self.regs[REG_CONTROL] & MODE_MASK) == MODE_EVENT \
            and not self.regs[REG_CONTROL] & STOP
        if tips and counting and self.gauge.fault != "stuck":
            self.count = (self.count + tips) % 1_000_000
        self.regs[REG_COUNTER:REG_COUNTER + 3] = to_bcd(self.count)

    def write(self, data: bytes, stop: bool) -> None:
        if self.fault == "nack":
            raise Nack("PCF8583 does not acknowledge")
        self._sync()
        if not data:
            return
        self.pointer = data[0]
        for b in data[1:]:
            self.regs[self.pointer] = b
            if REG_COUNTER <= self.pointer < REG_COUNTER + 3 and \
                    (self.regs[REG_CONTROL] & MODE_MASK) == MODE_EVENT:
                c = self.regs[REG_COUNTER:REG_COUNTER + 3]
                self.count = sum(((c[i] >> 4) * 10 + (c[i] & 0xF)) * 100 ** i for i in range(3))
            self.pointer = (self.pointer + 1) & 0xFF

    def read(self, n: int) -> bytes:
        if self.fault == "timeout":
            raise Timeout("PCF8583: SCL held low")
        if self.fault == "nack":
            raise Nack("PCF8583 does not acknowledge")
        self._sync()
        start = self.pointer
        out = bytearray(self.regs[(start + i) & 0xFF] for i in range(n))
        if start <= REG_COUNTER < start + n:
            self.measurements.append((self.clock.now_us, self.clock.unix_time()))
            if self.fault == "range":
                out[REG_COUNTER - start] = 0xFA     # digits A and F: not BCD
        key = (start, n)
        if self.fault == "stuck" and key in self._last:
            out = bytearray(self._last[key])
        elif self.fault != "stuck":
            self._last[key] = bytes(out)
        self.pointer = (start + n) & 0xFF
        return bytes(out)
