"""The firmware's RAK3172 driver, run on the real MicroPython interpreter against a scripted
UART (replies with delays on a fake millisecond clock)."""
import random
import textwrap

import pytest

from fake_ticks import run_on_fake_ticks
from simulators.bus.uart import UartLink
from simulators.clock import Clock
from simulators.modems.rak3172 import Rak3172
from simulators.network import Network

# SCRIPT maps a command (as written, without CR LF) to a list of replies for its successive
# calls (the last one repeats); a reply is a list of (delay_ms, bytes). Unscripted: "OK".
HARNESS = r"""
import time

class FakeUart:
    def __init__(self, script, timeout=50):
        self.script = script
        self.timeout = timeout
        self.rx = []
        self.written = []

    def feed(self, delay_ms, data):
        at = time.ticks_ms() + delay_ms
        i = len(self.rx)
        while i and self.rx[i - 1][0] > at:
            i -= 1
        self.rx.insert(i, [at, data])

    def write(self, data):
        self.written.append(bytes(data))
        replies = self.script.get(bytes(data).decode().strip(), [[(0, b"OK\r\n")]])
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        for delay, chunk in reply:
            self.feed(delay, chunk)
        return len(data)

    def any(self):
        now = time.ticks_ms()
        return sum(len(d) for t, d in self.rx if t <= now)

    def readline(self):
        if not self.rx or self.rx[0][0] > time.ticks_ms() + self.timeout:
            time.sleep_ms(self.timeout)
            return None
        t, d = self.rx[0]
        if t > time.ticks_ms():
            time.sleep_ms(t - time.ticks_ms())
        i = d.find(b"\n")
        if 0 <= i < len(d) - 1:
            self.rx[0][1] = d[i + 1:]
            return d[:i + 1]
        self.rx.pop(0)
        return d

    def sent(self):
        return [w.decode().strip() for w in self.written]

from modems import rak3172
from modems.rak3172 import RAK3172, ModemError
NAMES = {}
for _n in ("SENT", "NOT_ACKED", "BUSY", "NOT_JOINED", "TOO_BIG", "RESTRICTED", "TIMEOUT",
           "NO_ANSWER", "REFUSED"):
    NAMES[getattr(rak3172, _n)] = _n

def attempt(fn, *args, **kw):
    try:
        r = fn(*args, **kw)
    except ModemError as e:
        return ("error", NAMES[e.reason], e.wait_ms)
    return NAMES[r] if fn.__name__ == "send" else r

uart = FakeUart(SCRIPT)
m = RAK3172(uart)
"""

DR0 = {"AT+DR=?": [[(0, b"AT+DR=0\r\nOK\r\n")]]}


def run_driver(tmp_path, script, body):
    """Run `body` after the harness; return what it printed, one item per line."""
    code = f"SCRIPT = {script!r}\n" + HARNESS + textwrap.dedent(body)
    return run_on_fake_ticks(tmp_path, code)


# --- join ----------------------------------------------------------------------------
def test_join_success_waits_for_the_joined_event(tmp_path):
    script = {"AT+JOIN=1:0:8:0": [[(0, b"OK\r\n"), (6000, b"+EVT:JOINED\r\n")]]}
    out = run_driver(tmp_path, script, """
        print(m.join())
        print(time.ticks_ms())
        print(uart.sent())
    """)
    assert out[0] == "True"
    assert 6000 <= int(out[1]) < 6100
    assert out[2] == "['AT+JOIN=1:0:8:0']"


@pytest.mark.parametrize("event", [b"+EVT:JOIN_FAILED_RX_TIMEOUT\r\n", b"+EVT:JOIN_FAILED_7\r\n",
                                   b"+EVT:JOIN FAILED\r\n"])
def test_join_failure_event_in_both_spellings_returns_false(tmp_path, event):
    script = {"AT+JOIN=1:0:8:0": [[(0, b"OK\r\n"), (7500, event)]]}
    assert run_driver(tmp_path, script, "print(m.join())") == ["False"]


