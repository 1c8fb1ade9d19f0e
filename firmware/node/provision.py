"""Provisioning mode on the serial console: binary frames on the REPL's own line.

    import node.provision; node.provision.serve()      # what `nodectl provision` starts

The host interrupts main.py (Ctrl-C), enters the raw REPL and runs the line above;
from then on both sides speak frames until BYE, or until the line has been idle for
`idle_s`; then the node resets (machine.reset()) and its wake cycle starts again.
docs/provisioning.md is the reference; in short:

    frame = 0xFE | escaped( LEN(2, BE) | SEQ(1) | CODE(1) | PAYLOAD(LEN) | CRC(2, BE) )

CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR) over
LEN..PAYLOAD. 0xFE starts a frame and never occurs inside one: 0xFD escapes, the next
byte is XORed with 0x20. Escaped are 0xFE, 0xFD, the REPL's control characters
0x01..0x05 (0x03 is Ctrl-C, which the console turns into KeyboardInterrupt) and
0x0A/0x0D (a console may turn \\n into \\r\\n). 0xFE and 0xFD never occur in UTF-8, so
text the node prints between frames cannot be taken for a frame.

Requests carry a command in CODE, replies the request's SEQ and a status (0 OK, 0x81..
errors with a short ASCII reason as payload). A frame that cannot be trusted (bad CRC,
truncated, oversize, malformed) is answered with SEQ 0. Nothing from a refused frame is
stored. Keys are write-only: a reply carries their check value (KCV: the first 3 bytes
of AES-128-ECB(key, 16 zero bytes)), never the key.
"""
import gc
import json
import os
import select
import struct
import sys
from binascii import hexlify, unhexlify

import machine
from micropython import const

from node import config_store, options
from node.keycheck import cmac, kcv
from node.settings import KEYS_FILE

SOF = const(0xFE)
ESC = const(0xFD)
_ESCAPED = b"\x01\x02\x03\x04\x05\x0a\x0d\xfd\xfe"
MAX_PAYLOAD = const(2048)
PROTO = const(1)

# Commands (host -> node).
STATUS = const(0x01)
GET_CONFIG = const(0x02)
SELFTEST = const(0x03)
LOG = const(0x04)
SET_IDS = const(0x10)
SET_APP_KEY = const(0x11)
SET_PAYLOAD_KEY = const(0x12)
SET_INTERVAL = const(0x13)
SET_SITE = const(0x14)
SET_OPTIONS = const(0x15)
LOCK = const(0x20)
CHALLENGE = const(0x21)
UNLOCK = const(0x22)
ERASE = const(0x23)
BYE = const(0x2F)

# Statuses (node -> host).
OK = const(0x00)
READY = const(0x01)          # unsolicited, SEQ 0: the node is listening
IDLE_END = const(0x02)       # unsolicited, SEQ 0: idle too long, the node resumes
MALFORMED = const(0x81)
TRUNCATED = const(0x82)
OVERSIZE = const(0x83)
BAD_CRC = const(0x84)
UNKNOWN_COMMAND = const(0x85)
BAD_VALUE = const(0x86)
LOCKED = const(0x87)
NOT_READY = const(0x88)
DEVICE_ERROR = const(0x89)
AUTH_FAILED = const(0x8A)
UNSUPPORTED = const(0x8B)

LOCK_FILE = "locked"
MANIFEST = "manifest.json"
ERASE_WORD = b"ERASE"
UNLOCK_LABEL = b"citynodes-unlock"
_KEYS_TMP = "keys.new"
_SETS = (SET_IDS, SET_APP_KEY, SET_PAYLOAD_KEY, SET_INTERVAL, SET_SITE, SET_OPTIONS)
_SLICE_MS = const(100)       # poll slice: the watchdog is fed at least this often
_GAP_MS = const(300)         # a frame with a pause this long inside it was cut short

_table = None


