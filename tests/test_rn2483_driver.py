"""The firmware's RN2483 driver (firmware/modems/rn2483.py) on the real MicroPython
interpreter: through the simulator's machine.UART against the RN2483 model (with the
shared modem-fault script on the wire), and against a scripted UART for replies the model
never gives. Last, a simulated climate day on the RN2483 through `nodectl simulate`."""
from __future__ import annotations

import json
import textwrap

import pytest
from Crypto.Cipher import AES

from fake_ticks import run_on_fake_ticks
from host_tools import boards
from simulators.clock import Clock
from simulators.interpreter import FIRMWARE
from simulators.modems.faults import ModemFaults
from simulators.network import Network, eu868
from simulators.node import SimNode

BOARD = "pico-rn2483"
DEV_EUI = bytes.fromhex("0004A30B001A55ED")
JOIN_EUI = bytes.fromhex("70B3D57ED0000001")
APP_KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
HOUR = 3_600_000_000
# The driver's record of which keys the saved session belongs to: AES(AppKey, DevEUI|JoinEUI).
FINGERPRINT = AES.new(APP_KEY, AES.MODE_ECB).encrypt(DEV_EUI + JOIN_EUI)[:4]

HEAD = f"""
import json, time, machine
from modems import REASONS, ModemError
from modems.rn2483 import RN2483
DEV, JOIN, KEY = {DEV_EUI!r}, {JOIN_EUI!r}, {APP_KEY!r}
uart = machine.UART(0, baudrate=57600, tx=machine.Pin(0), rx=machine.Pin(1), timeout=100,
                    timeout_char=10)
m = RN2483(uart)

def attempt(fn, *a, **kw):
    try:
        r = fn(*a, **kw)
    except ModemError as e:
        return ["error", REASONS[e.reason], e.detail, e.wait_ms]
    return REASONS[r] if fn.__name__ == "send" else r

def out(name, value):
    print("R " + json.dumps([name, value]))

def up(dr=5):
    m.wake()
    if not m.joined():
        m.configure(DEV, JOIN, KEY, dr=dr, adr=False)
        out("join", attempt(m.join))
"""
TAIL = "\nmachine.deepsleep(1000)\n"


class Rig:
    """A pico-rn2483 board whose main.py is a driver script; the model outlives the wakes."""

    def __init__(self, tmp_path, seed=1):
        self.tmp_path = tmp_path
        self.clock = Clock()
        self.net = Network(seed=seed)
        self.node = SimNode("n", boards.load(BOARD), tmp_path / "n", self.clock, self.net,
                            DEV_EUI)
        self.modem = self.node.modem
        self.faults = ModemFaults(self.modem, "rn2483", self.clock)
        self.node.uarts[0].attach(self.faults)
        self.commands = []                   # every line the module executed
        execute = self.modem._execute
        self.modem._execute = lambda text: (self.commands.append(text), execute(text))[1]

    def run(self, body):
        """Run `body` after HEAD in one wake; what it `out`s, by name (lists when repeated)."""
        main = HEAD + textwrap.dedent(body) + TAIL
        files = {"main.py": main.encode()}
        for package in ("modems", "node"):
            for path in (FIRMWARE / package).glob("*.py"):
                files[f"{package}/{path.name}"] = path.read_bytes()
        self.node.install(files)
        wake = self.node.wake()
        assert wake.ended == "deepsleep", wake.console
        results = {}
        for line in wake.console.splitlines():
            if line.startswith("R "):
                name, value = json.loads(line[2:])
                results.setdefault(name, []).append(value)
        return {k: v[0] if len(v) == 1 else v for k, v in results.items()}, wake.console

    def window(self, mode, seconds=3600):
        self.faults.windows.append((self.clock.now_us, self.clock.now_us + int(seconds * 1e6),
                                    mode))

    def ups(self):
        return [u for u in self.net.uplinks if u.dev_eui == DEV_EUI.hex().upper()]


@pytest.fixture
def rig(tmp_path):
    return Rig(tmp_path)


