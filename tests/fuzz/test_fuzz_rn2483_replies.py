"""Fuzz: the RN2483 driver's reply parsing (firmware/modems/rn2483.py over modems/at.py) on
the real MicroPython, the module's replies replaced by garbage and by damaged real
conversations (lines from /work/shared/reference/lorawan-modems.md §1.3 and
simulators/modems/rn2483.py) through a scripted UART, on a virtual clock. Every public
operation ends in its documented result or a ModemError with one of the shared reasons,
never another exception or a hang; the key never shows in an error; a downlink comes only
from a `mac_rx` line, a reset only from a banner; and a module that answers again is found
by `wake()`."""
from __future__ import annotations

import pytest
from Crypto.Cipher import AES

from fuzzkit import (EXAMPLES, FUZZ_UART, MicroPythonWorker, modem_inputs, pack_input,
                     run_batches)

DEV_EUI = bytes.fromhex("0004A30B001A55ED")
JOIN_EUI = bytes.fromhex("70B3D57ED0000001")
APP_KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
# What configure() keeps to know the saved session's keys: AES(AppKey, DevEUI | JoinEUI).
FINGERPRINT = AES.new(APP_KEY, AES.MODE_ECB).encrypt(DEV_EUI + JOIN_EUI)[:4]
BANNER = b"RN2483 1.0.4 Oct 12 2017 14:59:25"

HARNESS = FUZZ_UART + r"""
from binascii import hexlify
from modems import ModemError, SENT, NOT_ACKED, BUSY, REFUSED, RESTRICTED
from modems import rn2483
from modems.rn2483 import RN2483

DEV = %r
JOIN = %r
KEY = %r
FP = %r
BANNER = %r
KEY_HEX = hexlify(KEY).decode().upper()
OPS = ("wake", "joined", "join", "send", "data_rate", "max_payload", "configure", "sleep",
       "reset")
CONFIRMED = 1
RESUMED = 2

def state(m):
    return (m._fp, m._verify, len(m._sent), len(m.downlinks))

def run_op(m, op, flags):
    if op == "wake":
        r = m.wake()
        return r is None and m.version.startswith("RN2483 "), r
    if op == "joined":
        r = m.joined()
        return r is True or r is False, r
    if op == "join":
        r = m.join(5000)
        return r is True or r is False, r
    if op == "send":
        cnf = flags & (CONFIRMED | RESUMED)
        r = m.send(2, b"\x01\x02", confirmed=bool(flags & CONFIRMED), timeout_ms=5000)
        return r == SENT or (r == NOT_ACKED and cnf), r
    if op == "data_rate":
        r = m.data_rate()
        return isinstance(r, int) and 0 <= r <= 7, r
    if op == "max_payload":
        r = m.max_payload()
        return r in (51, 115, 222), r
    if op == "configure":
        return m.configure(DEV, JOIN, KEY, dr=5, adr=True) is None, None
    if op == "sleep":
        return m.sleep(1000) is None, None
    return m.reset(3000) is None, None

def fuzz_one(data):
    op = OPS[data[0] %% len(OPS)]
    flags = data[2]
    replies = unpack_replies(data, 3)
    stream = b"".join(replies)
    uart = FuzzUart(replies, data[1] %% 80)
    m = RN2483(uart)
    if op in ("join", "send"):
        m._fp = FP                  # configured, as the node always does before these
        m._verify = bool(flags & RESUMED)
    before = state(m)
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
    bad = at_ok(m._at, 8)
    if bad:
        return bad
    if len(m.downlinks) > 8 or len(m.downlinks) > heard(stream, b"mac_rx "):
        return "BUG downlinks %%r from no mac_rx line" %% (m.downlinks,)
    for port, payload in m.downlinks:
        if not isinstance(port, int) or not 1 <= port <= 223 or not isinstance(payload, bytes):
            return "BUG downlink (%%r, %%r) accepted" %% (port, payload)
    if m.resets > heard(stream, b"RN2483 "):
        return "BUG %%d resets counted from no banner" %% m.resets
    if len(m._sent) > 3:
        return "BUG %%d transmissions kept for the duty cycle" %% len(m._sent)
    if err is not None and op in ("joined", "data_rate", "max_payload") and state(m) != before:
        return "BUG a refused %%s changed the driver: %%r -> %%r" %% (op, before, state(m))
    # The module answers properly again: the driver finds it (what was left on the line
    # stays there, the rest of the script is gone).
    uart.replies = [b"invalid_param\r\n", BANNER + b"\r\n"] * 4
    try:
        m.wake()
    except ModemError as e:
        return "BUG no recovery after %%s: wake() %%r" %% (res, e.detail)
    return res
""" % (DEV_EUI, JOIN_EUI, APP_KEY, FINGERPRINT, BANNER)

OPS = {name: i for i, name in enumerate(("wake", "joined", "join", "send", "data_rate",
                                          "max_payload", "configure", "sleep", "reset"))}
CONFIRMED, RESUMED = 1, 2


def lines(*ls) -> bytes:
    return b"".join((x if isinstance(x, bytes) else x.encode()) + b"\r\n" for x in ls)


def late(*ls) -> bytes:
    """A second reply: it comes after the receive windows, with no command before it."""
    return b"\x00" + lines(*ls)