def test_join_duty_cycle_block_is_an_error_with_the_wait(tmp_path):
    script = {"AT+JOIN=1:0:8:0": [[(0, b"Restricted_Wait_95200_ms\r\nAT_BUSY_ERROR\r\n")]]}
    assert run_driver(tmp_path, script, "print(attempt(m.join))") == [
        "('error', 'RESTRICTED', 95200)"]


def test_join_without_result_times_out(tmp_path):
    script = {"AT+JOIN=1:0:8:0": [[(0, b"OK\r\n")]]}
    assert run_driver(tmp_path, script, "print(attempt(m.join, 9000))") == [
        "('error', 'TIMEOUT', 0)"]


# --- send ----------------------------------------------------------------------------
def test_send_returns_sent_on_tx_done(tmp_path):
    script = dict(DR0, **{"AT+SEND=2:0102": [[(0, b"OK\r\n"), (3500, b"+EVT:TX_DONE\r\n")]]})
    out = run_driver(tmp_path, script, """
        print(attempt(m.send, 2, b"\\x01\\x02"))
        print(uart.sent())
        print(time.ticks_ms() >= 3500)
    """)
    assert out == ["SENT", "['AT+DR=?', 'AT+CFM=0', 'AT+SEND=2:0102']", "True"]


def test_send_parses_the_restricted_wait(tmp_path):
    script = dict(DR0, **{"AT+SEND=2:01": [
        [(0, b"Restricted_Wait_140175_ms\r\nAT_BUSY_ERROR\r\n")]]})
    assert run_driver(tmp_path, script, 'print(attempt(m.send, 2, b"\\x01"))') == [
        "('error', 'RESTRICTED', 140175)"]


@pytest.mark.parametrize("status, reason", [(b"AT_NO_NETWORK_JOINED", "NOT_JOINED"),
                                            (b"AT_BUSY_ERROR", "BUSY"),
                                            (b"AT_ERROR", "REFUSED")])
def test_send_refusals_become_reasons(tmp_path, status, reason):
    script = dict(DR0, **{"AT+SEND=2:01": [[(0, status + b"\r\n")]]})
    assert run_driver(tmp_path, script, 'print(attempt(m.send, 2, b"\\x01"))') == [
        f"('error', '{reason}', 0)"]


def test_payload_too_big_for_the_data_rate_is_refused_before_sending(tmp_path):
    out = run_driver(tmp_path, DR0, """
        print(attempt(m.send, 2, bytes(52)))
        print(attempt(m.send, 2, bytes(51)))
        print([c[:10] for c in uart.sent()])
    """)
    assert out[0] == "('error', 'TOO_BIG', 0)"
    assert out[2] == "['AT+DR=?', 'AT+DR=?', 'AT+CFM=0', 'AT+SEND=2:']"


def test_modem_side_param_error_waits_out_the_empty_uplink(tmp_path):
    script = dict(DR0, **{
        "AT+SEND=2:01": [[(0, b"AT_PARAM_ERROR\r\n"), (2500, b"+EVT:TX_DONE\r\n")]],
        "AT+SEND=2:02": [[(0, b"OK\r\n"), (3000, b"+EVT:TX_DONE\r\n")]],
    })
    out = run_driver(tmp_path, script, """
        print(attempt(m.send, 2, b"\\x01"))
        t = time.ticks_ms()
        print(attempt(m.send, 2, b"\\x02"))
        print(time.ticks_ms() - t >= 3000)
    """)
    assert out == ["('error', 'TOO_BIG', 0)", "SENT", "True"]


def test_a_result_that_came_before_the_ok_belongs_to_an_older_uplink(tmp_path):
    script = dict(DR0, **{"AT+SEND=2:01": [[(0, b"+EVT:TX_DONE\r\n"), (1, b"OK\r\n"),
                                            (3000, b"+EVT:TX_DONE\r\n")]]})
    out = run_driver(tmp_path, script, """
        print(attempt(m.send, 2, b"\\x01"))
        print(time.ticks_ms() >= 3000)
    """)
    assert out == ["SENT", "True"]


