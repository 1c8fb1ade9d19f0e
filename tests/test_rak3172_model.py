"""The RAK3172 (RUI3) model, driven byte by byte through a UartLink on the virtual clock."""
import pytest

from modem_terminal import ModemTerminal
from simulators.bus.uart import char_time_us
from simulators.modems.rak3172 import BOOT_DELAY_US, Rak3172
from simulators.network import eu868

DEV_EUI = bytes.fromhex("AC1F09FFFE000001")
APP_EUI = "70B3D57ED0000001"
APP_KEY = "2B7E151628AED2A6ABF7158809CF4F3C"
CHAR_US = char_time_us(115200)
JOIN_DR0_TOA = eu868.airtime_us(0, eu868.JOIN_REQUEST_PHY_LEN)
RX_WINDOW_DR0 = 8 * 4096 * 8          # 8 symbols at SF12/125 kHz, in us


class Term(ModemTerminal):
    """The node's side of the wire, with RUI3's join."""

    def __init__(self):
        super().__init__(Rak3172, DEV_EUI, reply_seconds=0.1)

    def join(self, dr=None):
        if dr is not None:
            assert self.ask(f"AT+DR={dr}\r\n") == b"OK\r\n"
        assert self.ask("AT+JOIN\r\n") == b"OK\r\n"
        assert self.wait_for("+EVT:JOINED\r\n", 10) is not None

    def settle_duty_cycle(self):
        self.run(200)
        self.take()


@pytest.fixture
def term():
    return Term()


# --- framing and parsing -------------------------------------------------------------
def test_ok_is_the_status_word_and_crlf(term):
    assert term.ask("AT\r\n") == b"OK\r\n"


def test_query_prints_name_value_then_ok(term):
    assert term.ask("AT+NJS=?\r\n") == b"AT+NJS=0\r\nOK\r\n"
    assert term.ask("AT+DEVEUI=?\r\n") == b"AT+DEVEUI=AC1F09FFFE000001\r\nOK\r\n"
    assert term.ask("AT+BAND=?\r\n") == b"AT+BAND=4\r\nOK\r\n"
    assert term.ask("AT+VER=?\r\n") == b"AT+VER=RUI_5.0.0_RAK3172-E\r\nOK\r\n"


@pytest.mark.parametrize("line", [
    "AT+DR=9", "AT+DR=", "AT+DR=x", "AT+DEVEUI=123", "AT+APPKEY=" + "G" * 32,
    "AT+SEND=0:00", "AT+SEND=224:00", "AT+SEND=2:0", "AT+SEND=2:", "AT+SEND=2",
    "AT+SEND=2:" + "00" * 251, "AT+NJS=1", "AT+JOIN=1:0:6:0", "AT=1", "AT+SLEEP=0",
])
def test_malformed_parameters_give_param_error(term, line):
    assert term.ask(line + "\r\n") == b"AT_PARAM_ERROR\r\n"


def test_unknown_command_is_not_found(term):
    assert term.ask("AT+FOO=1\r\n") == b"AT_COMMAND_NOT_FOUND\r\n"
    assert term.ask("HELLO\r\n") == b"AT_COMMAND_NOT_FOUND\r\n"


def test_command_names_are_case_insensitive(term):
    assert term.ask("at+njs=?\r\n") == b"AT+NJS=0\r\nOK\r\n"
    assert term.ask("At+DeVeUi=?\r\n") == b"AT+DEVEUI=AC1F09FFFE000001\r\nOK\r\n"


def test_cr_alone_lf_alone_and_crlf_each_end_one_command(term):
    assert term.ask("AT\r") == b"OK\r\n"
    assert term.ask("AT\n") == b"OK\r\n"
    assert term.ask("AT\r\n") == b"OK\r\n"
    assert term.ask("\r\n\r\n\n") == b""


def test_backspace_edits_the_line(term):
    assert term.ask("AX\bT\r\n") == b"\b \bOK\r\n"


def test_question_mark_after_the_name_prints_help(term):
    assert term.ask("AT+NJS?\r\n") == (
        b"AT+NJS,R: get the join status (0 = not joined, 1 = joined)\r\nOK\r\n")


def test_app_key_is_written_and_read_back_as_rui3_does(term):
    assert term.ask(f"AT+APPKEY={APP_KEY.lower()}\r\n") == b"OK\r\n"
    assert term.ask("AT+APPKEY=?\r\n") == f"AT+APPKEY={APP_KEY}\r\nOK\r\n".encode()


def test_network_mode_write_answers_ok_then_reboots(term):
    assert term.ask("AT+NWM=1\r\n", seconds=0.01) == b"OK"
    assert term.wait_for("Current Work Mode: LoRaWAN.\r\n", 2) is not None
    assert term.seen == b"\r\nCurrent Work Mode: LoRaWAN.\r\n"


