"""Network-side ADR: ChirpStack's default algorithm ("Default ADR algorithm (LoRa only)").

    history = AdrHistory(); history.add(fcnt, snr_db, tx_power_index)
    dr, tx_power_index = decide(history, dr=3, tx_power_index=0)

Follows chirpstack/chirpstack `chirpstack/src/adr/default.rs`:
- the history holds the last 20 uplinks (FCnt, best SNR, TXPower index);
- margin = max SNR of the history - required SNR of the current DR - installation margin;
  the installation margin is 10 dB, ChirpStack's default (`[regions.network]
  installation_margin=10`; The Things Stack uses 15);
- nstep = margin / 3, truncated toward zero;
- nstep > 0: each step raises the DR up to the highest 125 kHz LoRa DR (DR5 in EU868), then
  lowers the TX power (raises the TXPower index up to 7);
- nstep < 0: each step raises the TX power (lowers the index to 0); the DR is never lowered
  (the device's ADR back-off does that); and nothing is done until 20 uplinks at the current
  TX power are in the history, to avoid up/down oscillation.
ChirpStack also tunes NbTrans from the packet loss; this model keeps NbTrans at 1.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from simulators.network import eu868
from simulators.network.radio import MAX_TX_POWER_INDEX, required_snr_db

HISTORY = 20
INSTALLATION_MARGIN_DB = 10.0
MAX_ADR_DR = 5          # highest EU868 LoRa 125 kHz data rate


@dataclass
class AdrEntry:
    fcnt: int
    snr_db: float
    tx_power_index: int


class AdrHistory:
    def __init__(self):
        self.entries: deque[AdrEntry] = deque(maxlen=HISTORY)

    def add(self, fcnt: int, snr_db: float, tx_power_index: int) -> None:
        if self.entries and self.entries[-1].fcnt == fcnt:
            # A retransmission: ChirpStack keeps the best SNR of one FCnt.
            last = self.entries[-1]
            last.snr_db = max(last.snr_db, snr_db)
            return
        self.entries.append(AdrEntry(fcnt, snr_db, tx_power_index))

    def max_snr(self) -> float:
        return max(e.snr_db for e in self.entries)

    def count_at(self, tx_power_index: int) -> int:
        return sum(1 for e in self.entries if e.tx_power_index == tx_power_index)


def steps(nstep: int, dr: int, tx_power_index: int, max_dr: int = MAX_ADR_DR,
          max_tx_power_index: int = MAX_TX_POWER_INDEX) -> tuple[int, int]:
    """(dr, tx_power_index) after `nstep` steps (get_ideal_tx_power_index_and_dr)."""
    while nstep > 0:
        if dr < max_dr:
            dr += 1
        elif tx_power_index < max_tx_power_index:
            tx_power_index += 1
        nstep -= 1
    while nstep < 0:
        if tx_power_index > 0:
            tx_power_index -= 1
        nstep += 1
    return dr, tx_power_index


def margin_db(history: AdrHistory, dr: int,
              installation_margin_db: float = INSTALLATION_MARGIN_DB) -> float:
    sf, _ = eu868.DATA_RATES[dr]
    return history.max_snr() - required_snr_db(sf) - installation_margin_db


def decide(history: AdrHistory, dr: int, tx_power_index: int,
           installation_margin_db: float = INSTALLATION_MARGIN_DB,
           max_dr: int = MAX_ADR_DR) -> tuple[int, int]:
    """The (dr, tx_power_index) the network wants the device to use next."""
    if not history.entries:
        return dr, tx_power_index
    nstep = int(margin_db(history, dr, installation_margin_db) / 3)
    dr = min(dr, max_dr)            # only a DR above the highest allowed is lowered
    if nstep < 0 and history.count_at(tx_power_index) != HISTORY:
        return dr, tx_power_index
    return steps(nstep, dr, tx_power_index, max_dr)
