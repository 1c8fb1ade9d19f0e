"""LoRaWAN modems on a UART: one AT transport (`modems.at`) and a module per dialect.

    from modems import open_modem
    modem = open_modem(board)          # the driver the board file names
    modem.wake(); modem.configure(dev_eui, join_eui, app_key); modem.join(); modem.send(2, data)

Every dialect's driver class offers the same interface, so the node never asks which modem
it has:

    wake()                      make sure the modem answers (ModemError NO_ANSWER if not)
    sleep(ms)                   put it to sleep until the next wake
    reset()                     restart it (soft reset command) and wait until it answers
    configure(dev_eui, join_eui, app_key, dr=None, adr=True)
                                OTAA on EU868; writes only what differs (flash wear)
    joined() -> bool            the modem holds a session
    join(timeout_ms) -> bool    one OTAA attempt: True joined, False no accept
    data_rate() -> int          current EU868 data rate (0..7)
    max_payload() -> int        largest application payload at that data rate
    send(port, data, confirmed=False) -> SENT | NOT_ACKED, else ModemError
    downlinks                   [(port, bytes)], oldest first; the caller pops them
    resets                      modem reboots seen (each one may have cost the session)

Results and error reasons are shared by every dialect (below), so the node's delivery code
handles a duty-cycle wait or a silent modem the same way whichever module the board carries.
"""
from micropython import const

# send() results
SENT = const(0)          # transmitted (and ACKed, for a confirmed uplink)
NOT_ACKED = const(1)     # confirmed uplink transmitted, no ACK came
# ModemError reasons
BUSY = const(2)          # the MAC is still busy with an earlier join or uplink
NOT_JOINED = const(3)
TOO_BIG = const(4)       # payload larger than the current data rate allows
RESTRICTED = const(5)    # duty cycle: retry after ModemError.wait_ms
TIMEOUT = const(6)       # no answer or no result event in time
NO_ANSWER = const(7)     # the modem does not answer at all
REFUSED = const(8)       # another error reply; ModemError.detail holds it

REASONS = ("sent", "not acked", "busy", "not joined", "too big", "duty cycle", "timeout",
           "no answer", "refused")

# EU868 maximum application payload per DR without FOpts (LoRaWAN Regional Parameters
# RP002-1.0.3 table 2-7 "EU863-870 maximum payload size", N column, repeater-compatible
# values as LoRaMac-node's MaxPayloadOfDatarateEU868 uses them).
_MAX_PAYLOAD = (51, 51, 51, 115, 242, 242, 242, 242)


class ModemError(Exception):
    def __init__(self, reason, detail="", wait_ms=0):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail
        self.wait_ms = wait_ms


def reason_name(reason):
    return REASONS[reason] if 0 <= reason < len(REASONS) else str(reason)


def max_payload(dr):
    """Largest application payload at EU868 data rate `dr` (no MAC commands pending)."""
    return _MAX_PAYLOAD[dr]


# Dialect -> (module, class, default baud rate of its factory firmware).
_DIALECTS = {
    "rak3172": ("modems.rak3172", "RAK3172", 115200),
    "wioe5": ("modems.wioe5", "WioE5", 9600),
    "rn2483": ("modems.rn2483", "RN2483", 57600),
}


def open_modem(board):
    """The driver for the modem the board file names, on its UART."""
    spec = board.spec["modem"]
    try:
        module, cls, baud = _DIALECTS[spec["type"]]
    except KeyError:
        raise ValueError("no driver for modem %r" % spec["type"])
    import gc
    gc.collect()
    mod = __import__(module, None, None, (cls,))
    return getattr(mod, cls)(board.uart(spec["uart"], spec.get("baudrate", baud)))