# --- join --------------------------------------------------------------------------
def test_join_answers_ok_at_once_and_joined_after_the_accept_delay(term):
    t_cmd = term.type("AT+JOIN\r")
    term.run(0.01)
    assert term.take() == b"OK\r\n"
    accept = eu868.airtime_us(0, eu868.JOIN_ACCEPT_PHY_LEN, uplink=False)
    expected = t_cmd + JOIN_DR0_TOA + 5_000_000 + accept + len(b"+EVT:JOINED\r\n") * CHAR_US
    t = term.wait_for("+EVT:JOINED\r\n", 10)
    assert t == pytest.approx(expected, abs=2 * CHAR_US)
    assert term.seen == b"+EVT:JOINED\r\n"
    assert term.ask("AT+NJS=?\r\n") == b"AT+NJS=1\r\nOK\r\n"


def test_join_without_network_fails_after_the_second_window(term):
    term.net.available = False
    t_cmd = term.type("AT+JOIN=1:0:8:0\r\n")
    term.run(0.01)
    assert term.take() == b"OK\r\n"
    t = term.wait_for("+EVT:JOIN_FAILED_RX_TIMEOUT\r\n", 10)
    assert t == pytest.approx(t_cmd + JOIN_DR0_TOA + 6_000_000 + RX_WINDOW_DR0, abs=5_000)
    assert term.ask("AT+NJS=?\r\n") == b"AT+NJS=0\r\nOK\r\n"


def test_join_retries_print_one_failure_per_attempt(term):
    term.net.available = False
    assert term.ask("AT+DR=5\r\n") == b"OK\r\n"              # SF7: the band is free again in 6 s
    assert term.ask("AT+JOIN=1:0:10:2\r\n") == b"OK\r\n"
    term.run(60)
    assert term.take() == b"+EVT:JOIN_FAILED_RX_TIMEOUT\r\n" * 3
    assert [(j.dev_nonce, j.accepted) for j in term.net.joins] == [(1, False), (2, False),
                                                                   (3, False)]


def test_join_retry_blocked_by_duty_cycle_prints_the_wait(term):
    term.net.available = False
    assert term.ask("AT+JOIN=1:0:10:1\r\n") == b"OK\r\n"      # DR0: band off for ~147 s
    term.run(60)
    out = term.take()
    assert out.startswith(b"+EVT:JOIN_FAILED_RX_TIMEOUT\r\nRestricted_Wait_")
    assert len(term.net.joins) == 1


def test_join_nonce_is_fresh_for_every_accept(term):
    term.join()
    term.settle_duty_cycle()
    term.join()
    accepted = [j for j in term.net.joins if j.accepted]
    assert len(accepted) == 2
    nonces = [term.net.sessions["AC1F09FFFE000001"].join_nonce, term.modem.nvm.join_nonce]
    assert nonces[0] == nonces[1]
    first = term.modem.session.join_nonce
    term.settle_duty_cycle()
    term.join()
    assert term.modem.session.join_nonce != first


def test_repeated_join_nonce_is_rejected_like_rui3(term):
    term.join()
    term.settle_duty_cycle()
    term.net._join_nonce -= 1                # a network that replays its last JoinNonce
    assert term.ask("AT+JOIN\r\n") == b"OK\r\n"
    assert term.wait_for("+EVT:JOIN_FAILED_7\r\n", 10) is not None
    assert not term.modem.joined


def test_dev_nonce_increases_across_atz_and_power_cut(term):
    term.join()
    assert term.ask("ATZ\r\n", seconds=1) == b"\r\nCurrent Work Mode: LoRaWAN.\r\n"
    term.settle_duty_cycle()
    term.join()
    term.modem.power_cut()
    term.run(1)
    term.settle_duty_cycle()
    term.join()
    assert [j.dev_nonce for j in term.net.joins] == [1, 2, 3]
    assert all(j.accepted for j in term.net.joins)


def test_atz_prints_the_banner_after_the_boot_delay_and_loses_the_session(term):
    assert term.ask(f"AT+APPKEY={APP_KEY}\r\n") == b"OK\r\n"
    term.join()
    assert term.ask("ATZ\r\n", seconds=BOOT_DELAY_US / 2e6) == b""
    assert term.ask("AT\r\n", seconds=0.01) == b""            # still booting: not listening
    assert term.wait_for(b"LoRaWAN.\r\n", 1) is not None
    assert term.seen == b"\r\nCurrent Work Mode: LoRaWAN.\r\n"
    assert term.ask("AT+NJS=?\r\n") == b"AT+NJS=0\r\nOK\r\n"
    assert term.ask("AT+APPKEY=?\r\n") == f"AT+APPKEY={APP_KEY}\r\nOK\r\n".encode()


