"""Fuzz: the node's provisioning frames and commands (firmware/node/provision.py `Parser` and
`Session.handle`, docs/provisioning.md) on the real MicroPython, in a scratch folder that
stands for the node's flash. Inputs: random bytes, frames of every command code with valid,
mutated and random payloads (CRC right, so the command runs), frames damaged on the line,
text between them; on a new, a provisioned, a locked and a damaged node, with and without a
pending challenge, with a modem that takes or refuses credentials.

For every input: nothing but the parser's error events and the documented refusal
(`Refused`) comes out; a refused command leaves every file of the flash byte-identical
(config copies, keys, lock, counters, queue); a frame is delivered only as the stream holds
it, whole and with its CRC; a locked node takes no SET command; no reply or refusal holds a
key; ERASE keeps the frame counter; and afterwards the parser takes the next valid frame."""
from __future__ import annotations

import json
import struct

import pytest
from Crypto.Cipher import AES
from Crypto.Hash import CMAC
from hypothesis import strategies as st

from fuzzkit import EXAMPLES, BATCH, MicroPythonWorker, mutate, run_batches
from host_tools import serial_link as sl
from host_tools.provision import OPTIONS

DEV_EUI = bytes.fromhex("AC1F09FFFE0A0B0C")
JOIN_EUI = bytes(8)
APP_KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
PAYLOAD_KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
CHALLENGE = bytes.fromhex("F0E1D2C3B4A5968778695A4B3C2D1E0F")
# The node's flash before each input (fuzz flags bits 0-1).
NEW, PROVISIONED, LOCKED, DAMAGED = range(4)
WITH_CHALLENGE, MODEM_REFUSES, PAUSE_AT_END = 4, 8, 16
SETUP = [(sl.SET_IDS, DEV_EUI + JOIN_EUI), (sl.SET_APP_KEY, APP_KEY),
         (sl.SET_PAYLOAD_KEY, PAYLOAD_KEY), (sl.SET_INTERVAL, struct.pack(">I", 600)),
         (sl.SET_SITE, json.dumps({"name": "Alter Hof", "lat": 48.1385, "lon": 11.5787}).encode()),
         (sl.SET_OPTIONS, json.dumps({"rain_mm_per_tip": 0.25, "rain_alarm_mm_h": 20}).encode())]

