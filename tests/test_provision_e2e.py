"""From a blank virtual board to decoded uplinks, with the commands a technician types:
mpremote, nodectl flash, selftest, provision, config, status, monitor, inventory export.

The board runs in a helper process (the same VirtualBoard `nodectl board` runs) that
writes every LoRaWAN PHYPayload the network model saw when it is stopped, so the
uplinks can be opened with nothing but the inventory's keys: the join with the AppKey,
the FRMPayload with the session keys derived from it, the envelope with the payload key.
"""
from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from host_tools import boards, envelope, export, inventory, keys, schemas
from host_tools import serial_link as sl
from simulators.board.image import read_files
from simulators.network import lorawan

BIN = Path(sys.executable).parent
SPEED = 5

# VirtualBoard in a process of its own; on SIGTERM it writes the network's frames.
_BOARD = r"""
import json, os, sys
from pathlib import Path
from simulators.board.board import VirtualBoard
workdir, frames_path, speed = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
def note(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)
board = VirtualBoard(kind="climate", workdir=workdir, speed=speed, fresh=True, on_event=note)
print(json.dumps({"event": "ready", "port": board.port.path,
                  "flash": str(board.node.flash.path)}), flush=True)
try:
    board.run()
finally:
    fd = os.open(frames_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        for r in board.network.frames:
            f.write(json.dumps({"kind": r.kind, "dev_eui": r.dev_eui, "phy": r.phy.hex(),
                                "fcnt": r.fcnt, "received": r.received}) + "\n")
"""


class Board:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.frames_path = workdir / "frames.jsonl"
        self.proc = subprocess.Popen([sys.executable, "-c", _BOARD, str(workdir),
                                      str(self.frames_path), str(SPEED)],
                                     stdout=subprocess.PIPE, text=True,
                                     stderr=open(workdir / "board.stderr", "w"))
        ready = json.loads(self.proc.stdout.readline())
        self.port, self.image = ready["port"], Path(ready["flash"])
        self.events: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def wait_event(self, name: str, after: int, timeout: float = 90.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.events[after:]:
                if e["event"] == name:
                    return e
            time.sleep(0.05)
        raise AssertionError(f"no {name} event within {timeout} s: {self.events[after:]}")

    def console(self) -> bytes:
        return (self.workdir / "console.log").read_bytes()

    def stop(self) -> list[dict]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        return [json.loads(x) for x in self.frames_path.read_text().splitlines()]


def run(outputs: list, *args, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    """A command as a technician types it; its output is kept for the key check."""
    r = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True,
                       timeout=timeout)
    outputs.append(r.stdout + r.stderr)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} exited {r.returncode}: {r.stdout}{r.stderr}")
    return r


def open_uplinks(frames: list[dict], row: dict) -> list[dict]:
    """The readings of every uplink, opened with the inventory row's keys only."""
    app_key = bytes.fromhex(row["app_key"])
    payload_key = bytes.fromhex(row["payload_key"])
    dev_eui = bytes.fromhex(row["dev_eui"])
    readings, session, dev_nonce = [], None, None
    for f in frames:
        if f["dev_eui"] != row["dev_eui"] or not f["received"]:
            continue
        phy = bytes.fromhex(f["phy"])
        if f["kind"] == "JoinRequest":
            dev_nonce = lorawan.parse_join_request(phy, app_key).dev_nonce   # MIC checked
        elif f["kind"] == "JoinAccept":
            accept = lorawan.open_join_accept(phy, app_key)                    # MIC checked
            nwk, app = lorawan.session_keys(app_key, accept.join_nonce, accept.net_id, dev_nonce)
            session = (nwk, app, accept.dev_addr)
        elif f["kind"] in ("UnconfirmedDataUp", "ConfirmedDataUp") and f["fcnt"] is not None:
            nwk, app, dev_addr = session
            assert lorawan.verify_data_frame(phy, nwk, f["fcnt"])
            data = lorawan.parse_data_frame(phy)
            if data.port is None:
                continue
            plain = lorawan.crypt_frm_payload(app, dev_addr, f["fcnt"], True, data.frm_payload)
            _counter, body = envelope.unseal(payload_key, dev_eui, plain)
            readings += schemas.decode_readings(body)
    return readings


