"""The Wio-E5 (LoRa-E5 AT firmware) model, driven byte by byte through a UartLink at 9600
baud on the virtual clock: the spec's replies, errors, transactions, sleep, baud rate and
what survives a restart."""
import pytest

from modem_terminal import ModemTerminal
from simulators.bus.uart import char_time_us
from simulators.modems.wioe5 import BOOT_DELAY_US, WioE5
from simulators.network import eu868

DEV_EUI = bytes.fromhex("2CF7F12024900138")
APP_EUI = "70B3D57ED0000001"
APP_KEY = "2B7E151628AED2A6ABF7158809CF4F3C"
CHAR_US = char_time_us(9600)
RX_WINDOW_DR0 = 8 * 4096 * 8          # 8 symbols at SF12/125 kHz, in us


class Term(ModemTerminal):
    """The node's side of the wire, with the LoRa-E5's OTAA set-up and join."""

    def __init__(self):
        super().__init__(WioE5, DEV_EUI, reply_seconds=0.2)

    def otaa(self, dr=None):
        assert self.ask("AT+MODE=LWOTAA\r\n") == b"+MODE: LWOTAA\r\n"
        assert self.ask(f'AT+ID=AppEui,"{APP_EUI}"\r\n').startswith(b"+ID: AppEui, 70:B3")
        assert self.ask(f'AT+KEY=APPKEY,"{APP_KEY}"\r\n').startswith(b"+KEY: APPKEY")
        if dr is not None:
            assert self.ask(f"AT+DR=DR{dr}\r\n").startswith(f"+DR: DR{dr}\r\n".encode())

    def join(self, dr=None):
        self.otaa(dr)
        self.type("AT+JOIN\r\n")
        assert self.wait_for("+JOIN: Done\r\n", 10) is not None
        assert b"+JOIN: Network joined\r\n" in self.seen

    def settle_duty_cycle(self):
        self.run(300)
        self.take()


@pytest.fixture
def term():
    return Term()


# --- syntax, replies and errors -------------------------------------------------------------
def test_at_answers_ok_and_each_reply_echoes_the_command_name(term):
    assert term.ask("AT\r\n") == b"+AT: OK\r\n"
    assert term.ask("AT+VER\r\n") == b"+VER: 4.0.11\r\n"
    assert term.ask("AT+PORT=8\r\n") == b"+PORT: 8\r\n"
    assert term.ask("AT+ADR=OFF\r\n") == b"+ADR: OFF\r\n"
    assert term.ask("AT+DR=EU868\r\n") == b"+DR: EU868\r\n"
    assert term.ask("AT+LW=VER\r\n") == b"+LW: VER, V102B\r\n"


def test_id_query_prints_the_three_ids_with_colons(term):
    assert term.ask("AT+ID\r\n") == (b"+ID: DevAddr, 24:90:01:38\r\n"
                                     b"+ID: DevEui, 2C:F7:F1:20:24:90:01:38\r\n"
                                     b"+ID: AppEui, 00:00:00:00:00:00:00:00\r\n")
    # Plain, quoted or spaced hex are all accepted; the reply has colons.
    assert term.ask("AT+ID=AppEui, 70B3D57ED0000001\r\n") == (
        b"+ID: AppEui, 70:B3:D5:7E:D0:00:00:01\r\n")
    assert term.ask('AT+ID=DevEui,"2C F7 F1 20 24 90 01 39"\r\n') == (
        b"+ID: DevEui, 2C:F7:F1:20:24:90:01:39\r\n")


def test_the_app_key_is_write_only_and_its_reply_echoes_it(term):
    assert term.ask(f'AT+KEY=APPKEY,"{APP_KEY.lower()}"\r\n') == (
        f"+KEY: APPKEY {APP_KEY}\r\n".encode())
    assert term.modem.nvm.app_key == bytes.fromhex(APP_KEY)
    assert term.ask("AT+KEY\r\n") == b"+KEY: ERROR(-1)\r\n"