# --- send --------------------------------------------------------------------------
def test_send_before_join_is_refused(term):
    assert term.ask("AT+SEND=2:0102\r\n") == b"AT_NO_NETWORK_JOINED\r\n"


def test_send_answers_ok_then_tx_done_after_the_receive_windows(term):
    # ADR off: a quiet network sends nothing in RX1 (with ADR on, a device at DR5 with a
    # strong link gets a LinkADRReq there, and TX_DONE comes right after RX1).
    assert term.ask("AT+ADR=0\r\n") == b"OK\r\n"
    term.join(dr=5)
    term.settle_duty_cycle()
    t_cmd = term.type("AT+SEND=2:0102\r")
    term.run(0.01)
    assert term.take() == b"OK\r\n"
    toa = eu868.airtime_us(5, eu868.phy_len_uplink(2))
    t = term.wait_for("+EVT:TX_DONE\r\n", 10)
    assert t == pytest.approx(t_cmd + toa + 2_000_000 + RX_WINDOW_DR0, abs=5_000)
    up = term.net.uplinks[-1]
    assert (up.port, up.payload, up.fcnt, up.dr, up.confirmed) == (2, b"\x01\x02", 0, 5, False)
    assert up.airtime_us == toa and up.dev_eui == "AC1F09FFFE000001"


def test_with_adr_the_network_answers_in_rx1_and_tx_done_follows_it(term):
    term.join(dr=5)
    term.settle_duty_cycle()
    t_cmd = term.type("AT+SEND=2:0102\r")
    term.run(0.01)
    assert term.take() == b"OK\r\n"
    toa = eu868.airtime_us(5, eu868.phy_len_uplink(2))
    t = term.wait_for("+EVT:TX_DONE\r\n", 10)
    assert t < t_cmd + toa + 2_000_000, "TX_DONE after RX1, not after RX2"
    assert term.net.uplinks[-1].dr == 5


def test_second_send_while_the_first_is_in_flight_is_busy(term):
    term.join(dr=5)
    term.settle_duty_cycle()
    assert term.ask("AT+SEND=2:01\r\n") == b"OK\r\n"
    assert term.ask("AT+SEND=2:02\r\n") == b"AT_BUSY_ERROR\r\n"
    assert term.ask("AT+JOIN\r\n") == b"AT_BUSY_ERROR\r\n"
    assert term.wait_for("+EVT:TX_DONE", 5) is not None


