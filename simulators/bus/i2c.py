"""A virtual I2C bus: devices by 7-bit address, NACK where nobody answers.

A device model implements `write(data: bytes, stop: bool)` and `read(n: int) -> bytes`
and raises `Nack` where the real part would not acknowledge its address. A device in
fault mode `hang` holds the bus: its transactions raise `Hang` and never reach it
(simulators/sensors/faults.py says what each MCU's port makes of that).
"""
from __future__ import annotations


class Nack(Exception):
    """No acknowledge: the addressed part is absent or refuses this transaction."""


# Re-exported for the bus's users.
from simulators.sensors.faults import Hang, Timeout  # noqa: E402,F401


class I2CBus:
    def __init__(self, name: str = "i2c0"):
        self.name = name
        self.devices: dict[int, object] = {}
        self.transactions = 0

    def attach(self, address: int, device) -> None:
        if address in self.devices:
            raise ValueError(f"{self.name}: address 0x{address:02x} already taken")
        self.devices[address] = device

    def _device(self, address: int):
        self.transactions += 1
        dev = self.devices.get(address)
        if dev is None or not getattr(dev, "present", True) or getattr(dev, "fault", None) == "absent":
            raise Nack(f"no device at 0x{address:02x}")
        return dev

    def _holding(self, address: int, nbytes: int):
        dev = self._device(address)
        if getattr(dev, "fault", None) == "hang":
            raise Hang(address, nbytes)
        return dev

    def write(self, address: int, data: bytes, stop: bool = True) -> int:
        self._holding(address, len(data)).write(bytes(data), stop)
        return len(data)

    def read(self, address: int, n: int, stop: bool = True) -> bytes:
        data = self._holding(address, n).read(n)
        if len(data) != n:
            raise AssertionError(f"{self.name}: model at 0x{address:02x} returned {len(data)} of {n} bytes")
        return data

    def scan(self) -> list[int]:
        return sorted(a for a, d in self.devices.items()
                      if getattr(d, "present", True) and getattr(d, "fault", None) != "absent")