def key_forms(row: dict) -> list[str]:
    out = []
    for name in ("app_key", "payload_key"):
        key = bytes.fromhex(row[name])
        b64 = base64.b64encode(key).decode()
        out += [key.hex(), key.hex().upper(), b64, b64.rstrip("=")]
    return out


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """Everything done once, as on a bench: the results the tests below look at."""
    wd = tmp_path_factory.mktemp("bench")
    board = Board(wd)
    outputs: list[str] = []
    out = {"outputs": outputs, "workdir": wd}
    inv = wd / "inventory.csv"
    def settled(fn):
        """Run `fn`, then wait until the node has gone back to sleep: a command that
        interrupts a wake would find its watchdog counting."""
        n = len(board.events)
        result = fn()
        board.wait_event("sleep", n)
        return result

    def cp(src: Path):
        run(outputs, "mpremote", "connect", board.port, "fs", "cp", str(src), ":board.json")

    try:
        out["print1"] = run(outputs, "mpremote", "connect", board.port, "exec", "print(1)").stdout
        settled(lambda: run(outputs, "nodectl", "flash", "--port", board.port, "--kind", "climate"))
        out["selftest"] = settled(lambda: run(outputs, "nodectl", "selftest", "--port", board.port,
                                              "--json"))
        # A board whose SHT4x is wired to another address than its board file says.
        spec = json.loads(boards.path_of("pico-rak3172").read_text())
        spec["parts"]["sht4x"]["address"] = 0x45
        (wd / "miswired.json").write_text(json.dumps(spec))
        cp(wd / "miswired.json")
        out["selftest_miswired"] = settled(lambda: run(outputs, "nodectl", "selftest", "--port",
                                                       board.port, "--json", check=False))
        cp(boards.path_of("pico-rak3172"))
        out["bad_frames"] = settled(lambda: send_bad_frames(board))
        n = len(board.events)
        r = run(outputs, "nodectl", "provision", "--port", board.port, "--kind", "climate",
                "--inventory", str(inv), "--site", "Sendlinger Tor", "--lat", "48.1339",
                "--lon", "11.5668", "--json")
        out["provision"] = json.loads(r.stdout)
        out["monitor"] = follow_console(board, outputs)      # the wake after the reset
        board.wait_event("sleep", n)
        out["config_set"] = settled(lambda: run(outputs, "nodectl", "config", "set", "--port",
                                                board.port, "--inventory", str(inv),
                                                "interval_s=600", "--json"))
        # Provisioning a locked node into another inventory, without its old key: refused.
        out["again"] = settled(lambda: run(outputs, "nodectl", "provision", "--port", board.port,
                                           "--kind", "climate", "--inventory", str(wd / "new.csv"),
                                           check=False))
        out["status"] = json.loads(settled(lambda: run(outputs, "nodectl", "status", "--port",
                                                       board.port, "--json")).stdout)
        out["config_get"] = json.loads(run(outputs, "nodectl", "config", "get", "--port",
                                           board.port, "interval_s", "site", "--json").stdout)
        # (the export commands themselves: tests/test_inventory_export.py)
        export.export(inv, "ttn", wd / "ttn.json")
        export.export(inv, "chirpstack", wd / "chirpstack.json",
                      application_id="6e0c1f2a-3b4c-4d5e-8f60-718293a4b5c6",
                      device_profile_id="0a1b2c3d-4e5f-4a6b-9c7d-8e9fa0b1c2d3")
    finally:
        out["frames"] = board.stop()
    out["console"] = board.console()
    out["inventory"] = inv
    out["row"] = next(iter(inventory.read(inv).values()))
    return out


def send_bad_frames(board: Board) -> dict:
    """Bad frames on the board's own console; the flash image before and after."""
    with sl.open_provisioning(board.port) as link:
        before = (board.image.read_bytes(), read_files(board.image))
        replies = []
        for raw in (b"set interval 60\r\n",                                    # malformed
                    sl.encode(7, sl.SET_INTERVAL, b"\x00\x00\x02\x58")[:5],     # truncated
                    b"\xfe\x40\x00\x07\x13",                                      # oversize
                    sl.encode(7, sl.SET_INTERVAL, b"\x00\x00\x02\x58")[:-1] + b"\x00",  # CRC
                    sl.encode(7, 0x5A),                                           # unknown
                    sl.encode(7, sl.SET_INTERVAL, b"\x00\x00\x00\x05")):          # bad value
            time.sleep(0.4)
            link.send_raw(raw)
            ev = link.next_event(10)
            replies.append((ev.seq, ev.code, ev.payload.decode()))
        time.sleep(0.5)
        after = (board.image.read_bytes(), read_files(board.image))
    return {"replies": replies, "before": before, "after": after}