HARNESS = r"""
import os, json
from binascii import hexlify
import modems
from node import provision as P

FLASH = %r
SETUP = %r
KEYS = %r
CHALLENGE = %r
WITH_CHALLENGE, MODEM_REFUSES, PAUSE_AT_END = %r
if os.getcwd() != FLASH:
    raise SystemExit("not in the scratch flash")

class FakeModem:
    # The modem's side of the session: it takes the credentials, or refuses them.
    def __init__(self, refuse):
        self.refuse = refuse
    def wake(self):
        pass
    def configure(self, dev_eui, join_eui, app_key, dr=None, adr=True):
        if self.refuse:
            raise modems.ModemError(modems.REFUSED, "AT+KEY")
    def reset(self):
        pass
    def dev_eui(self):
        return "AC1F09FFFE0A0B0C"
    def joined(self):
        return False

def snap(path="", out=None):
    # Every file and folder of the flash: {path: bytes} ({folder + "/": None}).
    if out is None:
        out = {}
    for ent in os.ilistdir(path or "."):
        p = path + ent[0]
        if ent[1] == 0x4000:
            out[p + "/"] = None
            snap(p + "/", out)
        else:
            with open(p, "rb") as f:
                out[p] = f.read()
    return out

def restore(base):
    cur = snap()
    for p in sorted(cur, reverse=True):         # a folder's files before the folder
        if p not in base:
            if p.endswith("/"):
                os.rmdir(p[:-1])
            else:
                os.remove(p)
    for p in sorted(base):                      # a folder before its files
        if p.endswith("/"):
            if p not in cur:
                os.mkdir(p[:-1])
        elif cur.get(p) != base[p]:
            with open(p, "wb") as f:
                f.write(base[p])

def manifest(kind):
    return json.dumps({"firmware": "0.1.0", "build": "fuzz", "kind": kind,
                       "board": "pico-rak3172", "files": {}}).encode()

def baselines():
    out = []
    restore({"manifest.json": manifest("water")})
    out.append(snap())                                   # NEW: just flashed, a water node
    restore({"manifest.json": manifest("climate"), "state/": None, "q/": None,
             "state/ctr0": b"FC\x00\x00\x01\x00\x8e\x14\x8d\x3b", "state/ctr1": b"FC\x00\x00\x00\xf0",
             "state/link": b'{"fails": 2}', "state/join": b"{}", "q/h0": b"\x00" * 24,
             "q/r0": b"\x01\x02\x03" * 20})
    s = P.Session()
    s.modem = FakeModem(False)
    for code, payload in SETUP:
        s.handle(code, payload)
    out.append(snap())                                   # PROVISIONED: a climate node
    s.handle(P.LOCK, b"")
    out.append(snap())                                   # LOCKED
    damaged = dict(out[1])
    damaged["keys.json"] = b'{"app_key": "00'
    damaged["config.b"] = damaged["config.b"][:20]
    out.append(damaged)                                  # DAMAGED: key store cut short
    return out

BASES = baselines()
_now = {"base": -1}

def diff(a, b):
    return sorted(p for p in set(a) | set(b) if a.get(p, 0) != b.get(p, 0))

def leaks(data):
    for k in KEYS:
        h = hexlify(k)
        if k in data or h in data or h.upper() in data:
            return True
    return False

def fuzz_one(data):
    flags = data[0]
    stream = bytes(data[1:])
    base = flags & 3
    if _now["base"] != base:
        restore(BASES[base])
        _now["base"] = base
    cur = BASES[base]
    session = P.Session()
    session.modem = FakeModem(flags & MODEM_REFUSES)
    if flags & WITH_CHALLENGE:
        session.challenge = CHALLENGE
    parser = P.Parser()
    said = []
    events = []
    for b in stream:
        ev = parser.feed(b)
        if ev is not None:
            events.append(ev)
            bad, cur = take(ev, stream, session, cur, said)
            if bad:
                return bad
    if flags & PAUSE_AT_END:
        ev = parser.pause()
        if ev is not None:
            bad, cur = take(ev, stream, session, cur, said)
            if bad:
                return bad
    if cur is not BASES[base]:
        _now["base"] = -1                     # changed by an accepted command: put back
    # Ready for the next frame: a valid one is taken whatever came before.
    probe = P.encode(0x77, P.GET_CONFIG)
    got = []
    for b in probe:
        ev = parser.feed(b)
        if ev is not None:
            got.append(ev)
    if not got or got[-1][:4] != ("frame", 0x77, P.GET_CONFIG, b"") or len(got) > 2 or \
            (len(got) == 2 and got[0][0] != "error"):
        return "BUG after the input the parser gave %%r for a valid frame" %% (got,)
    return " ".join(said[:4]) or "rej none"

def take(ev, stream, session, cur, said):
    if ev[0] == "error":
        if ev[1] not in (P.MALFORMED, P.TRUNCATED, P.OVERSIZE, P.BAD_CRC) or not isinstance(ev[2], str):
            return "BUG parser error event %%r" %% (ev,), cur
        said.append("rej 0x%%02x" %% ev[1])
        return None, cur
    _, seq, code, payload, crc = ev
    if P.encode(seq, code, payload) not in stream:
        return "BUG frame %%r delivered that the stream does not hold whole" %% (ev,), cur
    locked = "locked" in cur
    try:
        status, reply = session.handle(code, payload)
    except P.Refused as e:
        after = snap()
        if after != cur:
            return "BUG refused 0x%%02x (%%s) changed %%s" %% (e.status, e.reason, diff(cur, after)), cur
        if not 0x81 <= e.status <= 0x8B or not isinstance(e.reason, str):
            return "BUG refusal %%r %%r" %% (e.status, e.reason), cur
        if leaks(e.reason.encode()):
            return "BUG a key in the refusal %%r" %% e.reason, cur
        if code in (P.SET_APP_KEY, P.SET_PAYLOAD_KEY) and len(payload) >= 8 and (
                payload in e.reason.encode() or hexlify(payload) in e.reason.encode().lower()):
            return "BUG the refused key in the refusal", cur
        said.append("rej 0x%%02x" %% e.status)
        return None, cur
    except Exception as e:
        return "BUG command 0x%%02x: %%s %%r" %% (code, type(e).__name__, e), cur
    if status != P.OK or not isinstance(reply, bytes):
        return "BUG command 0x%%02x answered %%r %%r" %% (code, status, reply), cur
    if locked and code in P._SETS:
        return "BUG a locked node took command 0x%%02x" %% code, cur
    if leaks(reply) or (code in (P.SET_APP_KEY, P.SET_PAYLOAD_KEY) and payload in reply):
        return "BUG a key in the reply to 0x%%02x" %% code, cur
    after = snap()
    if code == P.ERASE:
        for p in ("state/ctr0", "state/ctr1"):
            if after.get(p) != cur.get(p):
                return "BUG ERASE changed the frame counter %%s" %% p, cur
        for p in ("keys.json", "config.a", "config.b", "locked"):
            if p in after:
                return "BUG ERASE left %%s" %% p, cur
    said.insert(0, "ok 0x%%02x" %% code)
    return None, after
""" 