def crc16(data):
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, MSB first, no final XOR."""
    global _table
    if _table is None:
        _table = []
        for i in range(256):
            c = i << 8
            for _ in range(8):
                c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
            _table.append(c)
    crc = 0xFFFF
    t = _table
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ t[((crc >> 8) ^ b) & 0xFF]
    return crc


def encode(seq, code, payload=b""):
    """One frame, escaped, ready for the line."""
    body = struct.pack(">HBB", len(payload), seq, code) + payload
    body += struct.pack(">H", crc16(body))
    out = bytearray((SOF,))
    for b in body:
        if b in _ESCAPED:
            out.append(ESC)
            out.append(b ^ 0x20)
        else:
            out.append(b)
    return bytes(out)


class Parser:
    """Bytes in, one event at a time out: ("frame", seq, code, payload, crc) or
    ("error", status, reason). `pause()` says the line went quiet."""

    def __init__(self):
        self.buf = bytearray()
        self.state = 0          # 0 between frames, 1 in a frame, 2 skipping a bad one
        self.esc = False
        self.junk = 0
        self.need = -1

    def _start(self):
        self.buf = bytearray()
        self.state = 1
        self.esc = False
        self.junk = 0
        self.need = -1

    def _bad(self, status, reason):
        self.state = 2
        return ("error", status, reason)

    def feed(self, b):
        if b == SOF:
            ev = self.pause()
            self._start()
            return ev
        if self.state == 0:
            self.junk += 1
            return None
        if self.state == 2:
            return None
        if self.esc:
            self.esc = False
            b ^= 0x20
            if b not in _ESCAPED:
                return self._bad(MALFORMED, "0xfd escapes 0x%02x, which needs no escape" % (b ^ 0x20))
        elif b == ESC:
            self.esc = True
            return None
        elif b in _ESCAPED:
            return self._bad(MALFORMED, "unescaped byte 0x%02x inside a frame" % b)
        buf = self.buf
        buf.append(b)
        if len(buf) == 2:
            n = (buf[0] << 8) | buf[1]
            if n > MAX_PAYLOAD:
                return self._bad(OVERSIZE, "payload of %d bytes announced; at most %d" % (n, MAX_PAYLOAD))
            self.need = n + 6
        if len(buf) == self.need:
            self.state = 0
            got = (buf[-2] << 8) | buf[-1]
            if crc16(buf[:-2]) != got:
                return ("error", BAD_CRC, "CRC mismatch: frame not taken")
            return ("frame", buf[2], buf[3], bytes(buf[4:-2]), got)
        return None

    def pause(self):
        """The line is quiet (or a new frame starts): what was left unfinished."""
        ev = None
        if self.state == 1 and (self.buf or self.esc):
            total = self.need if self.need > 0 else "?"
            ev = ("error", TRUNCATED, "frame cut short after %d of %s bytes" % (len(self.buf), total))
        elif self.state == 0 and self.junk:
            ev = ("error", MALFORMED, "%d bytes outside a frame" % self.junk)
        self.state = 0
        self.buf = bytearray()
        self.esc = False
        self.junk = 0
        self.need = -1
        return ev


class Refused(Exception):
    def __init__(self, status, reason):
        super().__init__(status, reason)
        self.status = status
        self.reason = reason


# --- the node's files ------------------------------------------------------------------
def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return None
    except ValueError:
        raise Refused(DEVICE_ERROR, "%s is damaged: erase the node and provision it again" % path)


def _keys():
    k = _read_json(KEYS_FILE)
    if k is None:
        return {}
    if not isinstance(k, dict):
        raise Refused(DEVICE_ERROR, "%s is damaged: erase the node and provision it again" % KEYS_FILE)
    return k


def _key(keys, name):
    try:
        b = unhexlify(keys.get(name, ""))
    except ValueError:
        return None
    return b if len(b) == 16 else None


def _write_keys(keys):
    # Written aside and renamed: littlefs renames atomically, so a power cut leaves the
    # old key file or the new one, never half of one.
    with open(_KEYS_TMP, "w") as f:
        json.dump(keys, f)
    os.rename(_KEYS_TMP, KEYS_FILE)


def _manifest():
    m = _read_json(MANIFEST)
    return m if isinstance(m, dict) else {}


def _rmtree(path, keep=()):
    """Remove `path` and what it holds, except the names in `keep` (top level)."""
    try:
        names = os.listdir(path)
    except OSError:
        return []
    gone = []
    for name in names:
        if name in keep:
            continue
        p = path + "/" + name
        if os.stat(p)[0] & 0x4000:
            gone += _rmtree(p)
        else:
            os.remove(p)
            gone.append(p)
    if not keep:
        os.rmdir(path)
        from node import flashfs
        flashfs.forget(path)
    return gone


def _eui(hexstr):
    try:
        b = unhexlify(hexstr or "")
    except ValueError:
        return None
    return b if len(b) == 8 else None


class Session:
    """One provisioning session: the commands, over whatever line `serve` gives it."""

    def __init__(self, feed=None):
        self.challenge = None
        self.board = None
        self.modem = None
        self.feed = feed or (lambda: None)

    # --- hardware, opened when a command needs it -------------------------------------
    def _board(self):
        if self.board is None:
            from node.board import Board, BoardError
            try:
                self.board = Board.load()
            except BoardError as e:
                raise Refused(NOT_READY, "%s: flash the node first (nodectl flash)" % e)
        return self.board

    def _modem(self):
        if self.modem is None:
            import modems
            board = self._board()
            try:
                m = modems.open_modem(board)
                m.wake()
            except modems.ModemError as e:
                raise Refused(DEVICE_ERROR, "modem %s: %s %s" % (
                    board.spec.get("modem", {}).get("type", "?"), modems.reason_name(e.reason), e.detail))
            self.modem = m
        return self.modem

    def _configure_modem(self, dev_eui, join_eui, app_key):
        """The credentials into the modem, then a restart so that a session of older
        credentials is gone and the next wake joins with these."""
        import modems
        m = self._modem()
        cfg = config_store.load() or {}
        try:
            m.configure(dev_eui, join_eui, app_key, dr=cfg.get("dr", 3), adr=cfg.get("adr", True))
            self.feed()
            m.reset()
        except modems.ModemError as e:
            raise Refused(DEVICE_ERROR, "modem refused the credentials: %s %s; nothing stored"
                          % (modems.reason_name(e.reason), e.detail))
        self.feed()

    # --- configuration -----------------------------------------------------------------
    def _kind(self, cfg):
        kind = cfg.get("kind") or _manifest().get("kind")
        if not kind:
            raise Refused(NOT_READY, "no kind: the node has no manifest.json (flash it with nodectl flash)")
        return kind

    def _update(self, changes):
        """Write the configuration with `changes` (None deletes a key) as one new copy."""
        cfg = config_store.load() or {}
        new = dict(cfg)
        new["kind"] = self._kind(cfg)
        for k, v in changes.items():
            if v is None:
                new.pop(k, None)
            else:
                new[k] = v
        try:
            options.check_config(new)
            data = config_store.pack(new, 0)     # size check before anything is written
        except ValueError as e:
            raise Refused(BAD_VALUE, str(e))
        del data
        config_store.save(new)
        return new

    def _options(self, changes, kind):
        out = {}
        for k, v in changes.items():
            try:
                out[k] = None if v is None else options.check(k, v, kind)
            except ValueError as e:
                raise Refused(BAD_VALUE, str(e))
        return out

    def _locked(self):
        return _exists(LOCK_FILE)

    # --- commands -----------------------------------------------------------------------
    def handle(self, code, payload):
        """(status, reply payload) for one well-formed request."""
        if code in _SETS and self._locked():
            raise Refused(LOCKED, "locked: unlock with the payload key (CHALLENGE, UNLOCK) or ERASE")
        fn = _HANDLERS.get(code)
        if fn is None:
            raise Refused(UNKNOWN_COMMAND, "command 0x%02x unknown" % code)
        return OK, fn(self, payload)

    def _empty(self, payload, name):
        if payload:
            raise Refused(BAD_VALUE, "%s takes no payload" % name)

    def _json(self, payload, name):
        try:
            v = json.loads(payload)
        except (ValueError, UnicodeError):
            raise Refused(BAD_VALUE, "%s: payload is not JSON" % name)
        if not isinstance(v, dict):
            raise Refused(BAD_VALUE, "%s: payload must be a JSON object" % name)
        return v

    def do_status(self, payload):
        self._empty(payload, "STATUS")
        from node import status
        man = _manifest()
        out = {"proto": PROTO, "locked": self._locked(), "firmware": man.get("firmware"),
               "build": man.get("build"), "kind": man.get("kind"), "board": man.get("board"),
               "files": status.files(man, self.feed)}
        cfg = config_store.load() or {}
        out["config"] = dict((k, cfg.get(k)) for k in
                             ("kind", "dev_eui", "join_eui", "interval_s", "site", "lat", "lon"))
        keys = _keys()
        out["kcv"] = {}
        for name in ("app_key", "payload_key"):
            k = _key(keys, name)
            out["kcv"][name] = kcv(k) if k else None
        self.feed()
        out["battery_mv"] = self._battery()
        out["modem"] = self._modem_status()
        self.feed()
        out["join"] = status.join()
        out["uplink"] = status.uplink()
        from node import resets
        out["resets"] = resets.counts()
        return json.dumps(out).encode()

    def _battery(self):
        try:
            return self._board().battery_mv()
        except Exception:  # noqa: BLE001 - no board file or a failed ADC: a status, no error
            return None

    def _modem_status(self):
        try:
            board = self._board()
        except Refused as e:
            return {"error": e.reason}
        from node import status
        return status.modem(board, self._modem)

    def do_get_config(self, payload):
        self._empty(payload, "GET_CONFIG")
        cfg = config_store.load() or {}
        return json.dumps({"config": cfg, "locked": self._locked()}).encode()

    def do_selftest(self, payload):
        self._empty(payload, "SELFTEST")
        from node import selftest
        cfg = config_store.load() or {}
        results = selftest.run(self._board(), cfg, self.feed, self._modem_part)
        return json.dumps({"parts": results}).encode()

    def _modem_part(self):
        st = self._modem_status()
        if "error" in st:
            return None, None, st["error"]
        return "%s DevEUI %s" % (st["type"], st["dev_eui"]), {"joined": st["joined"]}, None

    def do_log(self, payload):
        self._empty(payload, "LOG")
        from node import log as node_log
        recent = getattr(node_log, "recent", None)
        if recent is None:
            raise Refused(UNSUPPORTED, "this firmware keeps no log lines; use nodectl monitor")
        return "\n".join(recent()).encode()

    def do_set_ids(self, payload):
        if len(payload) != 16:
            raise Refused(BAD_VALUE, "SET_IDS takes 16 bytes (DevEUI, JoinEUI), not %d" % len(payload))
        dev_eui, join_eui = payload[:8], payload[8:]
        if dev_eui in (bytes(8), b"\xff" * 8):
            raise Refused(BAD_VALUE, "DevEUI %s is not a device's EUI-64" % hexlify(dev_eui).decode())
        app_key = _key(_keys(), "app_key")
        if app_key is not None:
            self._configure_modem(dev_eui, join_eui, app_key)
        self._update({"dev_eui": hexlify(dev_eui).decode().upper(),
                      "join_eui": hexlify(join_eui).decode().upper()})
        return b""

    def _new_key(self, payload, name):
        if len(payload) != 16:
            raise Refused(BAD_VALUE, "%s takes a 16-byte key, not %d bytes" % (name, len(payload)))
        if payload == bytes(16):
            raise Refused(BAD_VALUE, "an all-zero key is no key")
        return payload

    def do_set_app_key(self, payload):
        key = self._new_key(payload, "SET_APP_KEY")
        cfg = config_store.load() or {}
        dev_eui, join_eui = _eui(cfg.get("dev_eui")), _eui(cfg.get("join_eui"))
        if dev_eui is None or join_eui is None:
            raise Refused(NOT_READY, "set DevEUI and JoinEUI first (SET_IDS)")
        keys = _keys()
        self._configure_modem(dev_eui, join_eui, key)
        keys["app_key"] = hexlify(key).decode()
        _write_keys(keys)
        return kcv(key).encode()

    def do_set_payload_key(self, payload):
        key = self._new_key(payload, "SET_PAYLOAD_KEY")
        keys = _keys()
        keys["payload_key"] = hexlify(key).decode()
        _write_keys(keys)
        return kcv(key).encode()

    def do_set_interval(self, payload):
        if len(payload) != 4:
            raise Refused(BAD_VALUE, "SET_INTERVAL takes 4 bytes (seconds, big-endian)")
        cfg = config_store.load() or {}
        seconds = struct.unpack(">I", payload)[0]
        self._update(self._options({"interval_s": seconds}, self._kind(cfg)))
        return b""

    def do_set_site(self, payload):
        v = self._json(payload, "SET_SITE")
        if sorted(v) != ["lat", "lon", "name"]:
            raise Refused(BAD_VALUE, "SET_SITE takes {\"name\", \"lat\", \"lon\"}")
        cfg = config_store.load() or {}
        self._update(self._options({"site": v["name"], "lat": v["lat"], "lon": v["lon"]},
                                   self._kind(cfg)))
        return b""

    def do_set_options(self, payload):
        v = self._json(payload, "SET_OPTIONS")
        if not v:
            raise Refused(BAD_VALUE, "SET_OPTIONS: no settings given")
        cfg = config_store.load() or {}
        new = self._update(self._options(v, self._kind(cfg)))
        return json.dumps(dict((k, new.get(k)) for k in v)).encode()

    def do_lock(self, payload):
        self._empty(payload, "LOCK")
        if _key(_keys(), "payload_key") is None:
            raise Refused(NOT_READY, "no payload key: nothing could unlock the node again")
        if not self._locked():
            with open(LOCK_FILE, "w") as f:
                f.write("1")
        return b""

    def do_challenge(self, payload):
        self._empty(payload, "CHALLENGE")
        self.challenge = os.urandom(16)
        return self.challenge

    def do_unlock(self, payload):
        if len(payload) != 16:
            raise Refused(BAD_VALUE, "UNLOCK takes the 16-byte AES-CMAC tag")
        nonce, self.challenge = self.challenge, None      # one try per challenge
        if nonce is None:
            raise Refused(NOT_READY, "ask for a CHALLENGE first")
        key = _key(_keys(), "payload_key")
        if key is None:
            raise Refused(NOT_READY, "no payload key on the node")
        cfg = config_store.load() or {}
        dev_eui = _eui(cfg.get("dev_eui")) or bytes(8)
        want = cmac(key, UNLOCK_LABEL + dev_eui + nonce)
        diff = 0
        for a, b in zip(want, payload):
            diff |= a ^ b
        if diff:
            raise Refused(AUTH_FAILED, "tag does not match the payload key: still locked")
        if self._locked():
            os.remove(LOCK_FILE)
        return b""

    def do_erase(self, payload):
        if payload != ERASE_WORD:
            raise Refused(BAD_VALUE, "ERASE takes the word ERASE as its payload")
        cfg = config_store.load() or {}
        gone = []
        # The secrets first: whatever happens after, they are gone.
        for path in (KEYS_FILE, _KEYS_TMP, "config.a", "config.b", LOCK_FILE):
            if _exists(path):
                os.remove(path)
                gone.append(path)
        self.feed()
        gone += _rmtree("q")
        # The frame counter stays: a counter must never repeat under any key, and the
        # node may be provisioned again with keys it had before.
        gone += _rmtree("state", keep=("ctr0", "ctr1"))
        self.feed()
        out = {"removed": gone}
        try:
            from node import status
            m = self._modem()
            dev_eui = _eui(cfg.get("dev_eui")) or unhexlify(status.modem_dev_eui(m))
            self._configure_modem(dev_eui, bytes(8), os.urandom(16))
            out["modem"] = "AppKey overwritten with random bytes"
        except Refused as e:
            out["modem"] = "AppKey not overwritten: %s" % e.reason
        except Exception as e:  # noqa: BLE001 - the flash is erased whatever the modem says
            out["modem"] = "AppKey not overwritten: %s %s" % (type(e).__name__, e)
        return json.dumps(out).encode()

    def do_bye(self, payload):
        return b""


_HANDLERS = {
    STATUS: Session.do_status, GET_CONFIG: Session.do_get_config, SELFTEST: Session.do_selftest,
    LOG: Session.do_log, SET_IDS: Session.do_set_ids, SET_APP_KEY: Session.do_set_app_key,
    SET_PAYLOAD_KEY: Session.do_set_payload_key, SET_INTERVAL: Session.do_set_interval,
    SET_SITE: Session.do_set_site, SET_OPTIONS: Session.do_set_options, LOCK: Session.do_lock,
    CHALLENGE: Session.do_challenge, UNLOCK: Session.do_unlock, ERASE: Session.do_erase,
    BYE: Session.do_bye,
}


def _answer(session, code, payload):
    """(status, payload) of a request; every failure becomes an error reply."""
    try:
        return session.handle(code, payload)
    except Refused as e:
        return e.status, e.reason.encode()
    except OSError as e:
        return DEVICE_ERROR, ("flash or bus error %s: nothing more was changed" % e).encode()
    except MemoryError:
        return DEVICE_ERROR, b"out of memory"
    except Exception as e:  # noqa: BLE001 - an answer, whatever went wrong
        return DEVICE_ERROR, ("%s %s" % (type(e).__name__, e)).encode()


def serve(idle_s=60, reset=True, watchdog=True):
    """Speak frames on the console until BYE or `idle_s` without a byte; then reset
    (`reset`), or return. `watchdog`: (re)start the watchdog at 8 s and feed it, as a
    running node's firmware may have started it (rp2's cannot be stopped)."""
    wdt = None
    if watchdog and hasattr(machine, "WDT"):
        wdt = machine.WDT(timeout=8000)
    feed = wdt.feed if wdt is not None else None
    session = Session(feed)
    out = sys.stdout.buffer
    inp = sys.stdin.buffer
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    parser = Parser()
    last_key = None
    last_reply = None

    def send(seq, code, payload=b""):
        out.write(encode(seq, code, payload))
        if hasattr(out, "flush"):
            out.flush()

    send(0, READY, json.dumps({"proto": PROTO, "idle_s": idle_s}).encode())
    quiet = 0
    ending = False
    while not ending:
        if feed:
            feed()
        if not poller.poll(_SLICE_MS):
            quiet += _SLICE_MS
            if quiet >= _GAP_MS:
                ev = parser.pause()
                if ev:
                    send(0, ev[1], ev[2].encode())
            if quiet >= idle_s * 1000:
                send(0, IDLE_END, b"idle: leaving provisioning mode")
                break
            continue
        quiet = 0
        b = inp.read(1)
        if not b:
            return                      # the line is gone (a pipe closed)
        ev = parser.feed(b[0])
        if ev is None:
            continue
        if ev[0] == "error":
            send(0, ev[1], ev[2].encode())
            continue
        _, seq, code, payload, crc = ev
        if (seq, crc) == last_key and seq:
            out.write(last_reply)       # the host did not hear the reply: same answer
            continue
        status, reply = _answer(session, code, payload)
        last_key = (seq, crc)
        last_reply = encode(seq, status, reply)
        reply = payload = ev = None
        out.write(last_reply)
        gc.collect()            # the command's garbage goes before the next one fragments the heap
        if code == BYE and status == OK:
            ending = True
    if reset:
        machine.reset()
