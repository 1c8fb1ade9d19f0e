"""The RN2483 model (simulators/modems/rn2483.py), driven through a UartLink on the virtual
clock as the Command Reference (DS40001784) describes the module."""
import pytest

from modem_terminal import ModemTerminal
from simulators.bus.uart import char_time_us
from simulators.modems.lora_mac import rx_window_us
from simulators.modems.rn2483 import BANNER, BOOT_DELAY_US, SAVE_US, Rn2483
from simulators.network import eu868

HWEUI = bytes.fromhex("0004A30B001A55ED")
APP_EUI = "70B3D57ED0000001"
APP_KEY = "2B7E151628AED2A6ABF7158809CF4F3C"
RX2_END_US = 2_000_000 + rx_window_us(0)      # an uplink's RX2 is over (RECEIVE_DELAY2)


class Term(ModemTerminal):
    """The MCU's side of the wire: `ask` ends each line with CR LF, as the module wants."""

    def __init__(self):
        super().__init__(Rn2483, HWEUI, eol="\r\n", reply_seconds=0.05)

    def provision(self, dr=5):
        for line in (f"mac set deveui {HWEUI.hex().upper()}", f"mac set appeui {APP_EUI}",
                     f"mac set appkey {APP_KEY}", f"mac set dr {dr}"):
            assert self.ask(line) == b"ok\r\n", line

    def join(self, dr=5):
        self.provision(dr)
        assert self.ask("mac join otaa") == b"ok\r\n"
        assert self.wait_for("accepted\r\n", 10) is not None

    def tx(self, line, seconds=10):
        """A `mac tx`: (first reply, second reply)."""
        first = self.ask(line, 0.01)
        if first != b"ok\r\n":
            return first, b""
        self.run(seconds)
        return first, self.take()


@pytest.fixture
def term():
    return Term()


# --- syntax ----------------------------------------------------------------------------
def test_version_and_hweui_answer_one_line_each(term):
    assert term.ask("sys get ver") == BANNER.encode() + b"\r\n"
    assert term.ask("sys get hweui") == b"0004A30B001A55ED\r\n"


@pytest.mark.parametrize("line", [
    "sys", "mac", "hello", "SYS get ver", "mac GET dr", "sys get  ver", " sys get ver",
    "sys get ver ", "mac get appkey", "mac get appskey", "mac set deveui 0004A30B001A55E",
    "mac set appkey " + "G" * 32, "mac set dr 6", "mac set dr 8", "mac set dr -1",
    "mac set adr maybe", "mac set upctr 4294967296", "mac tx uncnf 0 00",
    "mac tx uncnf 224 00", "mac tx uncnf 1 0", "mac tx uncnf 1 0G", "mac tx sometimes 1 00",
    "mac join", "mac join otab", "sys sleep 99", "sys sleep 4294967297", "sys sleep x",
    "sys get nvm 2FF", "sys set nvm 400 00", "mac set ch freq 0 868900000",
])
def test_bad_commands_and_parameters_answer_invalid_param(term, line):
    assert term.ask(line) == b"invalid_param\r\n"


def test_a_command_needs_cr_lf_and_no_echo_comes(term):
    term.write("sys get ver\n")
    term.run(0.05)
    assert term.take() == b"invalid_param\r\n"
    assert term.ask("") == b"invalid_param\r\n"


def test_hex_data_and_the_join_mode_may_be_either_case(term):
    assert term.ask("mac set appeui 70b3d57ed0000001") == b"ok\r\n"
    assert term.ask("mac get appeui") == b"70B3D57ED0000001\r\n"
    assert term.ask(f"mac set appkey {APP_KEY.lower()}") == b"ok\r\n"
    term.provision()
    assert term.ask("mac join OTAA") == b"ok\r\n"


def test_keys_can_be_written_but_never_read(term):
    assert term.ask(f"mac set appkey {APP_KEY}") == b"ok\r\n"
    assert APP_KEY.encode() not in term.ask("mac get appkey")


def test_settings_read_back(term):
    assert term.ask("mac get dr") == b"5\r\n"           # the default after a reset
    assert term.ask("mac set dr 0") == b"ok\r\n"
    assert term.ask("mac get dr") == b"0\r\n"
    assert term.ask("mac get adr") == b"off\r\n"
    assert term.ask("mac set adr on") == b"ok\r\n"
    assert term.ask("mac get adr") == b"on\r\n"
    assert term.ask("mac get retx") == b"7\r\n"
    assert term.ask("mac get ch dcycle 0") == b"302\r\n"
    assert term.ask("mac get ch freq 2") == b"868500000\r\n"
    assert term.ask("mac get ch status 3") == b"off\r\n"


