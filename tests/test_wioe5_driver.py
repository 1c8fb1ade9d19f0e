"""The firmware's Wio-E5 driver (firmware/modems/wioe5.py) on the real MicroPython
interpreter, through the simulator's machine.UART at 9600 baud, against the Wio-E5 model
(simulators/modems/wioe5.py) and the shared network model; and the 24-hour climate day
on `--modem wioe5`."""
from __future__ import annotations

import json
import re

import pytest

from host_tools import boards
from simulators.clock import Clock
from simulators.interpreter import FIRMWARE
from simulators.modems.wioe5 import WioE5
from simulators.network import Network, eu868
from simulators.node import SimNode

DEV_EUI = bytes.fromhex("2CF7F12024900138")
JOIN_EUI = bytes.fromhex("70B3D57ED0000001")
APP_KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")

HARNESS = r"""
import json, machine, time
import modems
from modems.wioe5 import WioE5
uart = machine.UART(0, baudrate=9600, tx=machine.Pin(0), rx=machine.Pin(1), timeout=100,
                    timeout_char=10)
m = WioE5(uart)
DEV_EUI = bytes.fromhex("%s")
JOIN_EUI = bytes.fromhex("%s")
APP_KEY = bytes.fromhex("%s")
NAMES = {}
for _n in ("SENT", "NOT_ACKED", "BUSY", "NOT_JOINED", "TOO_BIG", "RESTRICTED", "TIMEOUT",
           "NO_ANSWER", "REFUSED"):
    NAMES[getattr(modems, _n)] = _n

def attempt(fn, *args, **kw):
    try:
        r = fn(*args, **kw)
    except modems.ModemError as e:
        return ["error", NAMES[e.reason], e.detail, e.wait_ms]
    return NAMES[r] if fn.__name__ == "send" else r

def show(*values):
    print("OUT " + json.dumps(values))

def ms():
    return time.ticks_ms()

def join_and_send():       # join at DR5 and send 0x01: show(join, send)
    m.configure(DEV_EUI, JOIN_EUI, APP_KEY, dr=5)
    j = m.join()
    time.sleep_ms(7000)       # the join request's duty-cycle off-time at DR5
    show(j, attempt(m.send, 2, b"\x01"))
""" % (DEV_EUI.hex(), JOIN_EUI.hex(), APP_KEY.hex())


class Bench:
    """A Pico with a Wio-E5 on UART0: each `run` is one wake of a driver script."""

    def __init__(self, tmp_path, seed=1):
        self.board = boards.load("pico-wioe5")
        self.clock = Clock()
        self.net = Network(seed=seed)
        self.node = SimNode("n", self.board, tmp_path / "n", self.clock, self.net, DEV_EUI)
        self.node.rom = FIRMWARE                 # the firmware folder, as a ROMFS would be
        self.node.flash.erase_all()
        self.modem: WioE5 = self.node.modem
        self.link = self.node.uarts[0]
        self.sent = []                           # lines the driver wrote, in order
        self._installed = False
        self._tap()

    def _tap(self):
        receive = self.modem.receive
        buf = bytearray()

        def tapped(data):
            buf.extend(data)
            while b"\n" in buf:
                line, _, rest = bytes(buf).partition(b"\n")
                self.sent.append(line.replace(b"\xff", b"").strip().decode("latin-1"))
                buf[:] = rest
            receive(data)
        self.modem.receive = tapped

    def run(self, body: str) -> list:
        self.node.install({"main.py": (HARNESS + body + "\nmachine.deepsleep(1000)\n")
                           .encode()}, keep=self._installed)
        self._installed = True
        wake = self.node.wake()
        out = [json.loads(line[4:]) for line in wake.console.splitlines()
               if line.startswith("OUT ")]
        assert wake.ended == "deepsleep", wake.console
        self.console = wake.console
        return out

    def provision(self):
        """A configured, joined module, asleep as a node leaves it."""
        out = self.run("""
m.wake()
m.configure(DEV_EUI, JOIN_EUI, APP_KEY, dr=5)
show(m.join())
m.sleep(900000)
""")
        assert out == [[True]]
        self.settle()

    def settle(self, seconds=300):
        self.clock.advance_to(self.clock.now_us + int(seconds * 1e6))