@pytest.mark.parametrize("event, result", [
    (b"+EVT:SEND_CONFIRMED_OK\r\n", "SENT"),
    (b"+EVT:SEND_CONFIRMED_FAILED(4)\r\n", "NOT_ACKED"),
    (b"+EVT:SEND CONFIRMED OK\r\n", "SENT"),
    (b"+EVT:SEND CONFIRMED FAILED\r\n", "NOT_ACKED"),
])
def test_confirmed_results_in_both_spellings(tmp_path, event, result):
    script = dict(DR0, **{"AT+SEND=9:AB": [[(0, b"OK\r\n"), (2500, event)]]})
    out = run_driver(tmp_path, script, """
        print(attempt(m.send, 9, b"\\xab", confirmed=True))
        print(uart.sent()[1])
    """)
    assert out == [result, "AT+CFM=1"]


def test_send_without_result_times_out(tmp_path):
    script = dict(DR0, **{"AT+SEND=2:01": [[(0, b"OK\r\n")]]})
    assert run_driver(tmp_path, script, 'print(attempt(m.send, 2, b"\\x01", timeout_ms=8000))') \
        == ["('error', 'TIMEOUT', 0)"]


# --- downlinks, noise, wake ----------------------------------------------------------------
@pytest.mark.parametrize("events", [
    [(2000, b"+EVT:TX_DONE\r\n"), (2000, b"+EVT:RX_1:-28:8:UNICAST:2:00000710\r\n")],
    [(2000, b"+EVT:RX_1:-28:8:UNICAST:2:00000710\r\n"), (2001, b"+EVT:TX_DONE\r\n")],
])
def test_downlink_event_is_captured_in_either_order(tmp_path, events):
    script = dict(DR0, **{"AT+SEND=2:01": [[(0, b"OK\r\n")] + events]})
    out = run_driver(tmp_path, script, """
        print(attempt(m.send, 2, b"\\x01"))
        print(m.downlinks)
    """)
    assert out == ["SENT", "[(2, b'\\x00\\x00\\x07\\x10')]"]


def test_malformed_downlink_is_counted_not_kept(tmp_path):
    script = dict(DR0, **{"AT+SEND=2:01": [[(0, b"OK\r\n"), (2000, b"+EVT:TX_DONE\r\n"),
                                            (2000, b"+EVT:RX_1:-28:8:UNICAST:2:0G\r\n")]]})
    out = run_driver(tmp_path, script, """
        print(attempt(m.send, 2, b"\\x01"))
        print(m.downlinks, m.bad_events)
    """)
    assert out == ["SENT", "[] 1"]


def test_garbage_and_blank_lines_are_ignored(tmp_path):
    script = {
        "AT+NJS=?": [[(0, b"\r\n\xff\xfe\x00\r\n"), (1, b"line noise\r\n\r\nAT+NJS=1\r\n"),
                      (2, b"\r\n\xc1OK\r\n")]],
        "AT+JOIN=1:0:8:0": [[(0, b"\r\n\r\nOK\r\n"), (100, b"\x00\x9c garbage\r\n"),
                             (200, b"AT_COMMAND_NOT_FOUND\r\n"), (400, b"Restricted_W"),
                             (5000, b"\r\n+EVT:JOINED\r\n")]],
    }
    out = run_driver(tmp_path, script, """
        print(m.joined())
        print(m.join())
    """)
    assert out == ["True", "True"]


def test_wake_distrusts_an_ok_followed_by_a_stray_status(tmp_path):
    # After AT+SLEEP the modem's OK comes at wake-up; the waking byte was misread.
    script = {"AT": [[(0, b"OK\r\n"), (2, b"AT_COMMAND_NOT_FOUND\r\n")], [(0, b"OK\r\n")]]}
    out = run_driver(tmp_path, script, """
        m.sleep(60000)
        m.wake()
        print(uart.sent())
    """)
    assert out == ["['AT+SLEEP=60000', 'AT', 'AT']"]


