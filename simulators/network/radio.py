"""The radio side of the one gateway: link budget per device and collisions with capture.

    link = Link.at_distance(1500)                 # or Link(path_loss_db=130), or Link() (bench)
    rssi, snr = link.measure(tx_eirp_dbm(0), 125_000, rng)
    demodulates(snr, sf=9)                        # above the SF's demodulation floor?

Sources:
- noise floor: -174 dBm/Hz + 10 log10(BW) + NF with NF = 6 dB, the receiver noise figure Semtech
  uses in its sensitivity figures (AN1200.22 "LoRa Modulation Basics", section 4; the SX1276
  datasheet's sensitivities, e.g. -123 dBm at SF7/125 kHz, follow from it within ~1.5 dB);
- demodulation floor per SF: SNR -7.5 (SF7), -10, -12.5, -15, -17.5, -20 dB (SF12) from the
  SX1276/77/78/79 datasheet, section 4.1.1.2 table "Range of Spreading Factors"; the same table
  is ChirpStack's `get_required_snr_for_sf` (chirpstack/src/config.rs), which its ADR uses;
- path loss by distance: Okumura-Hata for an urban small/medium city (COST 231 final report,
  section 4.4.1, valid 150-1500 MHz), gateway antenna 30 m, node antenna 1.5 m. Rademacher et
  al., "Path Loss in Urban LoRa Networks" (VTC2021-Fall, arXiv:2109.07768) found Okumura-type
  models give reasonable estimates in a city. Below 1 km the formula is extrapolated;
- shadowing: log-normal, sigma 3.57 dB (Bor, Roedig, Voigt, Alonso, "Do LoRa Low-Power
  Wide-Area Networks Scale?", MSWiM 2016; LoRaSim `loraDir.py` var=3.57), drawn per frame
  from the network's seeded generator;
- reported SNR: a LoRa receiver's SNR estimate stops growing around +10 dB for strong signals
  (gateway logs show `"lsnr":10.5` at RSSI -29 dBm, github.com/ch2i/loragw-setup issue 3), so
  the reported value is capped at +10 dB; demodulation uses the uncapped value;
- power: an EU868 device's TXPower index i is MaxEIRP - 2i dB, MaxEIRP 16 dBm, i = 0..7
  (LoRaWAN Regional Parameters RP002-1.0.x, EU863-870 "TX power table"); the gateway sends at
  the ETSI EN 300 220 limit of the sub-band (lorawan-modems.md section 2.2): 14 dBm (25 mW
  ERP) in RX1 on 868.1-868.5 MHz, 27 dBm (500 mW ERP) in RX2 on 869.525 MHz; ERP and EIRP
  are not told apart (2.15 dB);
- collisions and capture: LoRaSim (Bor et al. 2016, `loraDir.py` checkcollision with
  full_collision): two frames interfere when they share channel, spreading factor and
  bandwidth and overlap in time, unless the earlier one ends within the first 3 (= 8 - 5)
  preamble symbols of the later one (the receiver needs the last 5 to lock on). Of two that
  interfere, one survives only if it is at least 6 dB stronger at the gateway; otherwise
  both are lost.

Limits: one gateway with unlimited demodulators (the SX1301 has 8), no inter-SF interference,
no half-duplex loss while the gateway transmits, shadowing independent from frame to frame.
"""
from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass

THERMAL_NOISE_DBM_HZ = -174.0
NOISE_FIGURE_DB = 6.0
REQUIRED_SNR_DB = {7: -7.5, 8: -10.0, 9: -12.5, 10: -15.0, 11: -17.5, 12: -20.0}
SNR_REPORT_MAX_DB = 10.0
SHADOWING_SIGMA_DB = 3.57
DEVICE_MAX_EIRP_DBM = 16.0
MAX_TX_POWER_INDEX = 7
GATEWAY_RX1_DBM = 14.0
GATEWAY_RX2_DBM = 27.0
CAPTURE_THRESHOLD_DB = 6.0
PREAMBLE_SYMBOLS = 8
LOCK_SYMBOLS = 5

# A device nobody placed sits on the gateway's bench: the fixed link the first network model
# reported (RSSI -60 dBm, SNR +8 dB), never lost to the link budget.
BENCH_RSSI_DBM = -60
BENCH_SNR_DB = 8


def noise_floor_dbm(bw_hz: int) -> float:
    return THERMAL_NOISE_DBM_HZ + 10 * math.log10(bw_hz) + NOISE_FIGURE_DB


def required_snr_db(sf: int) -> float:
    return REQUIRED_SNR_DB[sf]


def demodulates(snr_db: float, sf: int) -> bool:
    return snr_db >= REQUIRED_SNR_DB[sf]


def tx_eirp_dbm(tx_power_index: int) -> float:
    if not 0 <= tx_power_index <= MAX_TX_POWER_INDEX:
        raise ValueError(f"EU868 TXPower index is 0..{MAX_TX_POWER_INDEX}")
    return DEVICE_MAX_EIRP_DBM - 2 * tx_power_index


