"""A virtual UART between the node's `machine.UART` and one device model.

Bytes travel at the configured baud rate: a byte written by either side arrives one
character time (start + data + parity + stop bits) after the previous one. When the two
ends disagree on the frame format, the receiver sees garbage, as on a real wire.

`jam(start_us, end_us)` puts a fault on the line towards the node: a byte every
`JAM_GAP_US` and never a line end (a device stuck in a loop writing to its UART, or a
flapping line read as framing-error bytes). A silent device cannot block the node, since
every `machine.UART` read returns after its timeout; a jammed line can: MicroPython's
`readline()` reads one byte at a time until a newline, each read waiting up to the
timeout, with no limit on the whole (py/stream.c `stream_unbuffered_readline`), and a
loop that drains the receiver while bytes are there never ends.
"""
from __future__ import annotations

from collections import deque

from simulators.clock import Clock


def char_time_us(baudrate: int, bits: int = 8, parity: str | None = None, stop: int = 1) -> int:
    # MicroPython's parity: None (none), 0 (even), 1 (odd); 0 is a parity bit too.
    return int(round((1 + bits + (0 if parity is None else 1) + stop) * 1e6 / baudrate))


JAM_GAP_US = 5_000
JAM_BYTE = 0x00


class UartLink:
    def __init__(self, clock: Clock, baudrate: int, bits: int = 8, parity: str | None = None,
                 stop: int = 1):
        self.clock = clock
        self.device_format = (baudrate, bits, parity, stop)
        self.node_format = self.device_format
        self.device = None
        self._rx = deque()            # bytes that have arrived at the node
        self._busy_until = {"node": 0, "device": 0}   # each TX line is busy until
        self.jams: list[tuple[int, int]] = []         # [start_us, end_us) of jam()

    def attach(self, device) -> None:
        """`device.receive(data: bytes)` is called when bytes arrive at the device;
        the device answers with `link.send(data)`."""
        self.device = device
        device.uart = self

    def set_node_format(self, baudrate: int, bits: int = 8, parity: str | None = None,
                        stop: int = 1) -> None:
        self.node_format = (baudrate, bits, parity, stop)

    def set_device_format(self, baudrate: int, bits: int = 8, parity: str | None = None,
                          stop: int = 1) -> None:
        self.device_format = (baudrate, bits, parity, stop)

    @property
    def _matched(self) -> bool:
        return self.node_format == self.device_format

    def _garble(self, data: bytes) -> bytes:
        # A receiver sampling at the wrong rate sees framing errors: not the bytes sent.
        ratio = self.node_format[0] / self.device_format[0]
        out = bytearray()
        for i, b in enumerate(data):
            if ratio > 1 and i % max(1, int(ratio)):
                continue
            out.append((b * 7 + 0x5A) & 0xFF ^ (0x80 if ratio < 1 else 0x01))
        return bytes(out)

    def _transmit(self, sender: str, data: bytes, deliver) -> None:
        """Bytes leave at the sender's baud rate, after what it is still sending, and
        are delivered when the last one has arrived."""
        fmt = self.node_format if sender == "node" else self.device_format
        start = max(self.clock.now_us, self._busy_until[sender])
        self._busy_until[sender] = start + char_time_us(*fmt) * len(data)
        payload = data if self._matched else self._garble(data)
        if payload:
            self.clock.call_at(self._busy_until[sender], deliver, payload)

    # --- node side -----------------------------------------------------------
    def node_write(self, data: bytes) -> None:
        """The node's TX: bytes reach the device after their wire time."""
        if self.device is not None:
            self._transmit("node", data, self.device.receive)

    def node_break(self) -> None:
        """The node holds TX low for a break (SDI-12 wakes its sensors so); a device
        model that cares has `on_break()`."""
        if self.device is not None and hasattr(self.device, "on_break"):
            self.device.on_break()

    def node_reset(self) -> None:
        """The node's MCU was reset (a wake from deep sleep is one): what its UART had
        received and nobody read was in its RAM and is gone."""
        self._rx.clear()

    def node_available(self) -> int:
        return len(self._rx)

    def node_read(self, n: int) -> bytes:
        out = bytearray()
        while self._rx and len(out) < n:
            out.append(self._rx.popleft())
        return bytes(out)

    def node_peek_line(self) -> bool:
        return 0x0A in self._rx

    def node_read_line(self) -> bytes:
        """Up to and including the first LF, or all there is (MicroPython's readline)."""
        out = bytearray()
        while self._rx:
            b = self._rx.popleft()
            out.append(b)
            if b == 0x0A:
                break
        return bytes(out)

    # --- faults ---------------------------------------------------------------
    def jam(self, start_us: int, end_us: int) -> None:
        """From `start_us` to `end_us` the node receives a byte every JAM_GAP_US and no
        line end."""
        self.jams.append((start_us, end_us))
        self.clock.call_at(max(start_us, self.clock.now_us), self._jam_byte, end_us)

    def _jam_byte(self, end_us: int) -> None:
        if self.clock.now_us >= end_us:
            return
        self._rx.append(JAM_BYTE)
        self.clock.call_at(self.clock.now_us + JAM_GAP_US, self._jam_byte, end_us)

    # --- device side ---------------------------------------------------------
    def send(self, data: bytes) -> None:
        """The device's TX: each byte lands in the node's RX buffer after its wire time."""
        self._transmit("device", data, self._rx.extend)
