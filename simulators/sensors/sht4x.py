"""Sensirion SHT4x (SHT40/41/45) humidity and temperature sensor on I2C.

Follows the SHT4x datasheet (v6.5, sections 4.4 "Command Overview", 4.5 "Conversion of
Signal Output", 4.6 "Checksum Calculation", and the timing table 2.x), as summarised in
shared/reference/sensors.md §1.1:

- one command byte, no register pointer; a measurement answers with 6 bytes
  T_MSB T_LSB CRC RH_MSB RH_LSB CRC, each word followed by CRC-8 (poly 0x31, init 0xFF);
- while it converts, the sensor does not acknowledge its address: a read issued too
  early is NACKed, and so is one with no result waiting;
- S_T = (T + 45) * 65535 / 175, S_RH = (RH + 6) * 65535 / 125.

The model reads the truth from the environment at the start of the conversion and adds
the part's own error: a fixed per-part offset and the repeatability noise of the chosen
precision (clipped at 3σ), together never beyond the SHT40's typical accuracy
(±0.2 °C, ±1.8 %RH), the figure the node's readings are tested against.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from simulators.bus.i2c import Nack
from simulators.sensors.faults import Timeout


def crc8(data: bytes) -> int:
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


# command: (duration µs max, repeatability °C, repeatability %RH, heater)
_MEASURE = {
    0xFD: (8_300, 0.04, 0.08, False),     # high precision
    0xF6: (4_500, 0.07, 0.15, False),     # medium precision
    0xE0: (1_700, 0.10, 0.25, False),     # low precision
    0x39: (1_100_000, 0.04, 0.08, True),  # heater 200 mW 1 s, then high precision
    0x32: (110_000, 0.04, 0.08, True),    # heater 200 mW 0.1 s
    0x2F: (1_100_000, 0.04, 0.08, True),  # heater 110 mW 1 s
    0x24: (110_000, 0.04, 0.08, True),    # heater 110 mW 0.1 s
    0x1E: (1_100_000, 0.04, 0.08, True),  # heater 20 mW 1 s
    0x15: (110_000, 0.04, 0.08, True),    # heater 20 mW 0.1 s
}
CMD_SERIAL = 0x89
CMD_SOFT_RESET = 0x94
SOFT_RESET_US = 1_000

ACCURACY_T = 0.2    # °C, SHT40 typical
ACCURACY_RH = 1.8   # %RH, SHT40 typical


def word(value: int) -> bytes:
    raw = value.to_bytes(2, "big")
    return raw + bytes([crc8(raw)])


@dataclass
class Measurement:
    t_us: int
    temperature: float   # the truth, °C
    humidity: float      # the truth, %RH


class SHT4x:
    FAULT_MODES = ("absent", "nack", "crc", "timeout", "stuck", "range")

    def __init__(self, clock, environment, address: int = 0x44, serial: int | None = None,
                 seed: int = 0):
        self.clock = clock
        self.environment = environment
        self.address = address
        self.rng = random.Random(f"sht4x:{seed}:{address}")
        self.serial = serial if serial is not None else self.rng.getrandbits(32)
        # Room is left for 3σ of high-precision repeatability on top of the offset.
        self.offset_t = self.rng.uniform(-1, 1) * (ACCURACY_T - 3 * 0.04)
        self.offset_rh = self.rng.uniform(-1, 1) * (ACCURACY_RH - 3 * 0.08)
        self.present = True         # False: the part does not answer its address
        self.fault: str | None = None   # one of FAULT_MODES (simulators/sensors/faults.py)
        self._last: bytes | None = None
        self.busy_until = 0
        self.result: bytes | None = None
        self.measurements: list[Measurement] = []

    def _noise(self, sigma: float) -> float:
        return max(-3 * sigma, min(3 * sigma, self.rng.gauss(0, sigma)))

    def _busy(self) -> bool:
        return self.clock.now_us < self.busy_until

    def write(self, data: bytes, stop: bool) -> None:
        if self._busy():
            raise Nack("SHT4x busy converting")
        if len(data) != 1:
            # The part has single-byte commands only; extra bytes are not acknowledged.
            raise Nack(f"SHT4x: {len(data)}-byte write")
        cmd = data[0]
        now = self.clock.now_us
        if cmd in _MEASURE:
            duration, rep_t, rep_rh, _heater = _MEASURE[cmd]
            truth = self.environment.at(self.clock.unix_time())
            self.measurements.append(Measurement(now, truth["temperature"], truth["humidity"]))
            t = truth["temperature"] + self.offset_t + self._noise(rep_t)
            rh = truth["humidity"] + self.offset_rh + self._noise(rep_rh)
            s_t = max(0, min(0xFFFF, round((t + 45) * 65535 / 175)))
            s_rh = max(0, min(0xFFFF, round((rh + 6) * 65535 / 125)))
            self.result = word(s_t) + word(s_rh)
            self.busy_until = now + duration
        elif cmd == CMD_SERIAL:
            self.result = word(self.serial >> 16) + word(self.serial & 0xFFFF)
            self.busy_until = now + 1_000
        elif cmd == CMD_SOFT_RESET:
            self.result = None
            self.busy_until = now + SOFT_RESET_US
        else:
            raise Nack(f"SHT4x: unknown command 0x{cmd:02x}")

    def read(self, n: int) -> bytes:
        if self.fault == "timeout":
            raise Timeout("SHT4x holds SCL low")
        if self._busy() or self.result is None or self.fault == "nack":
            raise Nack("SHT4x: no result ready")
        data, self.result = self.result, None
        if self.fault == "stuck" and self._last is not None:
            data = self._last
        elif self.fault == "range":
            data = word(0xFFFF) + word(0xFFFF)   # 130 °C: beyond the part's -40..125 °C
        if self.fault != "stuck":
            self._last = data
        if self.fault == "crc":
            data = bytes([data[0] ^ 0x04]) + data[1:]
        # A master may read fewer bytes; reading past the 6 gives 0xFF (released bus).
        return (data + b"\xff" * n)[:n]