def hata_urban_db(distance_m: float, f_hz: float = 868e6, h_gateway_m: float = 30.0,
                  h_node_m: float = 1.5) -> float:
    """Okumura-Hata median path loss, urban, small/medium city."""
    if distance_m <= 0:
        raise ValueError("distance must be positive")
    f = f_hz / 1e6
    a_hm = (1.1 * math.log10(f) - 0.7) * h_node_m - (1.56 * math.log10(f) - 0.8)
    return (69.55 + 26.16 * math.log10(f) - 13.82 * math.log10(h_gateway_m) - a_hm
            + (44.9 - 6.55 * math.log10(h_gateway_m)) * math.log10(distance_m / 1000))


@dataclass
class Link:
    """The path between one device and the gateway. `path_loss_db=None` is the bench link."""
    path_loss_db: float | None = None
    shadowing_db: float = SHADOWING_SIGMA_DB
    distance_m: float | None = None

    @classmethod
    def at_distance(cls, distance_m: float, **kw) -> "Link":
        return cls(path_loss_db=hata_urban_db(distance_m), distance_m=distance_m, **kw)

    @property
    def bench(self) -> bool:
        return self.path_loss_db is None

    def measure(self, eirp_dbm: float, bw_hz: int, rng: random.Random) -> tuple[float, float]:
        """(RSSI dBm, true SNR dB) of one frame sent at `eirp_dbm`."""
        if self.bench:
            return float(BENCH_RSSI_DBM), float(BENCH_SNR_DB)
        shadow = rng.gauss(0.0, self.shadowing_db) if self.shadowing_db else 0.0
        rssi = eirp_dbm - self.path_loss_db - shadow
        return rssi, rssi - noise_floor_dbm(bw_hz)


def reported_snr(snr_db: float) -> float:
    return min(snr_db, SNR_REPORT_MAX_DB)


# --- collisions ---------------------------------------------------------------------------
@dataclass
class Transmission:
    """One frame on air as the gateway hears it."""
    start_us: int
    airtime_us: int
    channel_hz: int
    sf: int
    bw_hz: int
    rssi_dbm: float
    record: object = None       # what the network keeps for this frame (Uplink, JoinAttempt)
    collided: bool = False

    @property
    def end_us(self) -> int:
        return self.start_us + self.airtime_us

    @property
    def symbol_us(self) -> float:
        return 2 ** self.sf * 1e6 / self.bw_hz


def interfere(a: Transmission, b: Transmission) -> bool:
    """Same channel, SF and bandwidth, overlapping beyond the later frame's first 3 preamble
    symbols (LoRaSim timingCollision)."""
    if (a.channel_hz, a.sf, a.bw_hz) != (b.channel_hz, b.sf, b.bw_hz):
        return False
    early, late = (a, b) if a.start_us <= b.start_us else (b, a)
    critical = late.start_us + (PREAMBLE_SYMBOLS - LOCK_SYMBOLS) * late.symbol_us
    return early.end_us > critical and late.start_us < early.end_us


def capture_losers(a: Transmission, b: Transmission) -> tuple[Transmission, ...]:
    """Which of two interfering frames are lost (LoRaSim powerCollision)."""
    if abs(a.rssi_dbm - b.rssi_dbm) < CAPTURE_THRESHOLD_DB:
        return (a, b)
    return (b,) if a.rssi_dbm > b.rssi_dbm else (a,)


class Air:
    """Every frame the gateway could demodulate, by (channel, SF, bandwidth), in start order."""

    def __init__(self):
        self._frames: dict[tuple, list[Transmission]] = {}
        self._starts: dict[tuple, list[int]] = {}
        self._longest_us = 0

    def __iter__(self):
        for frames in self._frames.values():
            yield from frames

    def add(self, tx: Transmission) -> list[Transmission]:
        """Put `tx` on air; return the frames (old ones and perhaps `tx`) it makes lose now
        and mark them `collided`. A frame lost already still interferes: its energy is there."""
        key = (tx.channel_hz, tx.sf, tx.bw_hz)
        frames = self._frames.setdefault(key, [])
        starts = self._starts.setdefault(key, [])
        lo = bisect.bisect_left(starts, tx.start_us - self._longest_us)
        hi = bisect.bisect_left(starts, tx.end_us)
        losers = []
        for other in frames[lo:hi]:
            if interfere(tx, other):
                _mark(capture_losers(tx, other), losers)
        i = bisect.bisect_right(starts, tx.start_us)
        starts.insert(i, tx.start_us)
        frames.insert(i, tx)
        self._longest_us = max(self._longest_us, tx.airtime_us)
        return losers

    def resolve(self) -> list[Transmission]:
        """Check every pair again; return the frames newly found collided."""
        losers = []
        for frames in self._frames.values():
            for i, a in enumerate(frames):
                for b in frames[i + 1:]:
                    if b.start_us >= a.end_us:
                        break
                    if interfere(a, b):
                        _mark(capture_losers(a, b), losers)
        return losers


def _mark(lost, losers: list) -> None:
    for t in lost:
        if not t.collided:
            t.collided = True
            losers.append(t)