# --- commands on the wire -----------------------------------------------------------------
def test_first_wake_configures_joins_and_sends_with_the_guide_s_commands(rig):
    res, _ = rig.run("""
        up(dr=5)
        out("joined", m.joined())
        out("send", attempt(m.send, 2, b"\\x01\\x02"))
        out("version", m.version)
    """)
    assert res == {"join": True, "joined": True, "send": "sent",
                   "version": "RN2483 1.0.4 Oct 12 2017 14:59:25"}
    assert rig.commands == [
        "", "sys get ver", "mac get status",
        "mac get deveui", "mac set deveui 0004A30B001A55ED",
        "mac get appeui", "mac set appeui 70B3D57ED0000001",
        "mac set appkey 2B7E151628AED2A6ABF7158809CF4F3C",
        "mac get dr", "mac get adr", "mac get retx", "mac set retx 0",
        "mac get devaddr", "mac get dr", "mac join otaa",
        "sys get nvm 300", "sys get nvm 301", "sys get nvm 302", "sys get nvm 303",
        *["sys set nvm %X %02X" % (0x300 + i, b) for i, b in enumerate(FINGERPRINT)],
        "mac save",
        "mac get status", "mac get dr", "mac get upctr", "mac tx uncnf 2 0102", "mac get upctr",
    ]
    (up,) = rig.ups()
    assert (up.port, up.payload, up.confirmed, up.fcnt) == (2, b"\x01\x02", False, 0)
    # What `mac save` kept: the keys, the session and its counter.
    assert rig.modem.eeprom.app_key == APP_KEY and rig.modem.eeprom.dev_addr == up.dev_addr


def test_a_second_wake_finds_the_session_and_writes_nothing(rig):
    rig.run("up()")
    rig.commands.clear()
    res, _ = rig.run("""
        up()
        out("send", attempt(m.send, 2, b"\\x03"))
    """)
    assert res == {"send": "sent"}
    assert not [c for c in rig.commands if c.startswith(("mac set", "sys set", "mac save"))]


def test_join_refused_by_the_network_is_false(rig):
    rig.net.fail_joins(0, HOUR)
    res, _ = rig.run("""
        up(dr=0)
        out("joined", m.joined())
    """)
    assert res == {"join": False, "joined": False}


def test_confirmed_uplink_acked_or_not(rig):
    res, _ = rig.run("""
        up()
        out("acked", attempt(m.send, 9, b"\\xab", confirmed=True))
        time.sleep_ms(30000)
    """)
    assert res["acked"] == "sent"
    rig.net.available = False
    res, _ = rig.run("""
        up()
        out("lost", attempt(m.send, 9, b"\\xcd", confirmed=True))
    """)
    assert res["lost"] == "not acked"
    assert [u.confirmed for u in rig.ups() + rig.net.lost] == [True, True]


def test_a_downlink_reaches_the_caller(rig):
    rig.run("up()")
    rig.net.queue_downlink(DEV_EUI, 7, b"\x00\x07\x10")
    res, _ = rig.run("""
        up()
        out("send", attempt(m.send, 2, b"\\x01"))
        out("downlinks", [[p, d.hex()] for p, d in m.downlinks])
    """)
    assert res == {"send": "sent", "downlinks": [[7, "000710"]]}


def test_oversize_at_dr0_is_refused_before_anything_is_transmitted(rig):
    res, _ = rig.run("""
        up(dr=0)
        out("big", attempt(m.send, 2, bytes(52)))
        out("max", m.max_payload())
    """)
    assert res["big"] == ["error", "too big", "52 bytes > 51 at DR0", 0]
    assert res["max"] == 51
    assert not [c for c in rig.commands if c.startswith("mac tx")]
    assert rig.ups() == []


def test_duty_cycle_wait_is_estimated_from_the_channels_in_use(rig):
    res, console = rig.run("""
        up(dr=0)
        time.sleep_ms(600000)                     # the join's channel is free again
        for i in range(3):
            out("sent", attempt(m.send, 2, bytes(40)))
        out("blocked", attempt(m.send, 2, bytes(40)))
        out("at", time.ticks_ms())
    """)
    assert res["sent"] == ["sent"] * 3
    error, reason, _, wait_ms = res["blocked"]
    assert (error, reason) == ("error", "duty cycle")
    free_ms = min(u.t_us + 303 * u.airtime_us for u in rig.ups()) // 1000
    true_wait = free_ms - res["at"]
    assert 0 <= wait_ms - true_wait <= 50, (wait_ms, true_wait)


def test_after_the_estimated_wait_the_frame_goes_out(rig):
    res, _ = rig.run("""
        up(dr=0)
        time.sleep_ms(600000)
        for i in range(3):
            attempt(m.send, 2, bytes(40))
        r = attempt(m.send, 2, bytes(40))
        time.sleep_ms(r[3])
        out("retry", attempt(m.send, 2, bytes(40)))
    """)
    assert res["retry"] == "sent"
    assert len(rig.ups()) == 4


