"""Fuzz: the Wio-E5 driver's reply parsing (firmware/modems/wioe5.py over modems/at.py) on the
real MicroPython, the module's replies replaced by garbage and by damaged real conversations
(lines from /work/shared/reference/lorawan-modems.md §1.2 and simulators/modems/wioe5.py)
through a scripted UART, on a virtual clock. Every public operation ends in its documented
result or a ModemError with one of the shared reasons, never another exception or a hang;
the key never shows in an error; a downlink comes only from a `PORT: n; RX:` line; the
session flags follow the outcome; and a module that answers again is found by `wake()`."""
from __future__ import annotations

import pytest
from Crypto.Cipher import AES

from fuzzkit import (EXAMPLES, FUZZ_UART, MicroPythonWorker, modem_inputs, pack_input,
                     run_batches)

DEV_EUI = bytes.fromhex("2CF7F12024900138")
JOIN_EUI = bytes.fromhex("70B3D57ED0000001")
APP_KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
KCV = AES.new(APP_KEY, AES.MODE_ECB).encrypt(bytes(16))[:3]

HARNESS = FUZZ_UART + r"""
from binascii import hexlify
import modems
from modems import ModemError, SENT, NOT_ACKED, BUSY, REFUSED, RESTRICTED, NOT_JOINED
from modems.wioe5 import WioE5

DEV = %r
JOIN = %r
KEY = %r
KEY_HEX = hexlify(KEY).decode().upper()
OPS = ("wake", "joined", "join", "send", "data_rate", "max_payload", "configure", "sleep",
       "reset")
CONFIRMED = 1

def session(m):
    return (m._joined, m._rejoin, m._port, m._had_session, len(m.downlinks))

def run_op(m, op, flags):
    if op == "wake":
        return m.wake() is None, None
    if op == "joined":
        m.wake()
        r = m.joined()
        return r is True or r is False, r
    if op == "join":
        r = m.join(5000)
        return r is True or r is False, r
    if op == "send":
        r = m.send(2, b"\x01\x02", confirmed=bool(flags & CONFIRMED), timeout_ms=5000)
        return r == SENT or (r == NOT_ACKED and flags & CONFIRMED), r
    if op == "data_rate":
        r = m.data_rate()
        return isinstance(r, int) and 0 <= r <= 7, r
    if op == "max_payload":
        r = m.max_payload()
        return isinstance(r, int) and r >= 0, r
    if op == "configure":
        return m.configure(DEV, JOIN, KEY, dr=3, adr=True) is None, None
    if op == "sleep":
        return m.sleep() is None, None
    return m.reset(3000) is None, None

def fuzz_one(data):
    op = OPS[data[0] %% len(OPS)]
    flags = data[2]
    replies = unpack_replies(data, 3)
    stream = b"".join(replies)
    uart = FuzzUart(replies, data[1] %% 80)
    m = WioE5(uart)
    before = session(m)
    err = None
    try:
        good, r = run_op(m, op, flags)
        if not good:
            return "BUG %%s returned %%r" %% (op, r)
        res = "ok %%s %%r" %% (op, r)
    except ModemError as e:
        err = e
        bad = modem_error_bug(e, KEY_HEX)
        if bad:
            return bad
        res = "rej ModemError %%d" %% e.reason
    bad = at_ok(m._at, 16)
    if bad:
        return bad
    if len(m.downlinks) > 8 or len(m.downlinks) > heard(stream, b"RX:"):
        return "BUG downlinks %%r from no RX line" %% (m.downlinks,)
    for port, payload in m.downlinks:
        if not isinstance(port, int) or not 0 <= port <= 255 or not isinstance(payload, bytes):
            return "BUG downlink (%%r, %%r) accepted" %% (port, payload)
    if m.resets > heard(stream, b"Please join network first"):
        return "BUG %%d resets counted from no reply saying so" %% m.resets
    if m._joined not in (None, True, False):
        return "BUG session state %%r" %% m._joined
    if op == "join" and err is None and m._joined is not r:
        return "BUG join gave %%r, the driver holds %%r" %% (r, m._joined)
    if op == "send" and err is None and m._joined is not True:
        return "BUG a sent uplink left the session unknown"
    if err is not None and err.reason == NOT_JOINED and m._joined is not False:
        return "BUG NOT_JOINED left the session %%r" %% m._joined
    if err is not None and op in ("data_rate", "max_payload", "sleep") and session(m) != before:
        return "BUG a refused %%s changed the driver: %%r -> %%r" %% (op, before, session(m))
    # The module answers properly again: the driver finds it (what was left on the line
    # stays there, the rest of the script is gone).
    uart.replies = [b"+AT: OK\r\n"] * 4
    try:
        m.wake()
    except ModemError as e:
        return "BUG no recovery after %%s: wake() %%r" %% (res, e.detail)
    return res
""" % (DEV_EUI, JOIN_EUI, APP_KEY)