def test_user_nvm_is_written_at_once_and_kept_across_a_reset(term):
    assert term.ask("sys set nvm 300 A5") == b"ok\r\n"
    assert term.ask("sys reset", 0.5).endswith(BANNER.encode() + b"\r\n")
    assert term.ask("sys get nvm 300") == b"A5\r\n"
    assert term.ask("sys get nvm 3FF") == b"00\r\n"


# --- join --------------------------------------------------------------------------------
def test_otaa_join_answers_ok_then_accepted_after_the_join_accept_delay(term):
    term.provision(dr=5)
    assert term.ask("mac get status") == b"00000000\r\n"
    t0 = term.clock.now_us
    assert term.ask("mac join otaa", 0.01) == b"ok\r\n"
    t = term.wait_for("accepted\r\n", 10)
    assert 5_000_000 <= t - t0 <= 5_200_000               # JOIN_ACCEPT_DELAY1 + its airtime
    assert term.ask("mac get status") == b"00000010\r\n"  # bit 4: joined
    assert term.ask("mac get upctr") == b"0\r\n"
    assert term.ask("mac get devaddr") != b"00000000\r\n"


def test_join_refused_by_the_network_is_denied_after_the_second_window(term):
    term.provision(dr=0)
    term.net.fail_joins(0, 60_000_000)
    t0 = term.clock.now_us
    assert term.ask("mac join otaa", 0.01) == b"ok\r\n"
    t = term.wait_for("denied\r\n", 12)
    assert t - t0 >= eu868.airtime_us(0, eu868.JOIN_REQUEST_PHY_LEN) + 6_000_000
    assert term.ask("mac get status") == b"00000000\r\n"


def test_join_without_keys_or_while_busy_is_refused_at_once(term):
    assert term.ask("mac join otaa") == b"keys_not_init\r\n"
    assert term.ask("mac join abp") == b"keys_not_init\r\n"
    term.provision()
    assert term.ask("mac join otaa", 0.01) == b"ok\r\n"
    assert term.ask("mac join otaa", 0.01) == b"busy\r\n"


# --- tx -----------------------------------------------------------------------------------
def test_tx_before_join_is_not_joined(term):
    assert term.ask("mac tx uncnf 1 00") == b"not_joined\r\n"


def test_unconfirmed_tx_is_ok_then_mac_tx_ok_after_rx2(term):
    term.join(dr=5)
    term.write("mac tx uncnf 2 0102\r\n")
    t0 = term.clock.now_us
    t = term.wait_for("mac_tx_ok\r\n", 10)
    reply_us = len(b"ok\r\nmac_tx_ok\r\n") * char_time_us(57600)
    assert 0 <= t - t0 - (eu868.airtime_us(5, 15) + RX2_END_US) <= reply_us
    (up,) = term.net.uplinks
    assert (up.port, up.payload, up.fcnt, up.confirmed) == (2, b"\x01\x02", 0, False)
    assert term.ask("mac get upctr") == b"1\r\n"


def test_payload_over_the_guide_s_limit_is_refused_before_anything_goes_on_air(term):
    term.join(dr=0)
    assert term.ask("mac tx uncnf 1 " + "00" * 52) == b"invalid_data_len\r\n"
    assert term.tx("mac tx uncnf 1 " + "00" * 51)[1] == b"mac_tx_ok\r\n"
    assert [len(u.payload) for u in term.net.uplinks] == [51]
    term.run(1000)
    assert term.ask("mac set dr 5") == b"ok\r\n"
    assert term.ask("mac tx uncnf 1 " + "00" * 223) == b"invalid_data_len\r\n"  # 222 at SF7


def test_mac_answers_that_leave_no_room_go_alone_and_the_data_is_refused(term):
    term.join(dr=5)
    term.modem.mac.pending_fopts = b"\x03\x07"         # a LinkADRAns waiting for an uplink
    assert term.tx("mac tx uncnf 1 " + "00" * 222) == (b"ok\r\n", b"invalid_data_len\r\n")
    (up,) = term.net.uplinks + term.net.lost
    assert (up.port, up.payload, up.fopts) == (None, b"", b"\x03\x07")
    term.run(100)
    assert term.tx("mac tx uncnf 1 " + "00" * 222)[1] == b"mac_tx_ok\r\n"