@pytest.mark.parametrize("line, reply", [
    ("AT+FOO", b"+FOO: ERROR(-10)"),
    ("HELLO", b"+AT: ERROR(-10)"),
    ("AT+KEY=APPKEY,1234", b"+KEY: ERROR(-1)"),
    ("AT+ID=DevEui,12", b"+ID: ERROR(-1)"),
    ("AT+MODE=LORA", b"+MODE: ERROR(-1)"),
    ("AT+PORT=0", b"+PORT: ERROR(-1)"),
    ("AT+DR=DR16", b"+DR: ERROR(-1)"),
    ("AT+DR=US915", b"+DR: ERROR(-1)"),      # the model speaks EU868 only
    ("AT+EEPROM=100", b"+EEPROM: ERROR(-1)"),
    ("AT+UART=BR, 12345", b"+UART: ERROR(-1)"),
    ("AT+MSGHEX=\"0G\"", b"+MSGHEX: ERROR(-1)"),
    ("AT+LW=" + ",".join("X" * 16), b"+LW: ERROR(-20)"),
    ("AT+MSGHEX=" + "00" * 300, b"+MSGHEX: ERROR(-21)"),
    ("AT+VER\x01", b"+VER: ERROR(-23)"),
    ("AT+LOWPOWER: WAKEUP", b"+LOWPOWER: ERROR(-11)"),
])
def test_bad_commands_get_the_specs_error_codes_and_change_nothing(term, line, reply):
    before = repr(term.modem.nvm)
    assert term.ask(line + "\r\n", 1.0) == reply + b"\r\n"
    assert repr(term.modem.nvm) == before


def test_a_line_ends_at_lf_only_and_0xff_wake_bytes_are_ignored(term):
    assert term.ask("AT\r") == b""
    term.run(2)                                  # the UART timeout drops the partial line
    assert term.take() == b"+INFO: Input timeout\r\n"
    assert term.ask("AT\n") == b"+AT: OK\r\n"
    assert term.ask(b"\xff\xff\xff\xffAT+VER\r\n") == b"+VER: 4.0.11\r\n"
    assert term.ask("at+ver\r\n") == b"+VER: 4.0.11\r\n"


def test_dr_query_shows_the_setting_and_the_rate_adr_moved_it_to(term):
    assert term.ask("AT+DR=DR0\r\n") == b"+DR: DR0\r\n+DR: EU868 DR0  SF12 BW125K\r\n"
    term.modem.mac.dr = 3                        # as a LinkADRReq would
    assert term.ask("AT+DR\r\n") == b"+DR: DR0 (ADR DR3)\r\n+DR: EU868 DR3  SF9 BW125K\r\n"
    assert term.ask("AT+DR=DR6\r\n") == b"+DR: DR error\r\n"


def test_lw_len_is_the_largest_payload_at_the_current_rate(term):
    assert term.ask("AT+DR=DR0\r\n").startswith(b"+DR: DR0")
    assert term.ask("AT+LW=LEN\r\n") == b"+LW: LEN, 51\r\n"
    assert term.ask("AT+DR=DR3\r\n").startswith(b"+DR: DR3")
    assert term.ask("AT+LW=LEN\r\n") == b"+LW: LEN, 115\r\n"


# --- join ---------------------------------------------------------------------------------
def test_join_prints_start_normal_then_the_result_after_the_accept_delay(term):
    term.otaa()
    t_cmd = term.type("AT+JOIN\r\n")
    term.run(0.1)
    assert term.take() == b"+JOIN: Start\r\n+JOIN: NORMAL\r\n"
    toa = eu868.airtime_us(0, eu868.JOIN_REQUEST_PHY_LEN)
    accept = eu868.airtime_us(0, eu868.JOIN_ACCEPT_PHY_LEN, uplink=False)
    t = term.wait_for("+JOIN: Done\r\n", 10)
    session = term.net.sessions[DEV_EUI.hex().upper()]
    addr = ":".join(f"{b:02X}" for b in session.dev_addr.to_bytes(4, "big"))
    assert term.seen == (b"+JOIN: Network joined\r\n"
                         + f"+JOIN: NetID 000013 DevAddr {addr}\r\n".encode()
                         + b"+JOIN: Done\r\n")
    assert t == pytest.approx(t_cmd + toa + 5_000_000 + accept + len(term.seen) * CHAR_US,
                              abs=3 * CHAR_US)
    assert term.ask("AT+ID=DevAddr\r\n") == f"+ID: DevAddr, {addr}\r\n".encode()


def test_join_without_network_fails_after_the_second_window(term):
    term.otaa()
    term.net.available = False
    t_cmd = term.type("AT+JOIN\r\n")
    t = term.wait_for("+JOIN: Done\r\n", 10)
    assert term.seen == (b"+JOIN: Start\r\n+JOIN: NORMAL\r\n+JOIN: Join failed\r\n"
                         b"+JOIN: Done\r\n")
    toa = eu868.airtime_us(0, eu868.JOIN_REQUEST_PHY_LEN)
    printed = len(b"+JOIN: Join failed\r\n+JOIN: Done\r\n") * CHAR_US
    assert t == pytest.approx(t_cmd + toa + 6_000_000 + RX_WINDOW_DR0 + printed, abs=3 * CHAR_US)
    assert not term.modem.joined


