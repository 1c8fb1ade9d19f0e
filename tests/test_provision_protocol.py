"""The provisioning protocol (firmware/node/provision.py, host_tools/serial_link.py,
docs/provisioning.md) on the real MicroPython interpreter, over a pipe: the unix port
runs `serve()` in a folder that stands for the node's flash, the host's Link speaks to
it. The virtual board (modem, parts, flash image) is tests/test_provision_e2e.py."""
from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import time
import zlib
from pathlib import Path

import crcmod.predefined
import pytest
from Crypto.Cipher import AES
from Crypto.Hash import CMAC

from host_tools import config_image, keys
from host_tools import provision as prov
from host_tools import serial_link as sl
from simulators.interpreter import FIRMWARE, micropython_binary, run_script

PAYLOAD_KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
DEV_EUI = bytes.fromhex("AC1F09FFFE0A0B0C")
JOIN_EUI = bytes(8)


class PipeNode:
    """serve() on the unix port, its cwd the node's flash."""

    def __init__(self, flash: Path, idle_s: int = 30):
        env = dict(os.environ, MICROPYPATH=f"{FIRMWARE}:.frozen")
        self.flash = flash
        self.proc = subprocess.Popen(
            [micropython_binary(), "-c", "import node.provision as p\n"
             f"p.serve(idle_s={idle_s}, reset=False, watchdog=False)"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=flash, env=env)
        self.link = sl.Link(sl.FdStream(self.proc.stdout.fileno(), self.proc.stdin.fileno()))
        self.hello = self.link.wait_ready(10)

    def error_reply(self, raw: bytes, timeout: float = 5.0) -> sl.Frame:
        """Send raw bytes; the node's next frame (its answer to them)."""
        self.link.send_raw(raw)
        ev = self.link.next_event(timeout)
        assert isinstance(ev, sl.Frame), f"no reply to {raw!r}"
        return ev

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def node(tmp_path):
    flash = tmp_path / "flash"
    flash.mkdir()
    # What `nodectl flash` leaves: the manifest names the kind.
    (flash / "manifest.json").write_text(json.dumps({"firmware": "0.1.0", "build": "test",
                                                     "kind": "climate", "board": "pico-rak3172",
                                                     "files": {}}))
    n = PipeNode(flash)
    yield n
    n.close()


def flash_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def mp_eval(code: str) -> str:
    r = run_script(code)
    assert r.returncode == 0, r.stderr + r.stdout
    return r.stdout


# --- framing and crypto agree on both sides -------------------------------------------------
SAMPLES = [b"", b"123456789", bytes(range(256)), b"\xfe\xfd\x03\x0a\x0d" * 9, os.urandom(300)]


def test_firmware_crc16_is_crcmods_crc_ccitt_false_on_the_same_bytes():
    crc = crcmod.predefined.mkCrcFun("crc-ccitt-false")
    out = mp_eval("import node.provision as p\n"
                  f"for s in {SAMPLES!r}:\n    print(p.crc16(s))")
    assert [int(x) for x in out.split()] == [crc(s) for s in SAMPLES]
    assert crc(b"123456789") == 0x29B1         # the catalogue's check value of the variant


def test_firmware_and_host_build_the_same_frames_and_escape_every_control_byte():
    cases = [(1, 0x10, s) for s in SAMPLES] + [(255, 0x85, b"\x01\x02\x04\x05")]
    out = mp_eval("import node.provision as p, binascii\n"
                  f"for seq, code, s in {cases!r}:\n"
                  "    print(binascii.hexlify(p.encode(seq, code, s)).decode())")
    firmware = [bytes.fromhex(x) for x in out.split()]
    assert firmware == [sl.encode(*c) for c in cases]
    for frame in firmware:
        body = frame[1:]
        assert frame[0] == sl.SOF and not set(body) & {0x01, 0x02, 0x03, 0x04, 0x05, 0x0A, 0x0D, 0xFE}


def test_firmware_cmac_and_kcv_match_pycryptodome():
    rfc4493_key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
    msgs = [b"", bytes.fromhex("6bc1bee22e409f96e93d7e117393172a"), os.urandom(40), os.urandom(64)]
    out = mp_eval("import node.keycheck as p, binascii\n"
                  f"for m in {msgs!r}:\n"
                  f"    print(binascii.hexlify(p.cmac({rfc4493_key!r}, m)).decode())\n"
                  f"print(p.kcv({rfc4493_key!r}))")
    lines = out.split()
    want = [CMAC.new(rfc4493_key, m, ciphermod=AES).hexdigest() for m in msgs]
    assert lines[:-1] == want
    assert want[0] == "bb1d6929e95937287fa37d129b756746"       # RFC 4493 example 1
    assert lines[-1] == keys.check_value(rfc4493_key)


# --- a good session -------------------------------------------------------------------------------
def provision_basics(link: sl.Link) -> None:
    link.ok(sl.SET_IDS, DEV_EUI + JOIN_EUI)
    link.ok(sl.SET_PAYLOAD_KEY, PAYLOAD_KEY)
    link.ok(sl.SET_INTERVAL, struct.pack(">I", 600))
    link.ok(sl.SET_SITE, json.dumps({"name": "Alter Hof", "lat": 48.1385, "lon": 11.5787}).encode())
    link.ok(sl.SET_OPTIONS, json.dumps({"rain_mm_per_tip": 0.25}).encode())


def test_settings_land_in_the_two_copy_config_store_and_read_back(node):
    provision_basics(node.link)
    got = node.link.json(sl.GET_CONFIG)["config"]
    assert got == {"kind": "climate", "dev_eui": DEV_EUI.hex().upper(), "join_eui": "0" * 16,
                   "interval_s": 600, "site": "Alter Hof", "lat": 48.1385, "lon": 11.5787,
                   "rain_mm_per_tip": 0.25}
    files = flash_files(node.flash)
    # Both copies are whole (config_store's format); the newest holds everything, the
    # other the write before it, so a cut in the next write still leaves one.
    copies = {}
    for name in config_image.FILES:
        data = files[name]
        generation, n = struct.unpack(">IH", data[3:9])
        assert data[:3] == b"CF1" and zlib.crc32(data[:-4]) == struct.unpack(">I", data[-4:])[0]
        copies[generation] = json.loads(data[9:9 + n])
    assert len(copies) == 2 and copies[max(copies)] == got
    assert copies[min(copies)] == {k: v for k, v in got.items() if k != "rain_mm_per_tip"}


def test_keys_are_write_only_only_their_check_values_come_back(node):
    kcv = node.link.ok(sl.SET_PAYLOAD_KEY, PAYLOAD_KEY).decode()
    assert kcv == keys.check_value(PAYLOAD_KEY)
    st = node.link.json(sl.STATUS)
    assert st["kcv"] == {"app_key": None, "payload_key": kcv}
    replies = [node.link.request(c).payload for c in (sl.STATUS, sl.GET_CONFIG, sl.LOG)]
    for r in replies + [kcv.encode()]:
        for form in key_forms(PAYLOAD_KEY):
            assert form not in r


def key_forms(key: bytes) -> list[bytes]:
    return [key, key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key),
            base64.b64encode(key).rstrip(b"=")]


