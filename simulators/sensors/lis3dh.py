"""ST LIS3DH three-axis accelerometer on I2C (datasheet DocID17530 Rev 2).

Follows the datasheet:
- §6.1.1 I2C operation: the master writes the sub-address (SUB), then data or a
  repeated start and reads; SUB bit 7 set makes the address auto-increment, clear
  makes every byte come from the same register. With FIFO_EN, a burst from OUT_X_L
  (0x28) rolls back from 0x2D to 0x28, popping one FIFO level per 6 bytes (§3.3 FIFO,
  AN3308 §9.2), so 192 bytes read all 32 levels at once.
- §8 register map: WHO_AM_I 0x0F = 0x33; CTRL_REG1 0x20 (ODR[7:4], LPen, Z/Y/X en;
  reset 0x07 = power-down), CTRL_REG2 0x21 (HPIS1 bit 0: high-pass data to the
  interrupt generator 1), CTRL_REG3 0x22 (I1_IA1 bit 6), CTRL_REG4 0x23 (FS[5:4], HR
  bit 3), CTRL_REG5 0x24 (BOOT bit 7, FIFO_EN bit 6, LIR_INT1 bit 3), FIFO_CTRL_REG
  0x2E (FM[7:6]: 00 bypass, 01 FIFO, 10 stream, 11 stream-to-FIFO), FIFO_SRC_REG 0x2F
  (WTM, OVRN_FIFO, EMPTY, FSS[4:0]), INT1_CFG 0x30, INT1_SRC 0x31 (read clears a latched
  interrupt), INT1_THS 0x32 (LSB 16/32/62/186 mg at ±2/4/8/16 g), INT1_DURATION 0x33
  (LSB 1/ODR).
- §3.2.1 / Table 4 output format: left-justified two's complement, 8-bit in low-power,
  10-bit in normal, 12-bit in high-resolution mode; sensitivity 1/2/4/12 mg per digit
  (HR), 4/8/16/48 (normal), 16/32/64/192 (low power) at ±2/4/8/16 g.
- Table 4 zero-g offset ±40 mg typical: each part gets a fixed offset within ±30 mg.

The environment (`environment/container.py`) gives the acceleration at any instant;
samples are taken at the ODR. The temperature sensor (TEMP_CFG_REG, OUT_ADC3) reads 0:
the datasheet gives it as relative only (Table 5, 1 digit/°C, no absolute offset).

Faults: absent (NACK the address), nack (present but NACKs every transaction),
timeout (holds SCL), stuck (every data read repeats the last bytes), range (every
axis saturated at full scale). The part has no CRC, so no "crc" mode.
"""
from __future__ import annotations

import math
import random
import struct
from dataclasses import dataclass

from simulators.bus.i2c import Nack
from simulators.sensors.faults import Timeout

WHO_AM_I = 0x0F
CTRL_REG0, TEMP_CFG_REG = 0x1E, 0x1F
CTRL_REG1, CTRL_REG2, CTRL_REG3, CTRL_REG4, CTRL_REG5, CTRL_REG6 = range(0x20, 0x26)
REFERENCE, STATUS_REG, OUT_X_L, OUT_Z_H = 0x26, 0x27, 0x28, 0x2D
FIFO_CTRL_REG, FIFO_SRC_REG = 0x2E, 0x2F
INT1_CFG, INT1_SRC, INT1_THS, INT1_DURATION = 0x30, 0x31, 0x32, 0x33
READ_ONLY = {0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, WHO_AM_I, STATUS_REG,
             0x28, 0x29, 0x2A, 0x2B, 0x2C, 0x2D, FIFO_SRC_REG, INT1_SRC, 0x35, 0x39}
VALID = set(range(0x07, 0x0E)) | {WHO_AM_I} | set(range(0x1E, 0x40))
ODR_HZ = {1: 1, 2: 10, 3: 25, 4: 50, 5: 100, 6: 200, 7: 400, 8: 1600, 9: 1344}
THS_MG = (16, 32, 62, 186)
# supply current in normal mode by ODR code, A (DocID17530 Table 12); power-down 0.5 µA
CURRENT_A = {0: 0.5e-6, 1: 2e-6, 2: 3e-6, 3: 4e-6, 4: 6e-6, 5: 11e-6, 6: 20e-6, 7: 38e-6,
             8: 38e-6, 9: 185e-6}