OPS = {name: i for i, name in enumerate(("wake", "joined", "join", "send", "data_rate",
                                          "max_payload", "configure", "sleep", "reset"))}
CONFIRMED = 1


def lines(*ls: str) -> bytes:
    return b"".join(x.encode() + b"\r\n" for x in ls)


def colons(b: bytes) -> str:
    return ":".join(f"{x:02X}" for x in b)


def eeprom(addr: int, value: int) -> bytes:
    return lines(f"+EEPROM: {addr:02X}, {value:02X}")


JOINED = lines("+JOIN: Start", "+JOIN: NORMAL", "+JOIN: Network joined",
               "+JOIN: NetID C0002B DevAddr FC:00:AC:0B", "+JOIN: Done")
NOT_ACCEPTED = lines("+JOIN: Start", "+JOIN: NORMAL", "+JOIN: Join failed", "+JOIN: Done")
SETTINGS_TAIL = [lines("+RETRY: 0"), lines("+ADR: ON"),
                 lines("+DR: DR3", "+DR: EU868 DR3  SF9 BW125K")]
# (op, flags, the module's replies in order (the first already on the line), the
# harness's answer for them unchanged): real conversations, one per path.
SCRIPTS = [
    (OPS["wake"], 0, [b"", lines("+AT: OK")], "ok wake None"),
    (OPS["joined"], 0, [b"", lines("+LOWPOWER: WAKEUP"), lines("+AT: OK"), eeprom(3, 1)],
     "ok joined True"),
    (OPS["joined"], 0, [b"", lines("+AT: OK")], "ok joined False"),
    (OPS["join"], 0, [b"", JOINED, eeprom(3, 0), eeprom(3, 1)], "ok join True"),
    (OPS["join"], 0, [b"", NOT_ACCEPTED, eeprom(3, 0)], "ok join False"),
    (OPS["join"], 0, [b"", lines("+JOIN: Joined already"), eeprom(3, 1)], "ok join True"),
    (OPS["join"], 0, [b"", lines("+JOIN: LoRaWAN modem is busy")], "rej ModemError 2"),
    (OPS["join"], 0, [b"", lines("+JOIN: No band in 13469ms")], "rej ModemError 5"),
    (OPS["send"], 0, [b"", lines("+PORT: 8"), lines("+PORT: 2"),
                      lines("+MSGHEX: Start", "+MSGHEX: Done")], "ok send 0"),
    (OPS["send"], 0, [b"", lines("+PORT: 2"),
                      lines("+MSGHEX: Start", "+MSGHEX: FPENDING", '+MSGHEX: PORT: 10; RX: "0A0B"',
                            "+MSGHEX: RXWIN1, RSSI -101, SNR -16.0", "+MSGHEX: Done")], "ok send 0"),
    (OPS["send"], CONFIRMED, [b"", lines("+PORT: 2"),
                              lines("+CMSGHEX: Start", "+CMSGHEX: Wait ACK", "+CMSGHEX: FPENDING",
                                    "+CMSGHEX: ACK Received", '+CMSGHEX: PORT: 15; RX: "48656C6C6F"',
                                    "+CMSGHEX: RXWIN1, RSSI -43, SNR 10.0", "+CMSGHEX: Done")],
     "ok send 0"),
    (OPS["send"], CONFIRMED, [b"", lines("+PORT: 2"),
                              lines("+CMSGHEX: Start", "+CMSGHEX: Wait ACK", "+CMSGHEX: Done")],
     "ok send 1"),
    (OPS["send"], 0, [b"", lines("+PORT: 2"), lines("+MSGHEX: Please join network first"),
                      eeprom(3, 0)], "rej ModemError 3"),
    (OPS["send"], 0, [b"", lines("+PORT: 2"), lines("+MSGHEX: Length error 0")], "rej ModemError 4"),
    (OPS["send"], 0, [b"", lines("+PORT: 2"), lines("+MSGHEX: No free channel")], "rej ModemError 5"),
    (OPS["data_rate"], 0, [b"", lines("+DR: DR5", "+DR: EU868 DR5  SF7 BW125K")], "ok data_rate 5"),
    (OPS["data_rate"], 0, [b"", lines("+DR: DR0 (ADR DR3)", "+DR: EU868 DR3  SF9 BW125K")],
     "ok data_rate 3"),
    (OPS["max_payload"], 0, [b"", lines("+LW: LEN, 51")], "ok max_payload 51"),
    (OPS["configure"], 0, [b"", lines("+MODE: LWOTAA"), lines("+DR: EU868"),
                           lines("+ID: DevEui, " + colons(DEV_EUI)),
                           lines("+ID: AppEui, " + colons(JOIN_EUI)),
                           eeprom(0, KCV[0]), eeprom(1, KCV[1]), eeprom(2, KCV[2])] + SETTINGS_TAIL,
     "ok configure None"),
    # A new AppKey: the session marker goes first, then the key, then its check value.
    (OPS["configure"], 0, [b"", lines("+MODE: LWOTAA"), lines("+DR: EU868"),
                           lines("+ID: DevEui, " + colons(DEV_EUI)),
                           lines("+ID: AppEui, " + colons(JOIN_EUI)),
                           eeprom(0, 0), eeprom(1, 0), eeprom(2, 0), eeprom(3, 1), eeprom(3, 0),
                           lines("+KEY: APPKEY " + APP_KEY.hex().upper()),
                           eeprom(0, KCV[0]), eeprom(1, KCV[1]), eeprom(2, KCV[2])] + SETTINGS_TAIL,
     "ok configure None"),
    (OPS["configure"], 0, [b"", lines("+MODE: ERROR(-12)")], "rej ModemError 8"),
    (OPS["sleep"], 0, [b"", lines("+LOWPOWER: SLEEP")], "ok sleep None"),
    (OPS["reset"], 0, [b"", lines("+RESET: OK"), lines("+AT: OK"), eeprom(3, 0)], "ok reset None"),
]
# Every line the module prints in these conversations, and its other words (§1.2).
VOCABULARY = sorted({x for _, _, rs, _ in SCRIPTS for r in rs for x in r.split(b"\r\n") if x} | {
    b"+AT: OK", b"+AT: ERROR(-10)", b"+LOWPOWER: WAKEUP", b"+INFO: Input timeout",
    b"+MSGHEX: DR error", b"+MSGHEX: LoRaWAN modem is busy", b"+JOIN: Not in OTAA mode",
    b"+MSGHEX: No band in -5ms", b"+MSGHEX: No band in ms", b"+DR: DR99", b"+DR: DR9 (ADR DR12)",
    b"+DR: DRx", b"+LW: LEN, -1", b"+LW: LEN, ", b"+EEPROM: 03, 1FF", b"+EEPROM: 3", b"+EEPROM: ,",
    b'+MSGHEX: PORT: 999; RX: "00"', b'+MSGHEX: PORT: -1; RX: "00"', b'+MSGHEX: PORT: 3; RX: "0"',
    b"+MSGHEX: PORT: 3", b"+MSGHEX: PORT:; RX:", b"+PORT: ERROR(-1)", b"+PORT: 300", b"+PORT: x",
    b"+KEY: ERROR(-1)", b"+JOIN: Start", b"+", b"+:", b"+UART: BR, 9600",
})


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = MicroPythonWorker(HARNESS, tmp_path_factory.mktemp("fuzz-wioe5"))
    yield w
    w.close()


def test_real_conversations_give_their_documented_results(worker):
    # The seeds are right: undamaged, each conversation ends as the spec says, in whole
    # lines and in pieces of 3 bytes.
    for chunk in (0, 3):
        got = worker.run([pack_input(op, chunk, flags, replies) for op, flags, replies, _ in SCRIPTS])
        assert got == [want for _, _, _, want in SCRIPTS]


def test_wioe5_driver_survives_any_module_output(worker):
    ran = run_batches(worker, modem_inputs(SCRIPTS, VOCABULARY, len(OPS)), "Wio-E5 driver")
    assert ran >= EXAMPLES