def test_a_frame_sent_again_is_answered_again_without_doing_it_twice(node):
    provision_basics(node.link)
    frame = sl.encode(77, sl.SET_OPTIONS, json.dumps({"rain_alarm_mm_h": 20}).encode())
    gens = []
    for _ in range(2):
        node.link.send_raw(frame)
        ev = node.link.next_event(5)
        assert (ev.seq, ev.code) == (77, sl.OK)
        gens.append(max(struct.unpack(">I", d[3:7])[0]
                        for n, d in flash_files(node.flash).items() if n.startswith("config.")))
    assert gens[0] == gens[1]          # one write for two copies of the same frame


# --- bad frames: an error reply each, and not one byte of the flash changes ----------------------
def bad_frames() -> list[tuple[str, bytes, int, str]]:
    """(what, bytes on the line, status, words of the reason)."""
    ok_body = struct.pack(">HBB", 4, 9, sl.SET_INTERVAL) + struct.pack(">I", 900)
    crc = sl.crc16(ok_body)
    return [
        ("malformed: text outside a frame", b"interval_s=60\r\n", 0x81, "outside a frame"),
        ("malformed: an unescaped control byte", b"\xfe\x00\x04\x09\x13\x00\x00\x03\x84", 0x81,
         "unescaped"),
        ("malformed: an escape of a plain byte", b"\xfe\x00\x04\x09\x13\xfd\x41", 0x81, "escape"),
        ("truncated", sl.encode(9, sl.SET_INTERVAL, struct.pack(">I", 900))[:6], 0x82, "cut short"),
        ("oversize", b"\xfe\xff\xff\x09\x13", 0x83, "at most 2048"),
        ("wrong CRC", b"\xfe" + sl.escape(ok_body + struct.pack(">H", crc ^ 0x0100)), 0x84, "CRC"),
        ("unknown command", sl.encode(9, 0x42), 0x85, "0x42 unknown"),
        ("interval too short", sl.encode(9, sl.SET_INTERVAL, struct.pack(">I", 5)), 0x86,
         "interval_s must be 60..86400"),
        ("interval of 3 bytes", sl.encode(9, sl.SET_INTERVAL, b"\x00\x02\x58"), 0x86, "4 bytes"),
        ("latitude off the globe", sl.encode(9, sl.SET_SITE, json.dumps(
            {"name": "x", "lat": 200, "lon": 0}).encode()), 0x86, "lat must be -90..90"),
        ("site not JSON", sl.encode(9, sl.SET_SITE, b"{name"), 0x86, "not JSON"),
        ("DevEUI of 7 bytes", sl.encode(9, sl.SET_IDS, DEV_EUI[:7] + JOIN_EUI), 0x86, "16 bytes"),
        ("all-zero DevEUI", sl.encode(9, sl.SET_IDS, bytes(16)), 0x86, "not a device's EUI-64"),
        ("unknown setting", sl.encode(9, sl.SET_OPTIONS, b'{"colour": "red"}'), 0x86,
         "unknown setting"),
        ("another kind's setting", sl.encode(9, sl.SET_OPTIONS, b'{"glass_capacity": 900}'), 0x86,
         "glass setting"),
        ("a string for a number", sl.encode(9, sl.SET_OPTIONS, b'{"rain_mm_per_tip": "0.2"}'),
         0x86, "must be a number"),
        ("clear level above the alarm", sl.encode(9, sl.SET_OPTIONS,
                                                  b'{"rain_alarm_clear_mm_h": 90}'), 0x86,
         "must not be above"),
        ("the kind as an option", sl.encode(9, sl.SET_OPTIONS, b'{"kind": "glass"}'), 0x86,
         "when the node is provisioned"),
        ("all-zero payload key", sl.encode(9, sl.SET_PAYLOAD_KEY, bytes(16)), 0x86, "no key"),
        ("short payload key", sl.encode(9, sl.SET_PAYLOAD_KEY, PAYLOAD_KEY[:15]), 0x86,
         "16-byte key"),
        ("erase without the word", sl.encode(9, sl.ERASE, b"erase"), 0x86, "the word ERASE"),
        ("status with a payload", sl.encode(9, sl.STATUS, b"x"), 0x86, "no payload"),
        ("AppKey with no modem", sl.encode(9, sl.SET_APP_KEY, os.urandom(16)), 0x88,
         "flash the node first"),
        ("unlock without a challenge", sl.encode(9, sl.UNLOCK, bytes(16)), 0x88, "CHALLENGE"),
    ]