NVM = [lines(f"{b:02X}") for b in FINGERPRINT]
OK = lines("ok")
# (op, flags, the module's replies in order (the first already on the line), the
# harness's answer for them unchanged): real conversations, one per path.
SCRIPTS = [
    (OPS["wake"], 0, [b"", lines("invalid_param"), lines(BANNER)], "ok wake None"),
    (OPS["joined"], 0, [b"", lines("0001")], "ok joined True"),
    (OPS["joined"], 0, [b"", lines("00000010")], "ok joined True"),
    (OPS["joined"], 0, [b"", lines("00000001")], "ok joined False"),
    (OPS["data_rate"], 0, [b"", lines("5")], "ok data_rate 5"),
    (OPS["max_payload"], 0, [b"", lines("3")], "ok max_payload 115"),
    # OTAA: no saved session (DevAddr 0), then `ok` and, after the windows, the result.
    (OPS["join"], 0, [b"", lines("00000000"), lines("5"), OK, late("accepted")] + NVM + [OK],
     "ok join True"),
    (OPS["join"], 0, [b"", lines("00000000"), lines("5"), OK, late("denied")], "ok join False"),
    (OPS["join"], 0, [b"", lines("00000000"), lines("5"), lines("no_free_ch"), lines("302")],
     "rej ModemError 5"),
    (OPS["join"], 0, [b"", lines("00000000"), lines("5"), lines("keys_not_init")],
     "rej ModemError 8"),
    # The session saved for these keys, resumed 32 counts on.
    (OPS["join"], 0, [b"", lines("26011BDA")] + NVM + [lines("100"), lines("100"), OK, OK,
                                                      late("accepted"), OK], "ok join True"),
    (OPS["send"], 0, [b"", lines("5"), lines("10"), OK, late("mac_tx_ok"), lines("11")], "ok send 0"),
    (OPS["send"], 0, [b"", lines("5"), lines("15"), OK, late("mac_rx 3 0A0B"), lines("16"), OK],
     "ok send 0"),
    (OPS["send"], CONFIRMED, [b"", lines("5"), lines("10"), OK, late("mac_err"), lines("11")],
     "ok send 1"),
    (OPS["send"], 0, [b"", lines("5"), lines("10"), lines("mac_paused"), OK, OK,
                      late("mac_tx_ok"), lines("11")], "ok send 0"),
    (OPS["send"], 0, [b"", lines("5"), lines("10"), lines("not_joined")], "rej ModemError 3"),
    (OPS["send"], 0, [b"", lines("5"), lines("10"), lines("no_free_ch"), lines("302")],
     "rej ModemError 5"),
    (OPS["send"], 0, [b"", lines("5"), lines("10"), OK, late("invalid_data_len")],
     "rej ModemError 4"),
    # A resumed session the network no longer knows: forgotten, the module reset.
    (OPS["send"], RESUMED, [b"", lines("5"), lines("10"), OK, late("mac_err"), OK, lines(BANNER),
                            lines("invalid_param"), lines(BANNER)], "ok send 1"),
    (OPS["configure"], 0, [b"", lines(DEV_EUI.hex().upper()), lines(JOIN_EUI.hex().upper()), OK,
                           lines("5"), lines("on"), lines("0")], "ok configure None"),
    (OPS["configure"], 0, [b"", lines("0004A30B00000000"), OK, lines(JOIN_EUI.hex().upper()), OK,
                           lines("3"), OK, lines("off"), OK, lines("7"), OK], "ok configure None"),
    (OPS["sleep"], 0, [b""], "ok sleep None"),
    (OPS["reset"], 0, [b"", lines(BANNER), lines("invalid_param"), lines(BANNER)], "ok reset None"),
]
# Every line the module prints in these conversations, and its other words (§1.3).
VOCABULARY = sorted({x for _, _, rs, _ in SCRIPTS for r in rs for x in r.lstrip(b"\x00").split(b"\r\n")
                     if x} | {
    b"invalid_param", b"keys_not_init", b"silent", b"busy", b"mac_paused", b"not_joined",
    b"frame_counter_err_rejoin_needed", b"fram_counter_err_rejoin_needed", b"invalid_data_len",
    b"accepted", b"denied", b"mac_tx_ok", b"mac_err", b"mac_rx 1 00", b"mac_rx 0 00",
    b"mac_rx 224 00", b"mac_rx 3 0", b"mac_rx 3", b"mac_rx  3 00", b"mac_rx 3 00 00", b"8", b"9",
    b"4294967295", b"4294967264", b"99999999999", b"ffff", b"FFFFFFFF", b"RN2483", b"RN2483 ",
    b"RN2903 1.0.3 Aug 8 2017 15:11:09", b"sys get ver", b"FG",
})


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = MicroPythonWorker(HARNESS, tmp_path_factory.mktemp("fuzz-rn2483"))
    yield w
    w.close()


def test_real_conversations_give_their_documented_results(worker):
    # The seeds are right: undamaged, each conversation ends as the guide says, in whole
    # lines and in pieces of 3 bytes.
    for chunk in (0, 3):
        got = worker.run([pack_input(op, chunk, flags, replies) for op, flags, replies, _ in SCRIPTS])
        assert got == [want for _, _, _, want in SCRIPTS]


def test_rn2483_driver_survives_any_module_output(worker):
    ran = run_batches(worker, modem_inputs(SCRIPTS, VOCABULARY, len(OPS)), "RN2483 driver")
    assert ran >= EXAMPLES
