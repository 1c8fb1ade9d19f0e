"""The node's end of the serial line to a simulated LoRaWAN modem, for the modem-model tests.

    term = ModemTerminal(Rak3172, DEV_EUI)
    assert term.ask("AT\\r\\n") == b"OK\\r\\n"

One clock, one network and one model behind a UartLink at the model's baud rate; the
terminal types bytes, reads what came back and moves the virtual clock. What differs
between the dialects stays a parameter: the line end `ask` adds, and how long it waits
for a reply. Each test module adds its dialect's join and send as a subclass.
"""
import random

from simulators.bus.uart import UartLink, char_time_us
from simulators.clock import Clock
from simulators.network import Network


def _bytes(text):
    return text.encode("latin-1") if isinstance(text, str) else text


class ModemTerminal:
    def __init__(self, model, dev_eui, *, eol="", reply_seconds=0.1, seed=1):
        """`model(clock, net, dev_eui, rng=...)` builds the modem; `eol` ends each line that
        `ask` sends ("" where the tests type their own line ends); `reply_seconds` is how
        long `ask` waits for the reply by default."""
        self.clock = Clock()
        self.net = Network(seed=seed)
        self.link = UartLink(self.clock, model.BAUDRATE)
        self.modem = model(self.clock, self.net, dev_eui, rng=random.Random(seed))
        self.link.attach(self.modem)
        self.eol = eol
        self.reply_seconds = reply_seconds
        self.buf = b""
        self.seen = b""

    def type(self, text):
        """Write `text` a byte at a time, as a UART delivers it; return the instant its last
        byte reaches the modem (the clock does not move)."""
        data = _bytes(text)
        for b in data:
            self.link.node_write(bytes([b]))
        return self.clock.now_us + len(data) * char_time_us(*self.link.node_format)

    def write(self, text):
        """Write `text`; the clock then stands where its last byte reaches the modem."""
        self.clock.advance_to(self.type(text))

    def run(self, seconds):
        self.clock.advance_to(self.clock.now_us + int(seconds * 1e6))

    def take(self):
        """All that has come back and was not read yet."""
        self.buf += self.link.node_read(self.link.node_available())
        out, self.buf = self.buf, b""
        return out

    def ask(self, line, seconds=None):
        """Send `line` (and the line end), give the modem `seconds` more, return its reply."""
        self.write(line + self.eol if isinstance(line, str) else line + _bytes(self.eol))
        self.run(self.reply_seconds if seconds is None else seconds)
        return self.take()

    def wait_for(self, needle, seconds):
        """Advance until `needle` has arrived; return the instant it did, or None. What came
        up to and including it is consumed and kept in `self.seen`."""
        needle = _bytes(needle)

        def arrived():
            self.buf += self.link.node_read(self.link.node_available())
            return needle in self.buf
        if not self.clock.advance_until(arrived, self.clock.now_us + int(seconds * 1e6)):
            return None
        end = self.buf.index(needle) + len(needle)
        self.seen, self.buf = self.buf[:end], self.buf[end:]
        return self.clock.now_us