def test_a_join_while_joined_transmits_nothing_unless_forced(term):
    term.join(dr=5)
    term.settle_duty_cycle()
    assert term.ask("AT+JOIN\r\n") == b"+JOIN: Joined already\r\n"
    assert len(term.net.joins) == 1
    term.type("AT+JOIN=FORCE\r\n")
    assert term.wait_for("+JOIN: Done\r\n", 10) is not None
    assert term.seen.startswith(b"+JOIN: Start\r\n+JOIN: FORCE\r\n+JOIN: Network joined")
    assert [j.dev_nonce for j in term.net.joins] == [1, 2]


def test_join_refusals_are_single_lines(term):
    assert term.ask("AT+JOIN\r\n") == b"+JOIN: Not in OTAA mode\r\n"   # factory: LWABP
    term.otaa()
    term.type("AT+JOIN\r\n")
    term.run(0.1)
    term.take()
    assert term.ask("AT+JOIN\r\n") == b"+JOIN: LoRaWAN modem is busy\r\n"
    assert term.wait_for("+JOIN: Done\r\n", 10) is not None
    assert term.ask("AT+JOIN=FORCE\r\n").startswith(b"+JOIN: No band in ")   # DR0: 1 %
    assert len(term.net.joins) == 1


# --- uplinks --------------------------------------------------------------------------------
def test_msghex_before_join_asks_to_join_first(term):
    term.otaa()
    assert term.ask('AT+MSGHEX="01"\r\n') == b"+MSGHEX: Please join network first\r\n"
    assert term.net.uplinks == [] and term.net.lost == []


def test_msghex_goes_out_on_the_sticky_port_and_is_done_after_rx2(term):
    term.join(dr=5)
    term.settle_duty_cycle()
    assert term.ask("AT+ADR=OFF\r\n") == b"+ADR: OFF\r\n"     # a quiet network: no ADR
    assert term.ask("AT+PORT=7\r\n") == b"+PORT: 7\r\n"
    t_cmd = term.type('AT+MSGHEX="01 02"\r\n')
    term.run(0.05)
    assert term.take() == b"+MSGHEX: Start\r\n"
    t = term.wait_for("+MSGHEX: Done\r\n", 10)
    assert term.seen == b"+MSGHEX: Done\r\n"
    toa = eu868.airtime_us(5, eu868.phy_len_uplink(2))
    assert t == pytest.approx(t_cmd + toa + 2_000_000 + RX_WINDOW_DR0 + 16 * CHAR_US,
                              abs=5_000)
    up = term.net.uplinks[-1]
    assert (up.port, up.payload, up.fcnt, up.confirmed) == (7, b"\x01\x02", 0, False)


def test_confirmed_uplink_prints_wait_ack_and_ack_received(term):
    term.join(dr=5)
    term.settle_duty_cycle()
    term.type('AT+CMSGHEX="0A"\r\n')
    assert term.wait_for("+CMSGHEX: Done\r\n", 10) is not None
    assert term.seen == (b"+CMSGHEX: Start\r\n+CMSGHEX: Wait ACK\r\n+CMSGHEX: ACK Received\r\n"
                         b"+CMSGHEX: RXWIN1, RSSI -60, SNR 8.0\r\n+CMSGHEX: Done\r\n")


def test_confirmed_uplink_without_ack_is_retried_retry_times_then_done(term):
    term.join(dr=5)
    term.settle_duty_cycle()
    assert term.ask("AT+RETRY=3\r\n") == b"+RETRY: 3\r\n"
    term.net.available = False
    term.type('AT+CMSGHEX="0B"\r\n')
    assert term.wait_for("+CMSGHEX: Done\r\n", 120) is not None
    assert term.seen == b"+CMSGHEX: Start\r\n+CMSGHEX: Wait ACK\r\n+CMSGHEX: Done\r\n"
    tries = [u for u in term.net.lost if u.payload == b"\x0b"]
    assert [u.fcnt for u in tries] == [0, 0, 0]
    gaps = [b.t_us - a.t_us for a, b in zip(tries, tries[1:])]
    assert all(2_000_000 + 3_000_000 <= g <= 2_500_000 + 10_000_000 + 5_000_000 for g in gaps)


def test_a_downlink_is_printed_with_port_and_window_before_done(term):
    term.join(dr=5)
    term.settle_duty_cycle()
    term.net.queue_downlink(DEV_EUI, 3, b"\x00\x00\x07\x10")
    term.net.queue_downlink(DEV_EUI, 4, b"\x01")
    term.type('AT+MSGHEX="01"\r\n')
    assert term.wait_for("+MSGHEX: Done\r\n", 10) is not None
    assert term.seen.startswith(b"+MSGHEX: Start\r\n+MSGHEX: FPENDING\r\n"
                                b'+MSGHEX: PORT: 3; RX: "00000710"\r\n+MSGHEX: RXWIN1, ')