FIFO_LEVELS = 32
OFFSET_G = 0.030
_PACK = struct.Struct("<3H").pack


@dataclass
class Measurement:
    t_us: int
    tilt: float      # the container's true tilt, degrees
    fill: float      # true fill percent


def _defaults() -> bytearray:
    r = bytearray(0x40)
    r[WHO_AM_I] = 0x33
    r[CTRL_REG0] = 0x10
    r[CTRL_REG1] = 0x07
    return r


class LIS3DH:
    FAULT_MODES = ("absent", "nack", "timeout", "stuck", "range")
    # A one-byte write (the sub-address) is acknowledged in every state but these faults
    # (the fleet's batched wire answers it on the node: node_runtime/_simbatch.py).
    POINTER_WRITE_FAULTS = ("nack", "timeout")

    def __init__(self, clock, environment, address: int = 0x18, seed: int = 0):
        self.clock = clock
        self.environment = environment
        self.address = address
        self.rng = random.Random(f"lis3dh:{seed}:{address}")
        self.offset = tuple(self.rng.uniform(-OFFSET_G, OFFSET_G) for _ in range(3))
        self.present = True
        self.fault: str | None = None
        self.regs = _defaults()
        self.pointer = 0
        self.auto_increment = False
        self._t0_us = 0             # ODR sample 0 (set when the ODR is written)
        self._next = 0              # index of the next sample the FIFO delivers
        self._int_cleared_us = 0    # a latched interrupt covers events after this
        self._last_data: bytes | None = None
        self._cur = bytes(6)        # the FIFO level being read out
        self.measurements: list[Measurement] = []
        self.samples_made = 0

    # --- configuration as decoded from the registers ----------------------------------
    @property
    def odr(self) -> int:
        return ODR_HZ.get(self.regs[CTRL_REG1] >> 4, 0)

    @property
    def fs_index(self) -> int:
        return (self.regs[CTRL_REG4] >> 4) & 3

    def _mode(self) -> tuple[int, float]:
        """(bits, g per digit) by LPen, HR and FS (Table 4)."""
        fs = self.fs_index
        if self.regs[CTRL_REG1] & 0x08:
            return 8, (0.016, 0.032, 0.064, 0.192)[fs]
        if self.regs[CTRL_REG4] & 0x08:
            return 12, (0.001, 0.002, 0.004, 0.012)[fs]
        return 10, (0.004, 0.008, 0.016, 0.048)[fs]

    def supply_a(self) -> float:
        """What the part draws now at its configured ODR (A)."""
        return CURRENT_A.get(self.regs[CTRL_REG1] >> 4, 11e-6)

    def int1_setup(self) -> tuple[float, float] | None:
        """(threshold g, minimum duration s) of the INT1 activity interrupt as the
        firmware configured it, or None when INT1 cannot fire on activity: no ODR, IA1
        not routed to the pin, no high event enabled, or no high-pass filter on the
        interrupt path (then the 1 g of gravity alone would hold it up, which is
        `(0, 0)`: fires at once)."""
        r = self.regs
        if not self.odr or not r[CTRL_REG3] & 0x40 or not r[INT1_CFG] & 0x2A:
            return None
        if r[INT1_CFG] & 0x80:          # AND combination: all axes at once, not used here
            return None
        ths = (r[INT1_THS] & 0x7F) * THS_MG[self.fs_index] / 1000.0
        if not r[CTRL_REG2] & 0x01:
            return (0.0, 0.0) if ths < 0.9 else (ths - 0.9, 0.0)
        return ths, (r[INT1_DURATION] & 0x7F) / self.odr

    def latched(self) -> bool:
        return bool(self.regs[CTRL_REG5] & 0x08)

    def int1_fires(self, from_us: int, to_us: int) -> int | None:
        """When, in [from_us, to_us), the INT1 pin goes high (a pending latched
        interrupt holds it high from the start)."""
        if self.fault is not None:
            return None
        setup = self.int1_setup()
        if setup is None:
            return None
        ths, min_s = setup
        if ths <= 0:
            return from_us
        if self.latched():
            pending = self.environment.first_shake_above(self._int_cleared_us / 1e6, from_us / 1e6, ths, min_s)
            if pending is not None:
                return from_us
        t = self.environment.first_shake_above(from_us / 1e6, to_us / 1e6, ths, min_s)
        return None if t is None else max(from_us, int(t * 1e6))

    # --- samples ------------------------------------------------------------------------
    def _latest(self) -> int:
        if not self.odr:
            return -1
        return (self.clock.now_us - self._t0_us) * self.odr // 1_000_000

    def _sample(self, i: int) -> bytes:
        t = (self._t0_us + i * 1_000_000 / self.odr) / 1e6
        a = self.environment.acceleration(t, self.rng)
        self.samples_made += 1
        bits, lsb = self._mode()
        out = bytearray(6)
        full = 1 << (bits - 1)
        for k in range(3):
            d = round((a[k] + self.offset[k]) / lsb)
            d = max(-full, min(full - 1, d))
            v = (d << (16 - bits)) & 0xFFFF
            out[2 * k] = v & 0xFF
            out[2 * k + 1] = v >> 8
        return bytes(out)

    def _samples(self, indices: list) -> list[bytes]:
        """`_sample(i)` for each index in turn (None: the six zero bytes of an empty
        output): the same bytes and the same draws from the part's noise."""
        env = self.environment
        if not hasattr(env, "accelerations"):
            return [bytes(6) if i is None else self._sample(i) for i in indices]
        odr = self.odr
        ts = [(self._t0_us + i * 1_000_000 / odr) / 1e6 for i in indices if i is not None]
        accs = iter(env.accelerations(ts, self.rng))
        self.samples_made += len(ts)
        bits, lsb = self._mode()
        full = 1 << (bits - 1)
        shift = 16 - bits
        ox, oy, oz = self.offset
        out = []
        for i in indices:
            if i is None:
                out.append(bytes(6))
                continue
            ax, ay, az = next(accs)
            dx = max(-full, min(full - 1, round((ax + ox) / lsb)))
            dy = max(-full, min(full - 1, round((ay + oy) / lsb)))
            dz = max(-full, min(full - 1, round((az + oz) / lsb)))
            out.append(_PACK((dx << shift) & 0xFFFF, (dy << shift) & 0xFFFF, (dz << shift) & 0xFFFF))
        return out

    def _pops(self, k: int) -> list:
        """What k calls of `_pop()` in a FIFO mode would sample, as `_samples` takes it,
        with the FIFO moved on as they would move it."""
        out = []
        latest, mode = self._latest(), self._fifo_mode()     # the clock stands still
        for _ in range(k):
            if latest < 0:                  # _unread(), inline
                n = 0
            else:
                n = latest - self._next + 1
                if n <= FIFO_LEVELS:
                    n = max(0, n)
                elif mode == 1:
                    n = FIFO_LEVELS
                else:
                    self._next = latest - FIFO_LEVELS + 1
                    n = FIFO_LEVELS
            if n == 0:
                out.append(self._next - 1 if self._next > 0 else None)
            else:
                out.append(self._next)
                self._next += 1
        return out

    def _fifo_mode(self) -> int:
        return self.regs[FIFO_CTRL_REG] >> 6 if self.regs[CTRL_REG5] & 0x40 else 0

    def _unread(self) -> tuple[int, bool]:
        """(unread levels, overrun) and drop the levels stream mode overwrote."""
        latest = self._latest()
        if latest < 0:
            return 0, False
        mode = self._fifo_mode()
        n = latest - self._next + 1
        if n <= FIFO_LEVELS:
            return max(0, n), False
        if mode == 1:                   # FIFO mode stops collecting when full
            return FIFO_LEVELS, True
        self._next = latest - FIFO_LEVELS + 1
        return FIFO_LEVELS, True

    def _pop(self) -> bytes:
        if self._fifo_mode() == 0:
            latest = self._latest()
            return self._sample(latest) if latest >= 0 else bytes(6)
        n, _ = self._unread()
        if n == 0:
            return self._sample(self._next - 1) if self._next > 0 else bytes(6)
        data = self._sample(self._next)
        self._next += 1
        return data

    # --- I2C ------------------------------------------------------------------------------
    def _check(self) -> None:
        if self.fault == "timeout":
            raise Timeout("LIS3DH holds SCL low")
        if self.fault == "nack":
            raise Nack("LIS3DH does not acknowledge")

    def write(self, data: bytes, stop: bool) -> None:
        self._check()
        if not data:
            return
        sub = data[0]
        self.auto_increment = bool(sub & 0x80)
        self.pointer = sub & 0x7F
        for b in data[1:]:
            self._write_reg(self.pointer, b)
            if self.auto_increment:
                self.pointer = (self.pointer + 1) & 0x7F

    def _write_reg(self, reg: int, value: int) -> None:
        if reg not in VALID or reg in READ_ONLY:
            raise Nack(f"LIS3DH: register 0x{reg:02x} is not writable")   # §8: reserved
        now = self.clock.now_us
        old = self.regs[reg]
        if reg == CTRL_REG5 and value & 0x80:
            self.regs[:] = _defaults()          # BOOT: reload the trimming and defaults
            return
        self.regs[reg] = value
        if reg == CTRL_REG1 and (old >> 4) != (value >> 4):
            self._t0_us = now
            self._next = 0
        elif reg == FIFO_CTRL_REG and value >> 6 == 0 or reg == CTRL_REG5 and not value & 0x40:
            self._next = self._latest() + 1     # bypass empties the FIFO
        elif reg in (INT1_CFG, INT1_THS, INT1_DURATION):
            self._int_cleared_us = now

    def read(self, n: int) -> bytes:
        self._check()
        out = bytearray()
        reg = self.pointer
        data_read = False
        if (reg == OUT_X_L and self.auto_increment and n and n % 6 == 0
                and self._fifo_mode()):
            # A FIFO burst (§6.1.1: rolls back to OUT_X_L after OUT_Z_H): levels at once.
            levels = self._samples(self._pops(n // 6))
            self._cur = levels[-1]
            out = bytearray(b"".join(levels))
            data_read = True
        while len(out) < n:
            if OUT_X_L <= reg <= OUT_Z_H:
                if reg == OUT_X_L:
                    self._cur = self._pop()
                    data_read = True
                out.append(self._cur[reg - OUT_X_L])
            else:
                out.append(self._read_reg(reg))
            if self.auto_increment:
                reg += 1
                if reg > OUT_Z_H and OUT_X_L <= self.pointer <= OUT_Z_H and self._fifo_mode():
                    reg = OUT_X_L
                reg &= 0x7F
        self.pointer = reg
        data = bytes(out)
        if data_read:
            t = self.clock.now_s
            self.measurements.append(Measurement(self.clock.now_us, self.environment.tilt_deg(t),
                                                 self.environment.fill_percent(t)))
            if self.fault == "stuck" and self._last_data is not None and len(self._last_data) == n:
                data = self._last_data
            elif self.fault == "range":
                data = bytes(0xF0 if (k % 2 == 0) else 0x7F for k in range(n))
            if self.fault != "stuck":
                self._last_data = data
        return data

    def _read_reg(self, reg: int) -> int:
        if reg not in VALID:
            return 0
        if reg == FIFO_SRC_REG:
            n, ovr = self._unread()
            ths = self.regs[FIFO_CTRL_REG] & 0x1F
            return (0x80 if n > ths else 0) | (0x40 if ovr else 0) | (0x20 if n == 0 else 0) | (n & 0x1F)
        if reg == STATUS_REG:
            return 0x0F if self._latest() >= 0 else 0
        if reg == INT1_SRC:
            now = self.clock.now_us
            setup = self.int1_setup()
            active = 0
            if setup is not None:
                ths, min_s = setup
                since = self._int_cleared_us if self.latched() else now - 50_000
                if ths <= 0 or self.environment.first_shake_above(since / 1e6, now / 1e6 + 1e-6, ths, min_s) is not None:
                    active = 0x40 | (self.regs[INT1_CFG] & 0x2A)
            if self.latched():
                self._int_cleared_us = now
            return active
        return self.regs[reg]