# --- what a module reset costs: mac save and mac join abp -------------------------------------
def test_reboot_mid_send_is_an_error_and_the_saved_session_resumes_past_the_counters(rig):
    rig.run("""
        up()
        for i in range(5):
            attempt(m.send, 2, bytes([i]))
            time.sleep_ms(20000)
    """)
    rig.window("reboot", 60)
    res, _ = rig.run("""
        up()
        out("send", attempt(m.send, 2, b"\\x05"))
        out("resets", m.resets)
    """)
    assert res["send"][:2] == ["error", "timeout"] and "reset" in res["send"][2]
    assert res["resets"] == 1
    rig.faults.windows.clear()
    rig.commands.clear()
    res, _ = rig.run("""
        up()
        out("first", attempt(m.send, 2, b"\\x06"))
        out("second", attempt(m.send, 2, b"\\x07"))
    """)
    assert res == {"join": True, "first": "sent", "second": "sent"}
    assert "mac join abp" in rig.commands and "mac join otaa" not in rig.commands
    assert "mac set upctr 32" in rig.commands       # saved 0 (at the join) + RESUME_SKIP
    assert len(rig.net.joins) == 1
    ups = rig.ups()
    fcnts = [u.fcnt for u in ups]
    assert fcnts == sorted(set(fcnts)), "no counter twice"
    assert [(u.payload, u.fcnt, u.confirmed) for u in ups[-2:]] == [
        (b"\x06", 32, True), (b"\x07", 33, False)]   # the resumed session is checked once


def test_counters_are_saved_every_16_uplinks_not_every_uplink(rig):
    res, _ = rig.run("""
        up()
        n = 0
        while n < 40:
            r = attempt(m.send, 2, bytes([n]))
            if r == "sent":
                n += 1
            else:
                time.sleep_ms(r[3] + 50)
        out("n", n)
    """)
    assert res["n"] == 40
    saves = [i for i, c in enumerate(rig.commands) if c == "mac save"]
    assert len(saves) == 3                          # the join, then crossing 16 and 32
    assert rig.modem.eeprom.up_ctr == 32
    # A reset now resumes at 32 + 32 = 64: above the 40 counters used.
    rig.modem.power_cut(10_000)
    rig.clock.advance_to(rig.clock.now_us + 1_000_000)
    rig.run("up()\nout('s', attempt(m.send, 2, b'\\x00'))")
    assert rig.ups()[-1].fcnt == 64


def test_a_resumed_session_the_network_forgot_is_dropped_for_a_new_join(rig):
    rig.run("up()\nattempt(m.send, 2, b'\\x00')")
    rig.modem.power_cut(10_000)
    del rig.net.sessions[DEV_EUI.hex().upper()]      # e.g. the device was re-registered
    rig.clock.advance_to(rig.clock.now_us + 60_000_000)
    res, _ = rig.run("""
        up()
        out("send", attempt(m.send, 2, b"\\x01"))
        out("joined", m.joined())
    """)
    assert res == {"join": True, "send": "not acked", "joined": False}
    res, _ = rig.run("""
        up()
        out("send", attempt(m.send, 2, b"\\x02"))
    """)
    assert res == {"join": True, "send": "sent"}
    assert [j.accepted for j in rig.net.joins] == [True, True]


def test_new_keys_never_resume_an_old_session(rig):
    rig.run("up()")
    rig.modem.power_cut(10_000)
    rig.clock.advance_to(rig.clock.now_us + 1_000_000)
    rig.commands.clear()
    res, _ = rig.run("""
        m.wake()
        m.configure(DEV, JOIN, bytes(15) + b"\\x01", adr=False)
        out("join", attempt(m.join))
    """)
    assert "mac join abp" not in rig.commands and "mac join otaa" in rig.commands


def test_frame_counter_rollover_forgets_the_session(rig):
    rig.run("up()")
    rig.modem.mac.session.fcnt_up = 0xFFFFFFFF
    res, _ = rig.run("""
        up()
        out("last", attempt(m.send, 2, b"\\x01"))
        out("over", attempt(m.send, 2, b"\\x02"))
        out("joined", m.joined())
    """)
    assert res["last"] == "sent"
    assert res["over"] == ["error", "not joined", "frame_counter_err_rejoin_needed", 0]
    assert res["joined"] is False
    rig.commands.clear()
    rig.run("up()")
    assert "mac join otaa" in rig.commands and "mac join abp" not in rig.commands