@pytest.fixture
def bench(tmp_path):
    return Bench(tmp_path)


# --- configure and join ------------------------------------------------------------------
def test_first_configure_sets_otaa_keys_and_joins_with_the_exact_commands(bench):
    out = bench.run("""
m.wake()
show(m.joined())
m.configure(DEV_EUI, JOIN_EUI, APP_KEY, dr=5)
show(m.join(), m.joined(), m.data_rate(), m.max_payload())
""")
    assert out == [[False], [True, True, 5, 242]]
    # Factory module: ABP mode, no AppEUI, no key marker. The AppKey's check value (AES of
    # a zero block, FIPS-197's key: 7DF76B) goes into the user EEPROM beside the key.
    assert bench.sent == [
        "AT", "AT+MODE", "AT+EEPROM=03", "AT+MODE=LWOTAA", "AT+DR=SCHEME", "AT+ID=DevEui",
        "AT+ID=AppEui", 'AT+ID=AppEui,"70B3D57ED0000001"',
        "AT+EEPROM=00", "AT+EEPROM=01", "AT+EEPROM=02",
        'AT+KEY=APPKEY,"2B7E151628AED2A6ABF7158809CF4F3C"',
        "AT+EEPROM=00,7D", "AT+EEPROM=01,F7", "AT+EEPROM=02,6B",
        "AT+RETRY", "AT+ADR", "AT+DR", "AT+DR=DR5", "AT+DR",
        "AT+JOIN=FORCE", "AT+EEPROM=03", "AT+EEPROM=03,01", "AT+DR", "AT+LW=LEN"]
    assert bench.modem.nvm.mode == "LWOTAA" and bench.modem.nvm.app_key == APP_KEY
    assert [(j.dev_nonce, j.accepted) for j in bench.net.joins] == [(1, True)]
    assert APP_KEY.hex().upper() not in bench.console.upper()


def test_a_second_configure_writes_nothing_and_join_costs_no_airtime(bench):
    bench.provision()
    bench.sent.clear()
    out = bench.run("""
m.wake()
m.configure(DEV_EUI, JOIN_EUI, APP_KEY, dr=5)
show(m.join())
""")
    assert out == [[True]]
    assert [c for c in bench.sent if "=" in c and "EEPROM" not in c and c != "AT+DR=SCHEME"
            and not c.startswith("AT+ID=")] == []
    assert "AT+JOIN" in bench.sent and len(bench.net.joins) == 1     # "Joined already"


def test_a_new_app_key_is_written_and_forces_a_rejoin(bench):
    bench.provision()
    bench.sent.clear()
    out = bench.run("""
m.wake()
m.configure(DEV_EUI, JOIN_EUI, bytes(range(16)))
show(m.join())
""")
    assert out == [[True]]
    assert 'AT+KEY=APPKEY,"000102030405060708090A0B0C0D0E0F"' in bench.sent
    assert "AT+JOIN=FORCE" in bench.sent
    assert [j.dev_nonce for j in bench.net.joins] == [1, 2]


def test_a_module_woken_from_our_sleep_with_its_session_counts_as_joined(bench):
    bench.provision()
    bench.sent.clear()
    out = bench.run("""
m.wake()
show(m.joined())
""")
    assert out == [[True]]
    # The first AT only wakes it; one EEPROM read answers: no configure, no join.
    assert bench.sent == ["AT", "AT", "AT+EEPROM=03"]


def test_a_module_that_restarted_while_the_node_slept_is_not_taken_as_joined(bench):
    bench.provision()
    bench.modem.power_cut()
    bench.settle(2)
    out = bench.run("""
m.wake()
show(m.joined())
join_and_send()
""")
    assert out == [[False], [True, "SENT"]]
    assert [j.dev_nonce for j in bench.net.joins] == [1, 2]      # DevNonce kept in flash