def test_confirmed_tx_is_acked_or_ends_in_mac_err_after_retx_plus_one_tries(term):
    term.join(dr=5)
    assert term.tx("mac tx cnf 3 AB") == (b"ok\r\n", b"mac_tx_ok\r\n")
    assert term.net.uplinks[-1].confirmed
    assert term.ask("mac set retx 2") == b"ok\r\n"
    term.net.available = False
    assert term.tx("mac tx cnf 3 CD", 60) == (b"ok\r\n", b"mac_err\r\n")
    tries = [u for u in term.net.lost if u.payload == b"\xcd"]
    assert len(tries) == 3 and len({u.fcnt for u in tries}) == 1


def test_a_downlink_comes_as_mac_rx_with_port_and_hex(term):
    term.join(dr=5)
    term.net.queue_downlink(HWEUI, 7, b"\x00\x07\x10")
    assert term.tx("mac tx uncnf 2 01") == (b"ok\r\n", b"mac_rx 7 000710\r\n")
    assert term.ask("mac get dnctr") == b"1\r\n"


def test_a_second_tx_while_the_first_is_in_flight_is_busy(term):
    term.join()
    assert term.ask("mac tx uncnf 2 01", 0.01) == b"ok\r\n"
    assert term.ask("mac tx uncnf 2 02", 0.01) == b"busy\r\n"


def test_duty_cycle_is_per_channel_and_no_free_ch_gives_no_wait(term):
    term.join(dr=0)
    term.run(1000)                              # the join's channel is free again
    for _ in range(3):                          # one frame on each default channel
        assert term.tx("mac tx uncnf 1 " + "00" * 40, 6)[1] == b"mac_tx_ok\r\n"
    assert term.ask("mac tx uncnf 1 00") == b"no_free_ch\r\n"
    first = term.net.uplinks[0]
    assert len({u.channel_hz for u in term.net.uplinks}) == 3
    # 0.33 % each: the first channel is off until 303 x its airtime after its start.
    free_at = first.t_us + 303 * first.airtime_us
    line_us = len("mac tx uncnf 1 00\r\n") * char_time_us(57600)
    term.clock.advance_to(free_at - 1000 - line_us)
    assert term.ask("mac tx uncnf 1 00") == b"no_free_ch\r\n"
    term.clock.advance_to(free_at - line_us)
    assert term.ask("mac tx uncnf 1 00", 0.001) == b"ok\r\n"
    term.run(5)
    assert term.net.uplinks[-1].channel_hz == first.channel_hz


def test_frame_counter_rollover_needs_a_rejoin(term):
    term.join()
    assert term.ask("mac set upctr 4294967295") == b"ok\r\n"
    assert term.tx("mac tx uncnf 1 00") == (b"ok\r\n", b"mac_tx_ok\r\n")
    assert term.ask("mac get upctr") == b"0\r\n"
    assert term.ask("mac tx uncnf 1 00") == b"frame_counter_err_rejoin_needed\r\n"


def test_silent_and_paused_mac_refuse_until_released(term):
    term.join()
    term.modem.silence()
    assert term.ask("mac tx uncnf 1 00") == b"silent\r\n"
    assert term.ask("mac forceENABLE") == b"ok\r\n"
    assert term.ask("mac pause") == b"4294967245\r\n"
    assert term.ask("mac tx uncnf 1 00") == b"mac_paused\r\n"
    assert term.ask("mac resume") == b"ok\r\n"
    assert term.ask("mac tx uncnf 1 00", 0.01) == b"ok\r\n"


# --- what a reset keeps: mac save ----------------------------------------------------------
def test_a_reset_loses_the_session_and_unsaved_counters(term):
    term.join()
    for _ in range(3):
        term.tx("mac tx uncnf 1 00", 200)
    assert term.ask("mac get upctr") == b"3\r\n"
    assert term.ask("sys reset", 0.5) == BANNER.encode() + b"\r\n"
    assert term.ask("mac get status") == b"00000000\r\n"
    assert term.ask("mac tx uncnf 1 00") == b"not_joined\r\n"
    assert term.ask("mac get upctr") == b"0\r\n"          # never saved: the EEPROM's value
    assert term.ask("mac get deveui") == b"0000000000000000\r\n"