def test_refusals_transmit_nothing(term):
    term.join(dr=0)
    term.settle_duty_cycle()
    assert term.ask('AT+MSGHEX="' + "00" * 52 + '"\r\n') == b"+MSGHEX: Length error 51\r\n"
    term.type('AT+MSGHEX="01"\r\n')
    term.run(0.1)
    term.take()
    assert term.ask('AT+MSGHEX="02"\r\n') == b"+MSGHEX: LoRaWAN modem is busy\r\n"
    assert term.wait_for("+MSGHEX: Done\r\n", 10) is not None
    reply = term.ask('AT+MSGHEX="03"\r\n')
    assert reply.startswith(b"+MSGHEX: No band in ") and reply.endswith(b"ms\r\n")
    wait_ms = int(reply[len(b"+MSGHEX: No band in "):-4])
    toa = eu868.airtime_us(0, eu868.phy_len_uplink(1))
    assert 90 * toa // 1000 < wait_ms <= 99 * toa // 1000 + 1
    assert [u.payload for u in term.net.uplinks] == [b"\x01"]


def test_msghex_in_test_mode_is_unavailable(term):
    term.join(dr=5)
    assert term.ask("AT+MODE=TEST\r\n") == b"+MODE: TEST\r\n"
    assert term.ask('AT+MSGHEX="01"\r\n') == b"+MSGHEX: ERROR(-12)\r\n"
    assert not term.modem.joined


# --- sleep ------------------------------------------------------------------------------------
def test_lowpower_sleeps_and_the_waking_line_is_lost(term):
    assert term.ask("AT+LOWPOWER\r\n") == b"+LOWPOWER: SLEEP\r\n"
    assert term.modem.asleep
    assert term.ask(b"\xff\xff\xff\xffAT\r\n", 0.05) == b"+LOWPOWER: WAKEUP\r\n"
    assert not term.modem.asleep
    assert term.ask("AT\r\n") == b"+AT: OK\r\n"


def test_timed_lowpower_wakes_by_itself(term):
    t_cmd = term.type("AT+LOWPOWER=5000\r\n")
    term.run(0.1)
    assert term.take() == b"+LOWPOWER: SLEEP\r\n"
    t = term.wait_for("+LOWPOWER: WAKEUP\r\n", 10)
    assert t == pytest.approx(t_cmd + 5_000_000, abs=50_000)


# --- restart, power, baud rate ----------------------------------------------------------------
def test_reset_answers_ok_restarts_silently_and_loses_only_the_session(term):
    term.join(dr=5)
    assert term.ask("AT+EEPROM=03,01\r\n") == b"+EEPROM: 03, 01\r\n"
    assert term.ask("AT+RESET\r\n") == b"+RESET: OK\r\n"
    assert term.ask("AT\r\n", 0.1) == b""                   # booting: nobody listens
    term.run(BOOT_DELAY_US / 1e6)
    assert term.take() == b""                               # no banner
    assert term.ask("AT\r\n") == b"+AT: OK\r\n"
    assert not term.modem.joined
    assert term.ask("AT+MODE\r\n") == b"+MODE: LWOTAA\r\n"
    assert term.ask("AT+EEPROM=03\r\n") == b"+EEPROM: 03, 01\r\n"
    assert term.modem.nvm.app_key == bytes.fromhex(APP_KEY)


def test_dev_nonce_keeps_increasing_across_power_cuts(term):
    term.join(dr=5)
    term.modem.power_cut()
    term.run(2)
    term.settle_duty_cycle()
    term.join(dr=5)
    assert [(j.dev_nonce, j.accepted) for j in term.net.joins] == [(1, True), (2, True)]


def test_power_cut_mid_uplink_loses_the_frame_and_the_session(term):
    term.join(dr=0)
    term.settle_duty_cycle()
    term.type('AT+MSGHEX="01"\r\n')
    term.run(0.1)
    term.modem.power_cut()
    term.run(5)
    assert term.take() == b"+MSGHEX: Start\r\n"
    assert term.net.uplinks == [] and not term.modem.joined


def test_a_new_baud_rate_takes_effect_at_the_restart(term):
    assert term.ask("AT+UART=BR, 115200\r\n") == b"+UART: BR, 115200\r\n"
    assert term.ask("AT\r\n") == b"+AT: OK\r\n"             # still 9600
    assert term.ask("AT+RESET\r\n") == b"+RESET: OK\r\n"
    term.run(2)
    assert term.link.device_format[0] == 115200
    term.link.set_node_format(115200)
    assert term.ask("AT+UART=BR\r\n") == b"+UART: BR, 115200\r\n"
