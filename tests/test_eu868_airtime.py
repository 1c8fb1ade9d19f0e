"""EU868 radio arithmetic: time on air, payload limits, duty cycle."""
import math
import random

import pytest

from simulators.network import eu868
from simulators.network.eu868 import DutyCycle, phy_len_uplink, time_on_air_us


def semtech_ms(pl, sf, bw_khz=125, crc=1, ih=0, cr=1, npre=8):
    """SX1276 datasheet 4.1.1.6 written out again, in float milliseconds, symbol by symbol."""
    t_sym = 2 ** sf / bw_khz
    de = 1 if t_sym > 16 else 0
    t_preamble = (npre + 4.25) * t_sym
    n_payload = 8 + max(math.ceil((8 * pl - 4 * sf + 28 + 16 * crc - 20 * ih)
                                  / (4 * (sf - 2 * de))) * (cr + 4), 0)
    return t_preamble + n_payload * t_sym


# --- published values --------------------------------------------------------------
@pytest.mark.parametrize("pl, sf, ms", [
    (10, 7, 41.216),     # rfwireless-world LoRaWAN airtime calculator worked example
    (10, 11, 577.536),   # same source, SF11 (low-data-rate optimisation on)
    (13, 9, 164.864),    # Semtech AN1200.13 spreadsheet
])
def test_airtime_matches_published_calculators(pl, sf, ms):
    assert time_on_air_us(pl, sf) == round(ms * 1000)


def test_airtime_51_byte_payload_at_sf12_by_hand():
    # PL = 51 + 13 = 64; Tsym = 4096/125 kHz = 32.768 ms; LDRO on (DE = 1)
    # payload symbols = 8 + ceil((512 - 48 + 28 + 16) / 40) * 5 = 8 + 13 * 5 = 73
    # ToA = (8 + 4.25 + 73) * 32.768 ms = 2793.472 ms
    assert phy_len_uplink(51) == 64
    assert time_on_air_us(64, 12) == 2_793_472


def test_airtime_10_byte_payload_at_sf7_by_hand():
    # PL = 23; Tsym = 1.024 ms; 8 + ceil((184 - 28 + 28 + 16) / 28) * 5 = 8 + 8 * 5 = 48
    # ToA = (12.25 + 48) * 1.024 ms = 61.696 ms
    assert time_on_air_us(13 + 10, 7) == 61_696


@pytest.mark.parametrize("sf", range(7, 13))
def test_airtime_agrees_with_independent_formula_for_every_payload(sf):
    for app_len in range(0, 243):
        pl = 13 + app_len
        assert time_on_air_us(pl, sf) == pytest.approx(semtech_ms(pl, sf) * 1000, abs=0.5)
        assert time_on_air_us(pl, sf, crc=False) == pytest.approx(
            semtech_ms(pl, sf, crc=0) * 1000, abs=0.5)


def test_dr6_uses_250_khz_without_ldro():
    assert eu868.airtime_us(6, phy_len_uplink(10)) == 30_848     # reference: 30.8 ms
    assert time_on_air_us(23, 7, 250_000) == pytest.approx(semtech_ms(23, 7, 250) * 1000)


def test_low_data_rate_optimisation_follows_symbol_length():
    assert time_on_air_us(23, 12) == time_on_air_us(23, 12, ldro=True)
    assert time_on_air_us(23, 11) == time_on_air_us(23, 11, ldro=True)
    assert time_on_air_us(23, 10) == time_on_air_us(23, 10, ldro=False)
    assert time_on_air_us(23, 12, 250_000) == time_on_air_us(23, 12, 250_000, ldro=True)


def test_join_request_airtime_per_data_rate():
    expected_ms = {0: 1482.752, 1: 823.296, 2: 370.688, 3: 205.824, 4: 113.152, 5: 61.696}
    for dr, ms in expected_ms.items():
        assert eu868.airtime_us(dr, eu868.JOIN_REQUEST_PHY_LEN) == round(ms * 1000)


def test_phy_length_counts_overhead_and_fopts():
    assert phy_len_uplink(10) == 23
    assert phy_len_uplink(10, fopts_len=3) == 26
    assert phy_len_uplink(0) == 12          # no payload: no FPort on air
    with pytest.raises(ValueError):
        phy_len_uplink(10, fopts_len=16)


# --- data rates and payload limits -------------------------------------------------
def test_data_rates_map_to_spreading_factors():
    assert [eu868.DATA_RATES[dr] for dr in range(6)] == [
        (12, 125_000), (11, 125_000), (10, 125_000), (9, 125_000), (8, 125_000), (7, 125_000)]
    assert eu868.DATA_RATES[6] == (7, 250_000)


def test_max_payload_per_data_rate():
    assert [eu868.max_payload(dr) for dr in range(8)] == [51, 51, 51, 115, 242, 242, 242, 242]
    assert eu868.max_payload(0, fopts_len=15) == 36


# --- sub-bands and duty cycle ------------------------------------------------------
def test_default_channels_are_in_the_one_percent_band():
    for ch in eu868.DEFAULT_CHANNELS:
        band = eu868.sub_band(ch)
        assert band.name == "BAND1" and band.dc_inverse == 100
    assert eu868.sub_band(eu868.RX2_FREQUENCY).dc_inverse == 10       # 10 %
    assert eu868.sub_band(868_900_000).dc_inverse == 1000             # 0.1 %
    assert eu868.sub_band(864_000_000).dc_inverse == 1000
    with pytest.raises(ValueError):
        eu868.sub_band(915_000_000)


def test_band_is_off_for_ninety_nine_airtimes_after_a_one_percent_frame():
    dc = DutyCycle(random.Random(1))
    toa = eu868.airtime_us(0, phy_len_uplink(10))                     # 1482.752 ms
    dc.record(1_000_000, 868_100_000, toa)
    free_at = 1_000_000 + toa * 100                                    # end + 99 * toa
    assert dc.wait_us(1_000_000 + toa, 868_300_000) == toa * 99        # same sub-band
    assert dc.wait_us(free_at - 1, 868_500_000) == 1
    assert dc.wait_us(free_at, 868_100_000) == 0
    assert dc.wait_us(1_000_000 + toa, 867_100_000) == 0               # BAND0 unaffected


def test_ten_percent_band_recovers_after_nine_airtimes():
    dc = DutyCycle()
    dc.record(0, eu868.RX2_FREQUENCY, 100_000)
    assert dc.wait_us(100_000, eu868.RX2_FREQUENCY) == 900_000


def test_pick_channel_is_random_among_free_ones_and_reproducible():
    picks = [DutyCycle(random.Random(7)).pick_channel(0) for _ in range(3)]
    assert picks[0] == picks[1] == picks[2]
    seen = {DutyCycle(random.Random(seed)).pick_channel(0)[0] for seed in range(40)}
    assert seen == set(eu868.DEFAULT_CHANNELS)
    channels = (867_100_000,) + eu868.DEFAULT_CHANNELS
    dc = DutyCycle(random.Random(3))
    dc.record(0, 868_100_000, 50_000)
    assert dc.pick_channel(50_000, channels) == (867_100_000, 0)       # the only free one


def test_pick_channel_reports_the_soonest_wait_when_all_are_blocked():
    dc = DutyCycle()
    dc.record(0, 868_100_000, 50_000)
    channel, wait = dc.pick_channel(50_000)
    assert channel in eu868.DEFAULT_CHANNELS
    assert wait == 50_000 * 99
