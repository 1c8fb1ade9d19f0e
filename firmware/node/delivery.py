"""Sending the queued readings through the board's modem.

    Sender(board, settings, queue, counter).run()

Oldest reading first. Each is sealed at the moment it is handed to the modem, under a
counter reserved in flash just before, and leaves the queue only when the modem
reports it sent. Anything else (no modem answer, join refused, duty-cycle wait, a
frame too big for the current data rate) leaves it queued for the next wake.
"""
from node.log import log
from payload import envelope

_HEADER_MAX = 5   # version byte + up to 4 counter bytes (docs/payload.md)
_TAG = 8


def open_modem(board):
    spec = board.spec["modem"]
    if spec["type"] == "rak3172":
        from modems.rak3172 import RAK3172
        return RAK3172(board.uart(spec["uart"], spec.get("baudrate", 115200)))
    raise ValueError("no driver for modem %r" % spec["type"])


class Sender:
    def __init__(self, board, settings, queue, counter):
        self.board = board
        self.settings = settings
        self.queue = queue
        self.counter = counter

    def run(self):
        names = self.queue.pending()
        if not names:
            return 0
        s = self.settings
        modem = open_modem(self.board)
        try:
            modem.wake()
            if not modem.joined():
                modem.configure(s.dev_eui, s.join_eui, s.app_key, dr=s.dr, adr=s.adr)
                if not modem.join():
                    log("join failed; %d readings stay queued", len(names))
                    return 0
            sent = self._send_all(modem, names)
        except Exception as e:  # noqa: BLE001 - the modem's trouble must not lose readings
            log("modem error: %s; readings stay queued", e)
            return 0
        try:
            modem.sleep()
        except Exception as e:  # noqa: BLE001
            log("modem sleep failed: %s", e)
        return sent

    def _send_all(self, modem, names):
        s = self.settings
        limit = modem.max_payload()
        sent = 0
        for name in names:
            body = self.queue.read(name)
            if _HEADER_MAX + len(body) + _TAG > limit:
                # RUI3 would transmit an empty frame and drop ours: never hand it over.
                log("reading seq=%d needs %d bytes, the data rate allows %d: kept queued",
                    int(name, 16), _HEADER_MAX + len(body) + _TAG, limit)
                break
            counter = self.counter.take()
            frame = envelope.seal(s.payload_key, s.dev_eui, counter, body)
            log("seal counter=%d seq=%d len=%d", counter, int(name, 16), len(frame))
            result = modem.send(s.port, frame)
            if not modem.sent(result):
                log("send: %s; %d readings stay queued", result, len(names) - sent)
                break
            self.queue.remove(name)
            sent += 1
        return sent