def test_join_failing_returns_false_after_the_join_windows(bench):
    bench.net.available = False
    out = bench.run("""
m.wake()
m.configure(DEV_EUI, JOIN_EUI, APP_KEY, dr=0)
t = ms()
show(m.join(), m.joined(), ms() - t)
""")
    (joined, known, took), = out
    assert (joined, known) == (False, False)
    toa = eu868.airtime_us(0, eu868.JOIN_REQUEST_PHY_LEN) // 1000
    assert toa + 6000 <= took <= toa + 6000 + 600


# --- send -------------------------------------------------------------------------------
def test_unconfirmed_send_sets_the_port_once_and_goes_out_on_it(bench):
    bench.provision()
    out = bench.run("""
m.wake()
show(attempt(m.send, 2, b"\\x01\\x02"))
time.sleep_ms(5000)       # the first frame's off-time
show(attempt(m.send, 2, b"\\x03"))
""")
    assert out == [["SENT"], ["SENT"]]
    assert bench.sent.count("AT+PORT=2") == 1
    assert 'AT+MSGHEX="0102"' in bench.sent
    assert [(u.port, u.payload, u.fcnt) for u in bench.net.uplinks] == [
        (2, b"\x01\x02", 0), (2, b"\x03", 1)]


def test_confirmed_send_is_acked_or_reports_no_ack(bench):
    bench.provision()
    out = bench.run("""
m.wake()
show(attempt(m.send, 2, b"\\x01", True))
""")
    assert out == [["SENT"]]
    assert 'AT+CMSGHEX="01"' in bench.sent and bench.net.uplinks[-1].confirmed
    bench.settle()
    bench.net.available = False
    out = bench.run("""
m.wake()
show(attempt(m.send, 2, b"\\x02", True))
""")
    assert out == [["NOT_ACKED"]]
    assert bench.net.lost[-1].payload == b"\x02"


def test_a_downlink_is_delivered_with_its_port(bench):
    bench.provision()
    bench.net.queue_downlink(DEV_EUI, 3, b"\x00\x00\x07\x10")
    out = bench.run("""
m.wake()
show(attempt(m.send, 2, b"\\x01"), m.downlinks[0][0], m.downlinks[0][1].hex())
""")
    assert out == [["SENT", 3, "00000710"]]


def test_a_duty_cycle_block_reports_the_modules_wait_and_sends_nothing(bench):
    bench.provision()
    bench.modem.nvm.dr = bench.modem.mac.dr = 0
    out = bench.run("""
m.wake()
show(attempt(m.send, 2, b"\\x01"))
show(attempt(m.send, 2, b"\\x02"))
""")
    (first,), (second,) = out
    assert first == "SENT"
    error, reason, detail, wait_ms = second
    assert (error, reason, detail) == ("error", "RESTRICTED", "AT+MSGHEX")
    toa = eu868.airtime_us(0, eu868.phy_len_uplink(1))
    assert 90 * toa / 1000 < wait_ms <= 99 * toa / 1000
    assert [u.payload for u in bench.net.uplinks] == [b"\x01"]


def test_oversize_at_dr0_is_refused_before_anything_is_transmitted(bench):
    bench.provision()
    bench.modem.nvm.dr = bench.modem.mac.dr = 0
    out = bench.run("""
m.wake()
show(m.max_payload(), attempt(m.send, 2, bytes(52)))
""")
    assert out == [[51, ["error", "TOO_BIG", "AT+MSGHEX 52 bytes", 0]]]
    assert bench.net.uplinks == [] and bench.net.lost == []