def test_mac_save_keeps_keys_session_and_counters_and_abp_resumes_them(term):
    term.join()
    for _ in range(3):
        term.tx("mac tx uncnf 1 00", 200)
    devaddr = term.ask("mac get devaddr")
    assert term.ask("mac save", 0.01) == b""
    term.run(SAVE_US / 1e6)
    assert term.take() == b"ok\r\n"
    term.modem.power_cut(off_us=1_000_000)
    term.run(2)
    assert term.take() == BANNER.encode() + b"\r\n"
    assert term.ask("mac get deveui") == HWEUI.hex().upper().encode() + b"\r\n"
    assert term.ask("mac get devaddr") == devaddr
    assert term.ask("mac get upctr") == b"3\r\n"
    assert term.ask("mac join abp") == b"ok\r\naccepted\r\n"
    assert term.ask("mac get status") == b"00000010\r\n"
    assert term.tx("mac tx uncnf 1 00")[1] == b"mac_tx_ok\r\n"
    assert term.net.uplinks[-1].fcnt == 3


def test_factory_reset_forgets_everything_saved(term):
    term.join()
    term.ask("mac save", SAVE_US / 1e6 + 0.01)
    assert term.ask("sys factoryRESET", 0.5) == BANNER.encode() + b"\r\n"
    assert term.ask("mac get devaddr") == b"00000000\r\n"
    assert term.ask("mac join abp") == b"keys_not_init\r\n"


def test_a_power_cut_silences_the_module_until_it_has_booted(term):
    term.modem.power_cut(off_us=0)
    assert term.ask("sys get ver", BOOT_DELAY_US / 2e6) == b""
    term.run(BOOT_DELAY_US / 1e6)
    assert term.take() == BANNER.encode() + b"\r\n"
    assert term.ask("sys get ver") == BANNER.encode() + b"\r\n"


# --- sleep and auto-baud (1.4, 2.3.1) --------------------------------------------------------
def test_sleep_answers_ok_when_its_time_is_up_and_ignores_the_uart_meanwhile(term):
    t0 = term.clock.now_us
    assert term.ask("sys sleep 5000") == b""
    assert term.ask("sys get ver") == b""                 # asleep: not heard
    t = term.wait_for("ok\r\n", 6)
    assert t - t0 >= 5_000_000
    assert term.ask("sys get ver") == BANNER.encode() + b"\r\n"


def test_break_and_0x55_wake_the_module_early(term):
    term.ask("sys sleep 600000")
    term.link.node_break()
    assert term.ask("\x55sys get ver") == b"ok\r\n" + BANNER.encode() + b"\r\n"
    assert not term.modem.asleep


def test_auto_baud_takes_the_rate_of_the_0x55(term):
    term.link.set_node_format(9600)
    assert term.ask("sys get ver") != BANNER.encode() + b"\r\n"     # it hears garbage
    term.link.node_break()
    term.write(b"\x55")
    assert term.ask("sys get ver", 0.2) == BANNER.encode() + b"\r\n"
    assert term.link.device_format[0] == 9600


def test_another_character_after_the_break_mismeasures_the_rate(term):
    term.link.node_break()
    term.write(b"\x00")
    term.run(0.01)
    assert term.ask("sys get ver", 0.2) != BANNER.encode() + b"\r\n"
    term.link.node_break()
    term.write(b"\x55")
    assert term.ask("sys get ver", 0.2) == BANNER.encode() + b"\r\n"


def test_a_reset_forgets_the_measured_rate(term):
    term.link.set_node_format(115200)
    term.link.node_break()
    term.write(b"\x55")
    assert term.ask("sys get ver") == BANNER.encode() + b"\r\n"
    term.ask("sys reset", 0.5)
    assert term.link.device_format[0] == 57600
    assert term.ask("sys get ver") != BANNER.encode() + b"\r\n"


def test_bytes_travel_at_the_wire_rate(term):
    t0 = term.clock.now_us
    term.link.node_write(b"sys get hweui\r\n")
    assert term.wait_for("0004A30B001A55ED\r\n", 1) - t0 == 33 * char_time_us(57600)
