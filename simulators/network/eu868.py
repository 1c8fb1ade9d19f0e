"""EU868 radio arithmetic: data rates, payload limits, time on air, duty cycle.

Sources (see /work/shared/reference/lorawan-modems.md, sections 2.1-2.3):
- data rates, default channels and maximum payloads: LoRaMac-node `src/mac/region/RegionEU868.h`
  (`DataratesEU868`, `BandwidthsEU868`, `MaxPayloadOfDatarateEU868`) and LoRaWAN Regional
  Parameters RP002 for EU863-870;
- sub-bands and duty cycles: LoRaMac-node `EU868_BAND0..5` (ETSI EN 300 220);
- time on air: Semtech SX1276 datasheet section 4.1.1.6 / AN1200.13 "LoRa Modem Designer's Guide".

All times are integer microseconds, like the simulator's clock. For the EU868 bandwidths
(125 and 250 kHz) every LoRa time on air is a whole number of microseconds, so nothing rounds.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction

# --- data rates ----------------------------------------------------------------
# DR -> (spreading factor, bandwidth in Hz); DR7 is FSK 50 kbit/s and has no LoRa airtime here.
DATA_RATES = {
    0: (12, 125_000),
    1: (11, 125_000),
    2: (10, 125_000),
    3: (9, 125_000),
    4: (8, 125_000),
    5: (7, 125_000),
    6: (7, 250_000),
}

# Maximum FRMPayload (application payload, "N") per DR with no FOpts, not repeater-compatible:
# LoRaMac-node MaxPayloadOfDatarateEU868. FOpts bytes count against it.
MAX_PAYLOAD = (51, 51, 51, 115, 242, 242, 242, 242)

# LoRaWAN overhead of a data frame around FRMPayload: MHDR 1 + FHDR 7 (DevAddr 4, FCtrl 1,
# FCnt 2) + FPort 1 + MIC 4. FPort is present only when there is a payload.
MHDR_FHDR_MIC = 12
JOIN_REQUEST_PHY_LEN = 23   # MHDR 1 + JoinEUI 8 + DevEUI 8 + DevNonce 2 + MIC 4
JOIN_ACCEPT_PHY_LEN = 17    # without CFList (33 with one)

# --- channels and windows ------------------------------------------------------
DEFAULT_CHANNELS = (868_100_000, 868_300_000, 868_500_000)   # DR0-5, all in sub-band g1
RX2_FREQUENCY = 869_525_000
RX2_DR = 0
RECEIVE_DELAY1_US = 1_000_000       # EU868_RECEIVE_DELAY1
RECEIVE_DELAY2_US = 2_000_000       # EU868_RECEIVE_DELAY2
JOIN_ACCEPT_DELAY1_US = 5_000_000   # EU868_JOIN_ACCEPT_DELAY1
JOIN_ACCEPT_DELAY2_US = 6_000_000   # EU868_JOIN_ACCEPT_DELAY2


@dataclass(frozen=True)
class SubBand:
    name: str
    low_hz: int        # inclusive
    high_hz: int       # inclusive
    dc_inverse: int    # duty cycle = 1 / dc_inverse (100 = 1 %)

    @property
    def duty_cycle(self) -> float:
        return 1 / self.dc_inverse


# LoRaMac-node EU868_BAND0..5 with the ETSI ranges (reference section 2.2).
SUB_BANDS = (
    SubBand("BAND5", 863_000_000, 865_000_000, 1000),   # 0.1 %, ETSI K
    SubBand("BAND0", 865_000_000, 868_000_000, 100),    # 1 %
    SubBand("BAND1", 868_000_000, 868_600_000, 100),    # 1 %, default channels
    SubBand("BAND2", 868_700_000, 869_200_000, 1000),   # 0.1 %, ETSI N
    SubBand("BAND3", 869_400_000, 869_650_000, 10),     # 10 %, RX2
    SubBand("BAND4", 869_700_000, 870_000_000, 100),    # 1 %
)


def sub_band(channel_hz: int) -> SubBand:
    # 865.0 MHz belongs to both BAND5's upper and BAND0's lower edge in the table; the first
    # match wins, which is what LoRaMac-node's ordered range checks do.
    for band in SUB_BANDS:
        if band.low_hz <= channel_hz <= band.high_hz:
            return band
    raise ValueError(f"{channel_hz} Hz is outside every EU868 sub-band")


# --- time on air ---------------------------------------------------------------
def time_on_air_us(payload_len_phy: int, sf: int, bw_hz: int = 125_000, cr: int = 1,
                   preamble: int = 8, explicit_header: bool = True, crc: bool = True,
                   ldro: bool | None = None) -> int:
    """LoRa time on air in microseconds of a PHYPayload of `payload_len_phy` bytes.

    Semtech SX1276 datasheet section 4.1.1.6 (= AN1200.13):
        Tsym     = 2^SF / BW
        Tpre     = (Npreamble + 4.25) * Tsym
        Npayload = 8 + max(ceil((8*PL - 4*SF + 28 + 16*CRC - 20*IH) / (4*(SF - 2*DE))) * (CR+4), 0)
        ToA      = Tpre + Npayload * Tsym
    with IH = 1 for implicit header, DE = 1 when low-data-rate optimisation is on. `ldro=None`
    turns it on when a symbol lasts longer than 16 ms: SF11 and SF12 at 125 kHz, as LoRaWAN
    requires, and SF12 at 250 kHz, as LoRaMac-node does.
    LoRaWAN uplinks carry a CRC, downlinks do not.
    """
    if not 6 <= sf <= 12:
        raise ValueError(f"spreading factor {sf} out of range")
    if payload_len_phy < 0 or not 1 <= cr <= 4:
        raise ValueError("bad payload length or coding rate")
    tsym = Fraction(2 ** sf * 1_000_000, bw_hz)
    if ldro is None:
        ldro = tsym > 16_000
    num = 8 * payload_len_phy - 4 * sf + 28 + 16 * int(crc) - 20 * int(not explicit_header)
    den = 4 * (sf - 2 * int(ldro))
    n_payload = 8 + max(-(-num // den) * (cr + 4), 0)        # -(-a // b) is ceil for ints
    toa = (preamble + Fraction(17, 4)) * tsym + n_payload * tsym
    return round(toa)


def phy_len_uplink(app_len: int, fopts_len: int = 0) -> int:
    """PHYPayload bytes of a data uplink with `app_len` bytes of FRMPayload.

    13 bytes of overhead (MHDR, FHDR, FPort, MIC) plus FOpts. A frame with no payload has no
    FPort either (LoRaMac-node PrepareFrame writes FPort only with data), so it is 12 bytes.
    """
    if not 0 <= fopts_len <= 15:
        raise ValueError("FOpts is 0..15 bytes")
    return app_len + fopts_len + MHDR_FHDR_MIC + (1 if app_len else 0)


def airtime_us(dr: int, payload_len_phy: int, uplink: bool = True) -> int:
    """Time on air at an EU868 data rate (uplinks with CRC, downlinks without)."""
    sf, bw = DATA_RATES[dr]
    return time_on_air_us(payload_len_phy, sf, bw, crc=uplink)


def max_payload(dr: int, fopts_len: int = 0) -> int:
    """Largest FRMPayload at `dr` when `fopts_len` bytes of MAC commands ride along."""
    return MAX_PAYLOAD[dr] - fopts_len


# --- duty cycle ----------------------------------------------------------------
class DutyCycle:
    """Per-device sub-band duty-cycle tracker.

    After a transmission of airtime t in sub-band b, b is off for t * (1/dc - 1) (LoRaWAN
    spec, Toff = ToA / DC - ToA); other sub-bands stay usable. This is the classic rule,
    not LoRaMac-node 4.7's time-credit bookkeeping: it is never more permissive for
    back-to-back frames.
    """

    def __init__(self, rng: random.Random | None = None):
        self.rng = rng or random.Random(0)
        self._free_at: dict[str, int] = {}   # sub-band name -> first free instant (us)

    def record(self, now_us: int, channel_hz: int, airtime: int) -> None:
        band = sub_band(channel_hz)
        end = now_us + airtime
        self._free_at[band.name] = max(self._free_at.get(band.name, 0),
                                       end + airtime * (band.dc_inverse - 1))

    def wait_us(self, now_us: int, channel_hz: int) -> int:
        """How long from `now_us` until `channel_hz` may transmit (0 = now)."""
        return max(0, self._free_at.get(sub_band(channel_hz).name, 0) - now_us)

    def pick_channel(self, now_us: int, channels=DEFAULT_CHANNELS) -> tuple[int, int]:
        """(channel, wait_us): a random free channel, else the one free soonest."""
        waits = [(self.wait_us(now_us, ch), ch) for ch in channels]
        free = [ch for w, ch in waits if w == 0]
        if free:
            return self.rng.choice(free), 0
        wait, ch = min(waits)
        return ch, wait
