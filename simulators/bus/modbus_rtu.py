"""A multi-drop RS-485 bus with Modbus RTU slaves, as one device on a node's UART.

    bus = ModbusBus(sim.clock, 9600, pins=sim.node.pins, de_pin=6)
    bus.add(MySonde(unit=1))
    sim.node.attach_uart_device(1, bus, 9600, 8, 0, 1)     # 8E1 (parity 0 = even)

Follows "MODBUS over Serial Line Specification and Implementation Guide V1.02":
- §2.5.1 RTU transmission mode: 11-bit characters (start, 8 data, parity, stop);
- §2.5.1.1 RTU framing: frames are separated by a silent interval of at least 3.5
  character times (t3.5); a gap of more than 1.5 character times (t1.5) inside a frame
  makes it incomplete, and the receiver discards it; above 19200 baud t1.5 = 750 µs and
  t3.5 = 1750 µs. A request that starts less than t3.5 after the last activity on the
  line (a reply) is not a frame of its own and is discarded;
- §2.5.1.2 / §6.2.2 CRC-16 (init 0xFFFF, reflected polynomial 0xA001, low byte first);
  a frame whose CRC does not match is discarded without a reply (§2.4.2, the slave
  state diagram: a frame found in error is dropped and no reply is sent);
- §2.2 broadcast mode and §2.3 addressing: unit 0 is a broadcast (every slave acts on
  a write, none replies), 1..247 are slaves, 248..255 reserved;
- and the "MODBUS Application Protocol Specification V1.1b3": §6.3 (0x03), §6.4 (0x04),
  §6.6 (0x06), §7 exception responses: function | 0x80 and one code (1 illegal function,
  2 illegal data address, 3 illegal data value, 4 slave device failure).

The half-duplex transceiver: when the board file names a driver-enable pin, a request
the master wrote while that pin was low never reached the line (it is dropped), and a
reply that starts while it is still high is not received by the master (its receiver
is off). Slaves answer after their turnaround delay (`response_delay_us`).

Slave faults (simulators/sensors/faults.py): absent (never answers), nack (exception 4,
slave device failure), crc (the reply's CRC is corrupted), timeout (the reply comes
`late_us` after the request, long after a master's response timeout), stuck (the
previous reply to the same request, byte for byte), range (the slave's registers hold
values out of its range: up to the subclass), hang (the slave's MCU locked up: it never
answers, like absent; the master's UART reads time out, so it cannot hang the node).
"""
from __future__ import annotations

from simulators.bus.uart import char_time_us

ILLEGAL_FUNCTION = 1
ILLEGAL_DATA_ADDRESS = 2
ILLEGAL_DATA_VALUE = 3
SLAVE_DEVICE_FAILURE = 4

FC_READ_HOLDING = 0x03
FC_READ_INPUT = 0x04
FC_WRITE_SINGLE = 0x06


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS: crc16(b"123456789") == 0x4B37; appended low byte first."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return bytes(frame) + crc16(frame).to_bytes(2, "little")


class ModbusException(Exception):
    """Raised by a slave's hooks: the bus sends an exception reply with `code`."""

    def __init__(self, code: int, why: str = ""):
        super().__init__(code, why)
        self.code = code


class ModbusSlave:
    """One slave on the bus. Subclasses override the hooks of the functions they serve;
    the default is exception 1 (illegal function)."""

    FAULT_MODES = ("absent", "nack", "crc", "timeout", "stuck", "range")
    response_delay_us = 5_000      # request end -> reply start (processing time)
    late_us = 1_000_000            # fault "timeout": the reply comes this much later
    # Further unit addresses the slave acts on and answers at (outside 1..247, e.g. the
    # SMT100's 0xFD "any probe" address, sensors.md §2.2); its reply carries that address.
    also_answers: tuple = ()

    def __init__(self, unit: int):
        if not 1 <= unit <= 247:
            raise ValueError(f"unit address {unit} is not 1..247")
        self.unit = unit
        self.fault: str | None = None
        self._last_reply: dict[bytes, bytes] = {}    # request PDU -> reply (for "stuck")

    def read_holding(self, address: int, count: int) -> list[int]:
        raise ModbusException(ILLEGAL_FUNCTION)

    def read_input(self, address: int, count: int) -> list[int]:
        raise ModbusException(ILLEGAL_FUNCTION)

    def write_single(self, address: int, value: int) -> None:
        raise ModbusException(ILLEGAL_FUNCTION)