# --- trouble on the line ------------------------------------------------------------------
def test_a_module_restart_mid_send_is_a_timeout_then_a_counted_reset(bench):
    bench.provision()
    # The module restarts while the frame is on air: no Done ever comes.
    orig = bench.modem.receive

    def receive(data):
        orig(data)
        if b"MSGHEX" in data:
            bench.modem.receive = orig
            bench.clock.call_later(10_000, bench.modem.power_cut, 20_000)   # on air
    bench.modem.receive = receive
    out = bench.run("""
m.wake()
m.joined()
show(attempt(m.send, 2, b"\\x01", timeout_ms=8000))
show(attempt(m.send, 2, b"\\x01"), m.resets)
""")
    assert out == [[["error", "TIMEOUT", "no Done to AT+MSGHEX", 0]],
                   [["error", "NOT_JOINED", "AT+MSGHEX", 0], 1]]
    assert bench.net.uplinks == []              # the frame died on air with the module
    out = bench.run("""
m.wake()
show(m.joined())
join_and_send()
""")
    assert out == [[False], [True, "SENT"]]


def test_a_silent_module_is_no_answer(bench):
    bench.modem.receive = lambda data: None
    out = bench.run("""
t = ms()
show(attempt(m.wake))
""")
    assert out == [[["error", "NO_ANSWER", "no answer to AT", 0]]]


def test_garbage_lines_between_replies_are_ignored(bench):
    bench.provision()
    out_ = bench.modem._out

    def noisy(text):
        out_("#%&*12:;\r\n+X@!\x80\r\n")
        out_(text)
    bench.modem._out = noisy
    out = bench.run("""
m.wake()
show(m.joined(), m.data_rate(), attempt(m.send, 2, b"\\x01"), m._at.strays > 0)
""")
    assert out == [[True, 5, "SENT", True]]


def test_a_module_at_another_baud_rate_is_found_and_set_back_for_its_restart(bench):
    bench.modem.nvm.baud = 115200
    bench.modem.power_cut()                     # it comes back at 115200
    bench.settle(2)
    assert bench.link.device_format[0] == 115200
    out = bench.run("""
m.wake()
join_and_send()
""")
    assert out == [[True, "SENT"]]
    assert "AT+UART=BR, 9600" in bench.sent and bench.modem.nvm.baud == 9600
    bench.modem.power_cut()
    bench.settle(2)
    assert bench.link.device_format[0] == 9600


def test_sleep_then_wake_swallows_the_waking_line_and_answers_after_wakeup(bench):
    out = bench.run("""
m.wake()
m.sleep(60000)
""")
    assert bench.modem.asleep
    out = bench.run("""
m.wake()
show(m._woke, m._at.strays)
""")
    assert out == [[True, 0]]
    assert not bench.modem.asleep
    assert bench.sent[-3:] == ["AT+LOWPOWER", "AT", "AT"]   # the first AT woke it, unheard


def test_no_key_appears_in_errors_or_on_the_console(bench):
    bench.modem.receive = lambda data: None
    out = bench.run("""
show(attempt(m.configure, DEV_EUI, JOIN_EUI, APP_KEY))
""")
    assert out == [[["error", "TIMEOUT", "AT+MODE", 0]]]
    assert APP_KEY.hex() not in bench.console.lower()


# --- a day on the Wio-E5, end to end ----------------------------------------------------------
@pytest.mark.parametrize("modem", ["wioe5"])
def test_a_climate_day_on_the_modem_delivers_all_96_readings(tmp_path, modem):
    from conftest import nodectl
    r = nodectl("simulate", "--kind", "climate", "--hours", 24, "--modem", modem, "--json",
                "--out", tmp_path / "run")
    uplinks = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    # A frame may carry several readings (and the node record): count the readings.
    seqs = [x["seq"] for u in uplinks for x in u["readings"] if x.get("kind") != "node"]
    assert sorted(set(seqs)) == list(range(96))
    assert all("error" not in u["decoded"] for u in uplinks)
    assert re.search(r"^\d+ uplinks decoded from \d+ wakes .*; 0 decode errors$", r.stderr, re.M)