def _unlock_tag(challenge: bytes) -> bytes:
    return CMAC.new(PAYLOAD_KEY, sl.UNLOCK_LABEL + DEV_EUI + challenge, ciphermod=AES).digest()


# A valid payload (on a provisioned climate node) of every command code.
SEEDS = {
    sl.STATUS: b"", sl.GET_CONFIG: b"", sl.SELFTEST: b"", sl.LOG: b"",
    sl.SET_IDS: bytes.fromhex("AC1F09FFFE0A0B0D") + bytes.fromhex("70B3D57ED0000001"),
    sl.SET_APP_KEY: bytes(range(16, 32)), sl.SET_PAYLOAD_KEY: bytes(range(32, 48)),
    sl.SET_INTERVAL: struct.pack(">I", 900),
    sl.SET_SITE: json.dumps({"name": "Marienplatz", "lat": 48.137, "lon": 11.575}).encode(),
    sl.SET_OPTIONS: json.dumps({"rain_alarm_clear_mm_h": 5, "dr": 2, "site": None}).encode(),
    sl.LOCK: b"", sl.CHALLENGE: b"", sl.UNLOCK: _unlock_tag(CHALLENGE), sl.ERASE: b"ERASE",
    sl.BYE: b"",
}
SONDE_MAP = {"model": "x", "function": 3, "order": "CDAB", "block": 2,
             "params": [["temp", 0, None, -5, 50]]}
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 40, 2 ** 40),
                         st.integers(-10, 100000), st.floats(allow_nan=False, allow_infinity=False),
                         st.text(max_size=45))
json_values = st.recursive(json_scalars, lambda c: st.one_of(
    st.lists(c, max_size=5), st.dictionaries(st.text(max_size=8), c, max_size=4)), max_leaves=10)
option_keys = st.sampled_from(sorted(OPTIONS.OPTIONS) + list(OPTIONS.IDENTITY) + ["", "x"])
options_json = st.one_of(
    st.dictionaries(option_keys, json_values, max_size=4),
    st.dictionaries(option_keys, json_scalars, min_size=1, max_size=3),
    st.just({"sonde_map": SONDE_MAP}),
    st.dictionaries(st.sampled_from(sorted(SONDE_MAP)), json_values, max_size=5).map(
        lambda m: {"sonde_map": m}),
    st.lists(st.sampled_from(sorted(SONDE_MAP["params"][0], key=str)), max_size=6).map(
        lambda p: {"sonde_map": dict(SONDE_MAP, params=[p])}),
    json_values,
).map(lambda v: json.dumps(v).encode())
site_json = st.fixed_dictionaries({"name": json_scalars, "lat": json_scalars, "lon": json_scalars}).map(
    lambda v: json.dumps(v).encode())
