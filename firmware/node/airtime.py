"""LoRa time on air of an EU868 uplink, for the node's own budgets (join back-off, fair use).

    airtime.uplink_us(dr=3, app_len=30)     # 287744 µs

The Semtech formula (SX1276 datasheet 4.1.1.6, AN1200.13) in integers: coding rate 4/5,
8-symbol preamble, explicit header, CRC on (uplinks), low data-rate optimisation when a
symbol lasts more than 16 ms (SF11 and SF12 at 125 kHz), as LoRaWAN requires. A data
uplink's PHYPayload is the application payload plus 13 bytes (MHDR, FHDR without FOpts,
FPort, MIC).
"""

from micropython import const
# EU868 DR0..DR6: (spreading factor, bandwidth in kHz), RP002-1.0.3 table 2.4.3.
_DATA_RATES = ((12, 125), (11, 125), (10, 125), (9, 125), (8, 125), (7, 125), (7, 250))
_OVERHEAD = const(13)


def toa_us(phy_len, dr):
    """Time on air (µs, rounded up) of a PHYPayload of `phy_len` bytes at data rate `dr`."""
    sf, bw_khz = _DATA_RATES[dr if 0 <= dr < len(_DATA_RATES) else 0]
    # Tsym = 2^SF / BW: in µs that is 2^SF * 1000 / bw_khz; kept as a fraction over bw_khz.
    sym_num = (1 << sf) * 1000
    ldro = sym_num > 16000 * bw_khz
    num = 8 * phy_len - 4 * sf + 28 + 16
    den = 4 * (sf - (2 if ldro else 0))
    n_payload = 8 + max(-(-num // den) * 5, 0)
    # (8 + 4.25 + n_payload) symbols = (49 + 4 * n_payload) / 4 symbols
    total = (49 + 4 * n_payload) * sym_num
    return -(-total // (4 * bw_khz))


def uplink_us(dr, app_len):
    return toa_us(app_len + _OVERHEAD, dr)
