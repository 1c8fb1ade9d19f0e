"""The virtual board's USB serial: a pseudo-terminal, behaving like a USB-UART bridge.

    port = PtyPort()
    port.path            # "/dev/pts/7": what mpremote and nodectl connect to

The bridge of an ESP32 board stays enumerated whatever the MCU does (deep sleep
included), so the pty exists from start to end. What the board sends while no
program has the port open is lost, as with a bridge whose port nobody opened; a
program that opens it sees only what is sent from then on. Linux signals "no program
has the slave open" with POLLHUP on the master, which is how this tells.
"""
from __future__ import annotations

import os
import select
import tty

OUT_LIMIT = 1 << 20      # bytes kept for a connected but slow reader before the oldest go


class PtyPort:
    def __init__(self):
        self.fd, slave = os.openpty()
        tty.setraw(slave)            # no echo, no line editing: bytes pass as on a UART
        self.path = os.ttyname(slave)
        os.close(slave)              # only clients hold the slave: POLLHUP when none does
        os.set_blocking(self.fd, False)
        self._out = bytearray()
        self.dropped = 0             # bytes sent while no client listened

    def connected(self) -> bool:
        p = select.poll()
        p.register(self.fd, select.POLLIN)
        return not any(ev & select.POLLHUP for _, ev in p.poll(0))

    def read(self) -> bytes:
        try:
            return os.read(self.fd, 4096)
        except (BlockingIOError, OSError):   # EIO: the last client just closed
            return b""

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self.connected():
            self.dropped += len(data) + len(self._out)
            self._out.clear()
            return
        self._out += data
        self.flush()

    def pending(self) -> bool:
        return bool(self._out)

    def flush(self) -> None:
        while self._out:
            try:
                n = os.write(self.fd, self._out)
            except BlockingIOError:
                break
            except OSError:              # the client went away mid-write
                self.dropped += len(self._out)
                self._out.clear()
                return
            del self._out[:n]
        if len(self._out) > OUT_LIMIT:
            cut = len(self._out) - OUT_LIMIT
            del self._out[:cut]
            self.dropped += cut

    def close(self) -> None:
        os.close(self.fd)