codes = st.sampled_from(sorted(SEEDS))
seed = codes.map(lambda c: (c, SEEDS[c]))
request = st.one_of(
    seed, seed, seed,
    codes.flatmap(lambda c: st.tuples(st.just(c), mutate(SEEDS[c]))),
    st.tuples(st.just(sl.SET_OPTIONS), options_json),
    st.tuples(st.just(sl.SET_SITE), site_json),
    st.tuples(st.sampled_from([sl.SET_INTERVAL, sl.SET_IDS, sl.UNLOCK, sl.SET_APP_KEY]),
              st.binary(min_size=4, max_size=16)),
    st.tuples(st.integers(0, 255), st.binary(max_size=24)),
)
frame = st.builds(lambda seq, cp: sl.encode(seq, *cp), st.integers(0, 255), request)
piece = st.one_of(frame, frame, frame, frame.flatmap(mutate), st.binary(max_size=30),
                  st.sampled_from([b"\xfe", b"\xfd", b"\x03", b"\r\n", b"\xfe\x08\x00"]))
node_input = st.builds(lambda flags, parts: bytes([flags]) + b"".join(parts),
                       st.integers(0, 31),
                       st.one_of(*[st.lists(piece, min_size=1, max_size=3)] * 4,
                                 st.binary(max_size=60).map(lambda b: [b])))


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-provision")
    flash = root / "flash"
    flash.mkdir()
    harness = HARNESS % (str(flash), SETUP, (APP_KEY, PAYLOAD_KEY), CHALLENGE,
                         (WITH_CHALLENGE, MODEM_REFUSES, PAUSE_AT_END))
    w = MicroPythonWorker(harness, root / "worker", cwd=flash)
    yield w
    w.close()


def test_every_command_seed_is_taken_on_a_provisioned_node(worker):
    # The seeds are what the node takes: each one alone, unaltered, is accepted (UNLOCK
    # with its challenge pending, on the locked node; SET_APP_KEY needs the modem).
    inputs = [bytes([LOCKED | WITH_CHALLENGE if c == sl.UNLOCK else PROVISIONED]) + sl.encode(5, c, p)
              for c, p in SEEDS.items() if c not in (sl.SELFTEST, sl.LOG)]
    assert worker.run(inputs) == [f"ok 0x{c:02x}" for c in SEEDS if c not in (sl.SELFTEST, sl.LOG)]
    # and the node refuses what the protocol says it refuses, with these statuses
    cases = [
        (PROVISIONED, sl.encode(1, sl.SELFTEST), "rej 0x88"),        # no board.json here
        (PROVISIONED, sl.encode(1, sl.LOG), "rej 0x8b"),
        (LOCKED, sl.encode(1, sl.SET_INTERVAL, struct.pack(">I", 900)), "rej 0x87"),
        (LOCKED, sl.encode(1, sl.UNLOCK, SEEDS[sl.UNLOCK]), "rej 0x88"),   # no challenge
        (LOCKED | WITH_CHALLENGE, sl.encode(1, sl.UNLOCK, bytes(16)), "rej 0x8a"),
        (PROVISIONED | MODEM_REFUSES, sl.encode(1, sl.SET_APP_KEY, SEEDS[sl.SET_APP_KEY]), "rej 0x89"),
        (DAMAGED, sl.encode(1, sl.SET_PAYLOAD_KEY, SEEDS[sl.SET_PAYLOAD_KEY]), "rej 0x89"),
        (NEW, sl.encode(1, sl.SET_APP_KEY, SEEDS[sl.SET_APP_KEY]), "rej 0x88"),
        (PROVISIONED, sl.encode(1, 0x99), "rej 0x85"),
        (PROVISIONED, sl.encode(1, sl.SET_INTERVAL, struct.pack(">I", 5)), "rej 0x86"),
        (PROVISIONED, sl.encode(1, sl.STATUS)[:-1], "rej none"),           # cut, no pause
        (PROVISIONED | PAUSE_AT_END, sl.encode(1, sl.STATUS)[:-1], "rej 0x82"),
        (PROVISIONED, sl.encode(1, sl.STATUS)[:-1] + b"\x00", "rej 0x84"),
    ]
    assert worker.run([bytes([f]) + s for f, s, _ in cases]) == [want for _, _, want in cases]


def test_node_parser_and_commands_refuse_without_changing_the_flash(worker):
    ran = run_batches(worker, node_input, "node provisioning Parser + Session.handle")
    assert ran >= EXAMPLES