# --- a module that is asleep, silent, noisy or at another baud rate ----------------------------
def test_sleep_then_wake_by_break_and_0x55(rig):
    rig.run("up()\nm.sleep(900000)")
    rig.clock.advance_to(rig.clock.now_us + 10_000)      # the line leaves the UART
    assert rig.modem.asleep
    rig.clock.advance_to(rig.clock.now_us + 60_000_000)
    res, _ = rig.run("""
        m.wake()
        out("joined", m.joined())
    """)
    assert not rig.modem.asleep
    assert res["joined"] is True


def test_a_silent_module_is_no_answer(rig):
    rig.window("silent")
    res, _ = rig.run("out('wake', attempt(m.wake))")
    assert res["wake"][:2] == ["error", "no answer"]


def test_garbage_on_the_line_does_not_stop_join_and_send(rig):
    rig.window("garbage")
    res, _ = rig.run("""
        n = 0
        for i in range(6):
            try:
                up()
                if attempt(m.send, 2, bytes([i])) == "sent":
                    n += 1
            except ModemError:
                pass
            time.sleep_ms(20000)
        out("sent", n)
        out("noisy", m._at.noisy_lines + m._at.strays)
    """)
    assert rig.faults.injected["garbage"] > 0
    assert res["sent"] >= 3 and res["noisy"] > 0
    payloads = [u.payload for u in rig.ups()]
    assert len(payloads) == len(set(payloads))


def test_a_baud_mismatch_is_cured_by_the_auto_baud_of_the_next_wake(rig):
    rig.run("up()")
    link = rig.node.uarts[0]
    link.set_device_format(9600)                    # the module's rate changed behind our back
    res, _ = rig.run("""
        up()
        out("send", attempt(m.send, 2, b"\\x09"))
    """)
    assert res["send"] == "sent"
    assert link.device_format[0] == 57600


# --- replies the model never gives: a scripted UART ------------------------------------------
# SCRIPT maps a command (as written, without CR LF) to its reply lines; unscripted: "ok".
FAKE = r"""
import time
class FakeUart:
    def __init__(self, script):
        self.script = script
        self.rx = b""
        self.written = []
        self.timeout = 100
    def sendbreak(self):
        self.written.append("<break>")
    def write(self, data):
        text = bytes(data).decode().strip()
        if text != "\x55":
            self.written.append(text)
            self.rx += self.script.get(text, b"ok\r\n")
        return len(data)
    def any(self):
        return len(self.rx)
    def readline(self):
        if not self.rx:
            time.sleep_ms(self.timeout)
            return None
        i = self.rx.find(b"\n")
        line, self.rx = (self.rx, b"") if i < 0 else (self.rx[:i + 1], self.rx[i + 1:])
        return line
from modems import REASONS, ModemError
from modems.rn2483 import RN2483
def attempt(fn, *a, **kw):
    try:
        r = fn(*a, **kw)
    except ModemError as e:
        return ("error", REASONS[e.reason], e.detail)
    return REASONS[r] if fn.__name__ == "send" else r
uart = FakeUart(SCRIPT)
m = RN2483(uart)
"""


def run_fake(tmp_path, script, body):
    return run_on_fake_ticks(tmp_path, f"SCRIPT = {script!r}\n" + FAKE + textwrap.dedent(body))


@pytest.mark.parametrize("reply", [b"5x\r\n", b"\r\n\xff\xfe\r\n", b"mac_tx_ok\r\n", b"99\r\n"])
def test_a_garbled_value_is_a_modem_error_never_a_python_one(tmp_path, reply):
    out = run_fake(tmp_path, {"mac get dr": reply}, "print(attempt(m.data_rate))")
    assert out[0].startswith("('error', '")


@pytest.mark.parametrize("status, joined", [(b"0001", True), (b"0000", False),
                                            (b"00000010", True), (b"00000001", False),
                                            (b"00000811", True)])
def test_joined_reads_the_status_word_of_either_firmware(tmp_path, status, joined):
    out = run_fake(tmp_path, {"mac get status": status + b"\r\n"}, "print(m.joined())")
    assert out == [str(joined)]