def test_duty_cycle_block_prints_the_wait_then_busy(term):
    term.join()                                   # 1482.752 ms at DR0: band off 99 x that
    t_join = term.net.joins[-1].t_us
    t_cmd = term.type("AT+SEND=2:0102\r")
    term.run(0.05)
    wait_ms = -(-(t_join + 100 * JOIN_DR0_TOA - t_cmd) // 1000)
    assert term.take() == f"Restricted_Wait_{wait_ms}_ms\r\nAT_BUSY_ERROR\r\n".encode()
    assert term.net.uplinks == []
    # Waiting exactly that long is enough, and needed.
    term.clock.advance_to(t_cmd + wait_ms * 1000 - 2000 - 15 * CHAR_US)
    assert term.ask("AT+SEND=2:0102\r\n", 0.005).startswith(b"Restricted_Wait_2_ms")
    term.clock.advance_to(t_cmd + wait_ms * 1000 - 15 * CHAR_US)
    assert term.ask("AT+SEND=2:0102\r\n", 0.005) == b"OK\r\n"


def test_oversize_payload_sends_an_empty_uplink_and_answers_param_error(term):
    term.join()
    term.settle_duty_cycle()
    assert term.ask("AT+SEND=2:" + "AB" * 52 + "\r\n") == b"AT_PARAM_ERROR\r\n"
    assert term.ask("AT+SEND=2:01\r\n") == b"AT_BUSY_ERROR\r\n"    # the empty frame is on air
    assert term.wait_for("+EVT:TX_DONE\r\n", 10) is not None
    empty = term.net.uplinks[-1]
    assert (empty.port, empty.payload, empty.fcnt, empty.confirmed) == (None, b"", 0, False)
    assert empty.airtime_us == eu868.airtime_us(0, 12)
    term.settle_duty_cycle()
    assert term.ask("AT+SEND=2:" + "AB" * 51 + "\r\n") == b"OK\r\n"
    assert term.wait_for("+EVT:TX_DONE\r\n", 10) is not None
    assert (term.net.uplinks[-1].fcnt, len(term.net.uplinks[-1].payload)) == (1, 51)


def test_confirmed_uplink_is_acked_or_fails_with_rx2_timeout(term):
    term.join(dr=5)
    term.settle_duty_cycle()
    assert term.ask("AT+CFM=1\r\n") == b"OK\r\n"
    assert term.ask("AT+SEND=2:01\r\n") == b"OK\r\n"
    assert term.wait_for("+EVT:SEND_CONFIRMED_OK\r\n", 5) is not None
    assert term.ask("AT+CFS=?\r\n").startswith(b"AT+CFS=1\r\n")
    term.settle_duty_cycle()
    term.net.available = False
    assert term.ask("AT+SEND=2:02\r\n") == b"OK\r\n"
    assert term.wait_for("+EVT:SEND_CONFIRMED_FAILED(4)\r\n", 5) is not None
    assert term.net.lost[-1].payload == b"\x02"


def test_unconfirmed_uplink_during_outage_is_done_but_lost(term):
    term.join(dr=5)
    term.settle_duty_cycle()
    term.net.available = False
    assert term.ask("AT+SEND=3:0A0B\r\n") == b"OK\r\n"
    assert term.wait_for("+EVT:TX_DONE\r\n", 5) is not None
    assert term.net.uplinks == [] and term.net.lost[-1].reason == "network unavailable"


def test_downlink_follows_tx_done_and_is_readable_once(term):
    term.join(dr=5)
    term.settle_duty_cycle()
    term.net.queue_downlink(DEV_EUI, 2, b"\x00\x00\x07\x10")
    assert term.ask("AT+SEND=2:01\r\n") == b"OK\r\n"
    assert term.wait_for(b"00000710\r\n", 5) is not None
    assert term.seen == b"+EVT:TX_DONE\r\n+EVT:RX_1:-60:8:UNICAST:2:00000710\r\n"
    assert term.ask("AT+RECV=?\r\n") == b"AT+RECV=2:00000710\r\nOK\r\n"
    assert term.ask("AT+RECV=?\r\n") == b"AT+RECV=0:\r\nOK\r\n"


def test_frame_counter_advances_per_transmission(term):
    term.join(dr=5)
    for n in range(3):
        term.settle_duty_cycle()
        assert term.ask(f"AT+SEND=2:0{n}\r\n") == b"OK\r\n"
        term.wait_for("+EVT:TX_DONE", 5)
    assert [u.fcnt for u in term.net.uplinks] == [0, 1, 2]


def test_power_cut_loses_the_session_and_what_was_pending(term):
    term.join(dr=5)
    term.settle_duty_cycle()
    term.type("AT+SEND=2:01\r\n")
    term.run(0.005)
    assert term.take() == b"OK\r\n"
    term.modem.power_cut()                        # while the frame is on air
    term.run(5)
    assert term.take() == b"\r\nCurrent Work Mode: LoRaWAN.\r\n"
    assert term.net.uplinks == []
    assert term.ask("AT+NJS=?\r\n") == b"AT+NJS=0\r\nOK\r\n"
    assert term.modem.nvm.dev_nonce == 1


# --- sleep -------------------------------------------------------------------------
def test_sleep_answers_ok_when_the_time_is_up(term):
    t_cmd = term.type("AT+SLEEP=1000\r\n")
    term.run(0.5)
    assert term.take() == b""
    t = term.wait_for("OK\r\n", 1)
    assert t == pytest.approx(t_cmd + 1_000_000, abs=1_000)
    assert term.seen == b"OK\r\n"


def test_a_character_wakes_the_module_and_is_misread(term):
    assert term.ask("AT+SLEEP=60000\r\n") == b""
    # The waking 'A' arrives as 0xC1: AT+SLEEP's OK, then the mangled command's error.
    assert term.ask("AT\r\n") == b"OK\r\nAT_COMMAND_NOT_FOUND\r\n"
    assert term.ask("AT\r\n") == b"OK\r\n"
    term.run(61)
    assert term.take() == b""                     # the sleep timer died with the wake-up


# --- network decisions seen through the modem ---------------------------------------
def test_joins_in_a_failure_window_fail_and_later_ones_succeed(term):
    term.net.fail_joins(0, 10_000_000)
    assert term.ask("AT+JOIN\r\n") == b"OK\r\n"
    assert term.wait_for("+EVT:JOIN_FAILED_RX_TIMEOUT\r\n", 10) is not None
    term.settle_duty_cycle()
    term.join()
    assert [(j.accepted, j.reason) for j in term.net.joins] == [
        (False, "join failure window"), (True, "")]


def test_network_ignores_a_join_whose_dev_nonce_did_not_increase(term):
    term.join()
    term.modem.nvm.dev_nonce = 0              # a module that lost its flash
    term.settle_duty_cycle()
    assert term.ask("AT+JOIN\r\n") == b"OK\r\n"
    assert term.wait_for("+EVT:JOIN_FAILED_RX_TIMEOUT\r\n", 10) is not None
    assert term.net.joins[-1].reason == "DevNonce not incremented"