def test_wake_retries_while_the_modem_boots_and_notes_the_reset(tmp_path):
    script = {"AT": [[], [(0, b"OK\r\n")]]}
    out = run_driver(tmp_path, script, """
        uart.feed(300, b"\\r\\nCurrent Work Mode: LoRaWAN.\\r\\n")
        m.wake()
        print(len(uart.sent()), m.resets)
    """)
    assert out == ["2 1"]


def test_wake_gives_up_with_no_answer(tmp_path):
    script = {"AT": [[]]}
    assert run_driver(tmp_path, script, "print(attempt(m.wake, 3))") == [
        "('error', 'NO_ANSWER', 0)"]


def test_configure_writes_only_what_differs(tmp_path):
    key = bytes(range(16))
    script = {
        "AT+NWM=?": [[(0, b"AT+NWM=1\r\nOK\r\n")]],
        "AT+BAND=?": [[(0, b"AT+BAND=4\r\nOK\r\n")]],
        "AT+NJM=?": [[(0, b"AT+NJM=1\r\nOK\r\n")]],
        "AT+DEVEUI=?": [[(0, b"AT+DEVEUI=AC1F09FFFE000001\r\nOK\r\n")]],
        "AT+APPEUI=?": [[(0, b"AT+APPEUI=0000000000000000\r\nOK\r\n")]],
        "AT+APPKEY=?": [[(0, b"AT+APPKEY=" + key.hex().upper().encode() + b"\r\nOK\r\n")]],
        "AT+CFM=?": [[(0, b"AT+CFM=0\r\nOK\r\n")]],
        "AT+DR=?": [[(0, b"AT+DR=0\r\nOK\r\n")]],
        "AT+ADR=?": [[(0, b"AT+ADR=1\r\nOK\r\n")]],
    }
    out = run_driver(tmp_path, script, f"""
        m.configure(bytes.fromhex("AC1F09FFFE000001"), bytes.fromhex("70B3D57ED0000001"),
                    {key!r}, dr=3, adr=False)
        print([c for c in uart.sent() if not c.endswith("=?")])
    """)
    assert out == ["['AT+APPEUI=70B3D57ED0000001', 'AT+DR=3', 'AT+ADR=0']"]


# --- against the model's own words --------------------------------------------------------
def record_replies(commands, dr=5, pause_s=10):
    """Drive the RUI3 model with `commands`; return its replies as a driver-test SCRIPT."""
    clock = Clock()
    link = UartLink(clock, Rak3172.BAUDRATE)
    modem = Rak3172(clock, Network(seed=3), bytes.fromhex("AC1F09FFFE000001"),
                    rng=random.Random(3))
    modem.nvm.dr = modem.dr = dr
    link.attach(modem)
    script = {}
    for cmd in commands:
        t0 = clock.now_us
        link.node_write(cmd.encode() + b"\r\n")
        reply = []
        while (nxt := clock.next_event_us()) is not None and nxt <= t0 + pause_s * 1_000_000:
            clock.advance_to(nxt)
            if link.node_available():
                reply.append((-(-(clock.now_us - t0) // 1000), link.node_read(1 << 16)))
        clock.advance_to(t0 + pause_s * 1_000_000)
        script.setdefault(cmd, []).append(reply)
    return script


def test_driver_joins_and_sends_on_the_models_recorded_replies(tmp_path):
    script = record_replies(["AT", "AT+NJS=?", "AT+JOIN=1:0:8:0", "AT+NJS=?", "AT+DR=?",
                             "AT+CFM=0", "AT+SEND=2:0102"])
    assert script["AT+JOIN=1:0:8:0"][0][-1][1] == b"+EVT:JOINED\r\n"
    out = run_driver(tmp_path, script, """
        m.wake()
        print(m.joined(), m.join(), m.joined())
        print(attempt(m.send, 2, b"\\x01\\x02"))
        print(m._at.strays, m._at.events)
    """)
    assert out == ["False True True", "SENT", "0 []"]