SETS = (sl.SET_IDS, sl.SET_APP_KEY, sl.SET_PAYLOAD_KEY, sl.SET_INTERVAL, sl.SET_SITE,
        sl.SET_OPTIONS)


@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
def test_every_bad_frame_gets_an_error_reply_and_leaves_the_flash_byte_identical(node, locked):
    provision_basics(node.link)
    if locked:
        node.link.ok(sl.LOCK)
    before = flash_files(node.flash)
    assert {"config.a", "config.b", "keys.json"} <= set(before)
    quiet = False
    for name, raw, status, says in bad_frames():
        if not quiet:
            time.sleep(0.35)     # the line goes quiet: the rest of a bad frame is over
        quiet = status not in sl.LINK_ERRORS
        reply = node.error_reply(raw)
        command = sl.FrameReader().feed(raw)[0].code if raw[:1] == b"\xfe" and status not in \
            sl.LINK_ERRORS else None
        if locked and command in SETS:
            status, says = 0x87, "locked"      # a locked node refuses a setting unread
        assert reply.code == status, f"{name}: {reply}"
        assert says in reply.payload.decode(), f"{name}: {reply.payload!r}"
        trusted = status not in sl.LINK_ERRORS
        assert reply.seq == (9 if trusted else 0), name
        assert flash_files(node.flash) == before, f"{name} changed the flash"
    # and the session goes on: a good frame after all that is served
    assert node.link.json(sl.GET_CONFIG)["config"]["interval_s"] == 600


# --- lock, unlock, erase ---------------------------------------------------------------------------
def test_a_locked_node_refuses_settings_until_unlocked_with_its_payload_key(node):
    link = node.link
    provision_basics(link)
    link.ok(sl.LOCK)
    assert link.request(sl.SET_INTERVAL, struct.pack(">I", 900)).status == 0x87
    # a wrong key's tag: refused, still locked; and the challenge is spent
    challenge = link.ok(sl.CHALLENGE)
    wrong = link.request(sl.UNLOCK, sl.unlock_tag(os.urandom(16), DEV_EUI, challenge))
    assert wrong.status == 0x8A and link.json(sl.STATUS)["locked"]
    assert link.request(sl.UNLOCK, sl.unlock_tag(PAYLOAD_KEY, DEV_EUI, challenge)).status == 0x88
    # the right one, over a fresh challenge
    challenge = link.ok(sl.CHALLENGE)
    link.ok(sl.UNLOCK, sl.unlock_tag(PAYLOAD_KEY, DEV_EUI, challenge))
    assert not link.json(sl.STATUS)["locked"]
    link.ok(sl.SET_INTERVAL, struct.pack(">I", 900))
    assert link.json(sl.GET_CONFIG)["config"]["interval_s"] == 900


