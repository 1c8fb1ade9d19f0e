"""Fault modes every part model can be put into (issue: "every part can be absent, NACK,
return a bad CRC, time out, stick at a value, or go out of range"; issue 6: "a hung bus
ends in a reset, not a dead node").

A model has a `fault` attribute holding one of MODES or None, and shows each mode as
its real bus would:

| mode    | I2C part                              | UART part (SDI-12, Modbus)          |
|---------|---------------------------------------|-------------------------------------|
| absent  | NACKs its address, not seen by scan   | never answers                       |
| nack    | NACKs the transaction (present, sick) | Modbus exception reply / SDI-12 no reply to aD0! |
| crc     | a bit flips after the CRC was made    | same                                |
| timeout | holds SCL low: the master times out   | answers after the master's timeout  |
| stuck   | repeats its last raw result           | same                                |
| range   | raw values outside the part's range   | same                                |
| hang    | stretches SCL without end (see below) | never answers: a read cannot hang |

`hang` is a fault of the bus, not of the part's protocol, so the bus models show it for
every part on them (bus/i2c.py raises `Hang`, the node's side decides what the MCU's port
does with it; bus/sdi12.py and bus/modbus_rtu.py treat a hung part as a silent one):

- RP2040: MicroPython's rp2 I2C hands its `timeout` (50 ms by default) to pico-sdk's
  `i2c_read_timeout_us`/`i2c_write_timeout_us` (ports/rp2/machine_i2c.c), so by design a
  held SCL gives ETIMEDOUT (`timeout` above). pico-sdk 2.1.x, which MicroPython's rp2
  port builds on since v1.25 (micropython/micropython#16783), has open reports of those
  calls locking up instead (raspberrypi/pico-sdk#2311, #1471) and of a read loop that
  never sees its abort (#2025). `hang` is that case: the transaction never returns, and
  only the watchdog gets the node out (docs/watchdog.md).
- ESP32: MicroPython's esp32 I2C runs each transfer through ESP-IDF's
  `i2c_master_cmd_begin` with a timeout of 100 ms per byte plus one
  (ports/esp32/machine_i2c.c) and returns ETIMEDOUT when it passes: a hung part costs
  that wait and reads as a timeout.
- UART parts: every `machine.UART` read returns after its `timeout` (ports/rp2 and
  esp32 machine_uart.c), so a part that stops answering cannot block the node; the
  drivers' own waits are bounded. A hung UART part is a silent one.
"""
MODES = ("absent", "nack", "crc", "timeout", "stuck", "range", "hang")


class Timeout(Exception):
    """The part held the bus past the master's timeout (I2C clock stretching)."""


class Hang(Exception):
    """The part holds the bus and the transaction does not end (fault mode `hang`)."""

    def __init__(self, address: int, nbytes: int):
        super().__init__(f"part at 0x{address:02x} holds the bus")
        self.address = address
        self.nbytes = nbytes
