"""A multi-drop SDI-12 line: one data recorder (the node's UART) and sensors by address.

    bus = SDI12Bus(clock)
    bus.add(probe)                                  # probe.address "0".."9"
    node.attach_uart_device(1, bus, 1200, 7, 0, 1)  # 1200 baud 7E1 (SDI-12 §4.2)

Follows SDI-12 v1.4 §7 timing as sensors see it:
- a break shorter than 6.5 ms is not a break, one of 12 ms or more always is, in
  between the sensor need not see it (this model does not); `UART.sendbreak()` holds
  the line for 13 bit times at the node's current baud rate (MicroPython rp2 port);
- after a break, sensors look for an address only after 8.33 ms of marking;
- sensors fall asleep after 100 ms of marking; a command to a sleeping sensor, or to
  a different sensor than the one addressed since the last break, is not heard;
- a sensor starts its reply 8.33 ms of marking after the command's stop bit and its
  first start bit within 15 ms; a break aborts a reply not yet sent and a pending
  measurement (§4.4.6).

The board's adapter is a plain one-wire level shifter: TX and RX both sit on the data
line, so the node hears its own command (`echo=True`, the default). Every protocol
violation the sensors see is kept in `violations` for tests.

A sensor in fault mode `hang` (its MCU locked up) neither hears nor answers: the node's
UART reads time out, so on this bus a hung sensor is a silent one
(simulators/sensors/faults.py).
"""
from __future__ import annotations

from simulators.bus.uart import char_time_us

BREAK_MIN_US = 12_000
BREAK_IGNORE_US = 6_500
MARK_US = 8_330
MARK_TOL_US = 400
SLEEP_US = 100_000
REPLY_DELAY_US = 10_000       # marking 8.33 ms, then the first start bit (<= 15 ms)
CHAR_US = char_time_us(1200, 7, "E", 1)


def _hung(sensor) -> bool:
    return getattr(sensor, "fault", None) == "hang"


class SDI12Bus:
    def __init__(self, clock, echo: bool = True):
        self.clock = clock
        self.echo = echo
        self.sensors: dict[str, object] = {}
        self.uart = None                  # the UartLink, set by attach()
        self.violations: list[str] = []
        self.commands: list[str] = []     # every command heard, for tests
        self.timeline: list[tuple[int, int, str]] = []   # (first start bit, end µs, text)
        self._break_end: int | None = None
        self._addressed: str | None = None
        self._line_idle_from = 0          # end of the last character on the line
        self._generation = 0              # a break cancels what was scheduled before it
        self._awake = False

    def add(self, sensor) -> None:
        self.sensors[sensor.address] = sensor
        sensor.bus = self

    # --- from the node ------------------------------------------------------------
    def on_break(self) -> None:
        baud = self.uart.node_format[0] if self.uart else 1200
        duration = int(13 * 1e6 / baud)
        if duration < BREAK_MIN_US:
            self.violations.append(f"break of {duration / 1000:.1f} ms at {baud} baud (< 12 ms)")
            if duration < BREAK_IGNORE_US:
                return
            return    # 6.5..12 ms: a sensor may or may not see it; this one does not
        self._generation += 1
        self._awake = True
        self._break_end = self.clock.now_us
        self._addressed = None
        self._line_idle_from = self.clock.now_us
        for s in self.sensors.values():
            s.on_break()

    def receive(self, data: bytes) -> None:
        now = self.clock.now_us
        start = now - len(data) * CHAR_US
        if self.echo and self.uart is not None:
            self.uart._rx.extend(data)     # the node's RX hears the line as it sends
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            text = ""
        if start - self._line_idle_from >= SLEEP_US:
            self._awake = False
        if not self._awake:
            self.violations.append(f"{text!r} to sleeping sensors (no break within 100 ms)")
            self._line_idle_from = now
            return
        if self._break_end is not None and start - self._break_end < MARK_US - MARK_TOL_US:
            self.violations.append(f"{text!r} only {(start - self._break_end) / 1000:.2f} ms "
                                   f"after the break (< 8.33 ms marking)")
            self._line_idle_from = now
            return
        self._line_idle_from = now
        if not text.endswith("!") or not text[:-1].isprintable() or len(text) < 2:
            self.violations.append(f"not a command: {data!r}")
            return
        self.commands.append(text)
        self.timeline.append((start, now, text))
        address = text[0]
        if address == "?":
            replies = [s.command(s.address, text[1:]) for s in self.sensors.values()
                       if not _hung(s)]
            replies = [r for r in replies if r[0] is not None]
            if len(replies) > 1:     # every sensor answers: a collision
                self._schedule(now + REPLY_DELAY_US, "\x7f" * 3 + "\r\n")
            elif replies:
                self._schedule(now + replies[0][1], replies[0][0])
            return
        if self._addressed is not None and address != self._addressed:
            self.violations.append(f"{text!r}: a different sensor without a new break")
            return
        self._addressed = address
        sensor = self.sensors.get(address)
        if sensor is None or _hung(sensor):
            return
        reply, delay = sensor.command(address, text[1:])
        if reply is not None:
            self._schedule(now + delay, reply)

    # --- from the sensors ---------------------------------------------------------
    def _schedule(self, at_us: int, text: str) -> None:
        self.clock.call_at(at_us, self._send, self._generation, text)

    def service_request(self, at_us: int, address: str) -> None:
        """A sensor whose data is ready sends `a<CR><LF>` (§4.4.6)."""
        self._schedule(at_us, address + "\r\n")

    def _send(self, generation: int, text: str) -> None:
        if generation != self._generation:
            return     # a break came first: the reply or service request is abandoned
        data = text.encode("ascii")
        self._line_idle_from = self.clock.now_us + len(data) * CHAR_US
        for i in range(len(data)):
            # character by character: the node sees the first one arrive 8.33 ms
            # after its start bit, not when the whole reply is through
            self.uart.send(data[i:i + 1])