def test_lock_needs_a_payload_key_to_unlock_with(node):
    reply = node.link.request(sl.LOCK)
    assert reply.status == 0x88 and "payload key" in reply.reason
    assert "locked" not in flash_files(node.flash)


def test_erase_wipes_keys_config_queue_and_lock_but_keeps_the_frame_counter(node):
    link = node.link
    provision_basics(link)
    link.ok(sl.LOCK)
    for name in ("q/00000001", "q/h0", "state/ctr0", "state/ctr1", "state/seq0", "state/join"):
        p = node.flash / name
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"x")
    out = link.json(sl.ERASE, b"ERASE")
    left = set(flash_files(node.flash))
    assert left == {"manifest.json", "state/ctr0", "state/ctr1"}
    assert "keys.json" in out["removed"] and "AppKey not overwritten" in out["modem"]
    st = link.json(sl.STATUS)
    assert not st["locked"] and st["kcv"] == {"app_key": None, "payload_key": None}


def test_an_idle_line_ends_provisioning_mode(tmp_path):
    n = PipeNode(tmp_path, idle_s=1)
    try:
        ev = n.link.next_event(15)
        assert isinstance(ev, sl.Frame) and (ev.seq, ev.code) == (0, sl.IDLE_END)
        assert n.proc.wait(10) == 0          # serve() returned (on a board: machine.reset())
    finally:
        n.close()


# --- the host checks the same table before it sends anything ---------------------------------------
CASES = [("interval_s", 600, "climate"), ("interval_s", 59, "climate"), ("interval_s", 1.5, "climate"),
         ("dr", 6, "climate"), ("adr", 1, "climate"), ("site", "", "climate"),
         ("site", "Marienplatz 1", "climate"), ("lat", 91.0, "climate"), ("lon", -180, "climate"),
         ("soil_sdi12_crc", False, "soil"), ("soil_sdi12_crc", False, "climate"),
         ("sonde_map", {"order": "CDAB", "params": [["ph", 288, 17, 0.0, 14.0]]}, "water"),
         ("sonde_map", {"order": "XYZW", "params": []}, "water"), ("glass_tilt_deg", 45, "glass"),
         ("colour", "red", "climate"), ("dev_eui", "00", "climate")]


def test_host_and_node_accept_and_refuse_the_same_settings():
    out = mp_eval("import node.options as o, json\n"
                  f"for k, v, kind in {json.loads(json.dumps(CASES))!r}:\n"
                  "    try:\n        o.check(k, v, kind)\n        print('ok')\n"
                  "    except ValueError as e:\n        print('refused')")
    node_says = out.split()
    host_says = []
    for k, v, kind in CASES:
        try:
            prov.OPTIONS.check(k, v, kind)
            host_says.append("ok")
        except ValueError:
            host_says.append("refused")
    assert node_says == host_says
    assert [k for (k, _, _), said in zip(CASES, host_says) if said == "ok"] == \
        ["interval_s", "site", "lon", "soil_sdi12_crc", "sonde_map", "glass_tilt_deg"]


def test_config_set_refuses_a_bad_value_before_opening_the_port(tmp_path):
    with pytest.raises(prov.ProvisionError, match="interval_s must be 60..86400.*nothing was sent"):
        prov.config_set(str(tmp_path / "no-such-port"), ["interval_s=5"])
    with pytest.raises(prov.ProvisionError, match="expected key=value"):
        prov.config_set(str(tmp_path / "no-such-port"), ["interval_s"])
    assert prov.parse_settings(["adr=off", "rain_mm_per_tip=0.25", "site="], "climate") == \
        {"adr": False, "rain_mm_per_tip": 0.25, "site": None}


def test_a_keys_file_others_can_read_is_refused(tmp_path):
    f = tmp_path / "keys.json"
    f.write_text(json.dumps({"app_key": "00" * 16, "payload_key": "11" * 16}))
    f.chmod(0o644)
    with pytest.raises(prov.ProvisionError, match="can be read by others.*chmod 600"):
        prov.read_keys_file(f)
    f.chmod(0o600)
    assert prov.read_keys_file(f) == (bytes(16), b"\x11" * 16)