def test_no_second_reply_is_a_timeout_and_a_refused_key_is_never_named(tmp_path):
    key = APP_KEY.hex().upper()
    script = {"mac get dr": b"5\r\n", "mac get upctr": b"3\r\n",
              "mac tx uncnf 2 01": b"ok\r\n",
              "mac get deveui": DEV_EUI.hex().upper().encode() + b"\r\n",
              "mac get appeui": JOIN_EUI.hex().upper().encode() + b"\r\n",
              "mac set appkey " + key: b"invalid_param\r\n"}
    out = run_fake(tmp_path, script, f"""
        print(attempt(m.send, 2, b"\\x01", timeout_ms=8000))
        print(attempt(m.configure, {DEV_EUI!r}, {JOIN_EUI!r}, {APP_KEY!r}))
    """)
    assert out[0] == "('error', 'timeout', 'no result to mac tx uncnf')"
    assert out[1] == "('error', 'refused', 'mac set appkey: invalid_param')"
    assert key not in "".join(out)


@pytest.mark.parametrize("reply, expected", [
    (b"busy", "('error', 'busy', 'mac tx uncnf')"),
    (b"not_joined", "('error', 'not joined', 'mac tx uncnf')"),
    (b"silent", "('error', 'refused', 'mac tx uncnf: silent')"),
    (b"invalid_data_len", "('error', 'too big', 'mac tx uncnf')"),
    # Nothing of this wake blocks the channels: one frame like this one, 303 x its airtime.
    (b"no_free_ch", "('error', 'duty cycle', 'mac tx uncnf', %d)"
     % -(-eu868.airtime_us(0, 13 + 20) * 303 // 1000)),
])
def test_immediate_refusals_of_mac_tx_become_the_shared_reasons(tmp_path, reply, expected):
    script = {"mac get dr": b"0\r\n", "mac get upctr": b"3\r\n", "mac get ch dcycle 0": b"302\r\n",
              "mac tx uncnf 2 " + "00" * 20: reply + b"\r\n"}
    out = run_fake(tmp_path, script, """
        try:
            m.send(2, bytes(20))
        except ModemError as e:
            r = ("error", REASONS[e.reason], e.detail) + ((e.wait_ms,) if e.wait_ms else ())
        print(r)
    """)
    assert out == [expected]


def test_a_paused_mac_is_resumed_and_the_command_repeated(tmp_path):
    script = {"mac get dr": b"5\r\n", "mac get upctr": b"3\r\n",
              "mac tx uncnf 2 01": b"ok\r\nmac_tx_ok\r\n"}
    out = run_fake(tmp_path, script, """
        uart.script["mac tx uncnf 2 01"] = b"mac_paused\\r\\n"
        def resume_then_ok():
            pass
        orig = uart.write
        def write(data):
            if bytes(data).strip() == b"mac resume":
                uart.script["mac tx uncnf 2 01"] = b"ok\\r\\nmac_tx_ok\\r\\n"
            return orig(data)
        uart.write = write
        print(attempt(m.send, 2, b"\\x01"))
        print([w for w in uart.written if w.startswith("mac tx") or w == "mac resume"])
    """)
    assert out == ["sent", "['mac tx uncnf 2 01', 'mac resume', 'mac tx uncnf 2 01']"]


def test_a_malformed_downlink_is_counted_not_kept(tmp_path):
    script = {"mac get dr": b"5\r\n", "mac get upctr": b"3\r\n",
              "mac tx uncnf 2 01": b"ok\r\nmac_rx 2 0G\r\n"}
    out = run_fake(tmp_path, script, """
        print(attempt(m.send, 2, b"\\x01"))
        print(m.downlinks, m.bad_events)
    """)
    assert out == ["sent", "[] 1"]


# --- a simulated day -------------------------------------------------------------------------------
@pytest.mark.parametrize("how", [("--modem", "rn2483"), ("--board", "pico-rn2483")])
def test_a_climate_day_on_the_rn2483_delivers_all_96_readings(tmp_path, how):
    from conftest import nodectl
    # Seed 1: showers but no heavy rain, so no alarm uplinks come between the slots.
    r = nodectl("simulate", "--kind", "climate", "--hours", 24, "--seed", 1, *how, "--json",
                "--out", tmp_path)
    uplinks = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    # A frame may carry several readings (and the node record): count the readings.
    seqs = [x["seq"] for u in uplinks for x in u["readings"] if x.get("kind") != "node"]
    assert sorted(seqs) == list(range(96))
    assert all("error" not in u["decoded"] for u in uplinks)
    assert " 0 decode errors" in r.stderr
