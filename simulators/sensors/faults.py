"""Fault modes every part model can be put into (issue: "every part can be absent, NACK,
return a bad CRC, time out, stick at a value, or go out of range").

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
"""
MODES = ("absent", "nack", "crc", "timeout", "stuck", "range")


class Timeout(Exception):
    """The part held the bus past the master's timeout (I2C clock stretching)."""