def follow_console(board: Board, outputs: list) -> list[str]:
    p = subprocess.Popen([str(BIN / "nodectl"), "monitor", "--port", board.port, "--seconds",
                          "60", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for raw in p.stdout:
        lines.append(json.loads(raw)["line"])
        if "] sleep " in lines[-1]:
            break
    p.send_signal(signal.SIGINT)
    rest, err = p.communicate(timeout=10)
    outputs.append("\n".join(lines) + rest + err)
    return lines


# --- the must-show ----------------------------------------------------------------------------
def test_mpremote_reaches_the_blank_board(bench):
    assert bench["print1"].strip() == "1"


def test_provisioned_node_joins_and_its_uplinks_open_with_the_inventorys_keys(bench):
    row = bench["row"]
    assert bench["provision"]["dev_eui"] == row["dev_eui"] and bench["provision"]["locked"]
    readings = open_uplinks(bench["frames"], row)
    climate = [r for r in readings if "temperature" in r]
    assert climate, f"no climate reading among the node's uplinks: {readings}"
    assert all(-40 < r["temperature"] < 60 and 800 < r["pressure"] < 1100 for r in climate)


def test_bad_frames_on_the_board_get_error_replies_and_leave_the_flash_image_byte_identical(bench):
    bad = bench["bad_frames"]
    codes = [(seq, code) for seq, code, _ in bad["replies"]]
    assert codes == [(0, 0x81), (0, 0x82), (0, 0x83), (0, 0x84), (7, 0x85), (7, 0x86)]
    assert bad["after"][0] == bad["before"][0]           # the whole littlefs image
    assert bad["after"][1] == bad["before"][1]           # and every file in it


def test_selftest_names_every_part_with_identity_reading_and_verdict(bench):
    parts = {p["part"]: p for p in json.loads(bench["selftest"].stdout)["parts"]}
    assert set(parts) == {"sht4x", "bme280", "pcf8583", "rain_gauge", "battery", "modem"}
    assert all(p["verdict"] == "ok" for p in parts.values()), parts
    assert parts["sht4x"]["identity"].startswith("serial ")
    assert parts["bme280"]["identity"].startswith("chip id 0x60")
    assert parts["modem"]["identity"].startswith("rak3172 DevEUI AC1F09")
    assert 30 < parts["sht4x"]["reading"]["humidity_pct"] <= 100


def test_selftest_fails_a_part_that_does_not_answer_and_exits_non_zero(bench):
    r = bench["selftest_miswired"]
    assert r.returncode == 1
    result = json.loads(r.stdout)
    assert result["failed"] == ["sht4x"], result["parts"]
    sht = next(p for p in result["parts"] if p["part"] == "sht4x")
    assert sht["verdict"] == "fail" and "no answer at 0x45" in sht["reason"]


def test_status_shows_the_keys_by_check_value_and_the_node_locked(bench):
    st, row = bench["status"], bench["row"]
    assert st["locked"] and st["kind"] == "climate"
    assert st["kcv"] == {"app_key": keys.check_value(bytes.fromhex(row["app_key"])),
                         "payload_key": keys.check_value(bytes.fromhex(row["payload_key"]))}
    assert st["modem"]["dev_eui"] == row["dev_eui"] and st["files"]["differ"] == []
    assert st["config"]["site"] == "Sendlinger Tor"


def test_config_set_on_a_locked_node_unlocks_applies_and_locks_again(bench):
    assert json.loads(bench["config_set"].stdout) == {"applied": {"interval_s": 600}, "locked": True}
    assert bench["config_get"] == {"config": {"interval_s": 600, "site": "Sendlinger Tor"},
                                   "locked": True}


def test_a_locked_node_is_not_provisioned_again_without_its_payload_key(bench):
    r = bench["again"]
    assert r.returncode == 2
    assert "the node is locked" in r.stderr and "Nothing was changed" in r.stderr
    assert "--unlock-inventory" in r.stderr and "--erase" in r.stderr
    assert not (bench["workdir"] / "new.csv").exists()
    # the status read after it: the same keys, still locked
    assert bench["status"]["locked"] and bench["status"]["kcv"] == {"app_key": keys.check_value(bytes.fromhex(bench["row"]["app_key"])),
                                      "payload_key": keys.check_value(
                                          bytes.fromhex(bench["row"]["payload_key"]))}


def test_monitor_shows_the_nodes_log_lines(bench):
    lines = bench["monitor"]
    assert any("seal counter=" in line for line in lines)
    assert "] sleep " in lines[-1]


def test_no_key_appears_in_any_output_log_or_console(bench):
    texts = bench["outputs"] + [bench["console"].decode(errors="replace"),
                                "\n".join(bench["monitor"])]
    for form in key_forms(bench["row"]):
        for t in texts:
            assert form not in t
    assert bytes.fromhex(bench["row"]["payload_key"]) not in bench["console"]


def test_inventory_and_exports_are_owner_only_and_exports_hold_no_payload_key(bench):
    wd, row = bench["workdir"], bench["row"]
    assert bench["inventory"].stat().st_mode & 0o777 == 0o600
    for name in ("ttn.json", "chirpstack.json"):
        f = wd / name
        assert f.stat().st_mode & 0o777 == 0o600
        text = f.read_text()
        assert row["app_key"].upper() in text
        assert row["payload_key"].upper() not in text and row["payload_key"].lower() not in text