class ModbusBus:
    def __init__(self, clock, baudrate: int = 9600, bits: int = 8, parity=0, stop: int = 1,
                 pins: dict | None = None, de_pin: int | None = None):
        self.clock = clock
        self.char_us = char_time_us(baudrate, bits, parity, stop)
        self.t15_us = 750 if baudrate > 19200 else (self.char_us * 15 + 9) // 10
        self.t35_us = 1750 if baudrate > 19200 else (self.char_us * 35 + 9) // 10
        self.pins = pins
        self.de_pin = de_pin
        self.uart = None                 # the UartLink, set by attach()
        self.slaves: dict[int, ModbusSlave] = {}
        self._frame = bytearray()
        self._frame_bad = False
        self._frame_start_us = 0
        self._last_activity_us: int | None = None   # end of the last character on the line
        self._end_event = None
        # What happened, for tests: (t_us, event, bytes) with event one of
        # "request", "reply", "ignored: <why>".
        self.log: list[tuple[int, str, bytes]] = []

    def add(self, slave: ModbusSlave) -> ModbusSlave:
        if slave.unit in self.slaves:
            raise ValueError(f"two slaves with unit address {slave.unit}")
        self.slaves[slave.unit] = slave
        return slave

    # --- the line ------------------------------------------------------------------
    def _de_high(self) -> bool:
        if self.pins is None or self.de_pin is None:
            return True
        return bool(self.pins.get(self.de_pin, 0))

    def receive(self, data: bytes) -> None:
        """Bytes from the master; called when the last of them has arrived."""
        now = self.clock.now_us
        if not self._de_high():
            # The transceiver's driver was off: the bytes never reached the line.
            self.log.append((now, "ignored: DE low while the master sent", bytes(data)))
            return
        first_end = now - (len(data) - 1) * self.char_us
        idle = None if self._last_activity_us is None else first_end - self.char_us - self._last_activity_us
        if self._frame:
            if idle is not None and idle > self.t15_us:
                self._frame_bad = True      # §2.5.1.1: a gap of more than t1.5 in a frame
        else:
            self._frame_start_us = first_end - self.char_us
            self._frame_bad = idle is not None and idle < self.t35_us
        self._frame.extend(data)
        self._last_activity_us = now
        if self._end_event is not None:
            self._end_event.cancel()
        self._end_event = self.clock.call_at(now + self.t35_us, self._end_of_frame)

    def _end_of_frame(self) -> None:
        self._end_event = None
        frame, bad = bytes(self._frame), self._frame_bad
        self._frame.clear()
        self._frame_bad = False
        now = self.clock.now_us
        if bad:
            self.log.append((now, "ignored: no t3.5 silence before it, or a gap over t1.5", frame))
            return
        if len(frame) < 4:
            self.log.append((now, "ignored: shorter than a frame", frame))
            return
        if crc16(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
            self.log.append((now, "ignored: bad CRC", frame))
            return
        self.log.append((now, "request", frame))
        unit, pdu = frame[0], frame[1:-2]
        if unit == 0:
            for slave in self.slaves.values():
                if slave.fault not in ("absent", "hang"):
                    self._dispatch(slave, pdu)
            return
        slave = self.slaves.get(unit)
        if slave is None:
            slave = next((s for s in self.slaves.values() if unit in s.also_answers), None)
        if slave is None or slave.fault in ("absent", "hang"):
            return
        if slave.fault == "stuck" and pdu in slave._last_reply:
            reply = slave._last_reply[pdu]
        else:
            reply = with_crc(bytes([unit]) + self._dispatch(slave, pdu))
            if slave.fault != "stuck":
                slave._last_reply[pdu] = reply
        if slave.fault == "crc":
            reply = reply[:-1] + bytes([reply[-1] ^ 0x5A])
        delay = slave.response_delay_us + (slave.late_us if slave.fault == "timeout" else 0)
        self.clock.call_at(now + delay, self._send_reply, reply)

    def _dispatch(self, slave: ModbusSlave, pdu: bytes) -> bytes:
        fc = pdu[0]
        try:
            if slave.fault == "nack":
                raise ModbusException(SLAVE_DEVICE_FAILURE, "fault: nack")
            if fc in (FC_READ_HOLDING, FC_READ_INPUT):
                if len(pdu) != 5:
                    raise ModbusException(ILLEGAL_DATA_VALUE, "request length")
                address = int.from_bytes(pdu[1:3], "big")
                count = int.from_bytes(pdu[3:5], "big")
                if not 1 <= count <= 125:
                    raise ModbusException(ILLEGAL_DATA_VALUE, "count")   # §6.3
                if address + count > 0x10000:
                    raise ModbusException(ILLEGAL_DATA_ADDRESS, "beyond 0xFFFF")
                hook = slave.read_holding if fc == FC_READ_HOLDING else slave.read_input
                words = hook(address, count)
                if len(words) != count:
                    raise RuntimeError(f"slave returned {len(words)} registers for {count}")
                data = b"".join((w & 0xFFFF).to_bytes(2, "big") for w in words)
                return bytes([fc, len(data)]) + data
            if fc == FC_WRITE_SINGLE:
                if len(pdu) != 5:
                    raise ModbusException(ILLEGAL_DATA_VALUE, "request length")
                slave.write_single(int.from_bytes(pdu[1:3], "big"), int.from_bytes(pdu[3:5], "big"))
                return bytes(pdu)        # §6.6: the reply echoes the request
            raise ModbusException(ILLEGAL_FUNCTION, f"function 0x{fc:02x}")
        except ModbusException as e:
            return bytes([(fc | 0x80) & 0xFF, e.code])

    def _send_reply(self, reply: bytes) -> None:
        now = self.clock.now_us
        self._last_activity_us = now + len(reply) * self.char_us
        if self._de_high():
            # The master's receiver is off (RE tied to DE) and both drive the line.
            self.log.append((now, "ignored: reply lost, the master's DE still high", reply))
            return
        self.log.append((now, "reply", reply))
        if self.uart is not None:
            self.uart.send(reply)
