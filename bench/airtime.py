"""Time on air per kind at SF7-SF12 (EU868, 125 kHz, CR 4/5, explicit header, CRC on;
the Semtech formula in simulators/network/eu868.py) and airtime per day at the kind's
default interval against TTN's fair-use 30 s a day (lorawan-modems.md §2.4)."""
from __future__ import annotations

from simulators.network import eu868

TTN_FAIR_USE_S = 30.0
SFS = (7, 8, 9, 10, 11, 12)


def toa_ms(app_bytes: int, sf: int) -> float:
    """Uplink time on air of `app_bytes` of FRMPayload (no FOpts) at `sf`, 125 kHz."""
    return eu868.time_on_air_us(eu868.phy_len_uplink(int(app_bytes)), sf, 125_000) / 1000.0


def per_day_s(app_bytes: int, sf: int, interval_s: float, extra_per_day: float = 0.0) -> float:
    """Airtime a day: 86400 / interval readings (+ extra uplinks, e.g. rain alarms)."""
    n = 86400.0 / interval_s + extra_per_day
    return n * toa_ms(app_bytes, sf) / 1000.0


def figures(typical_bytes: int, worst_bytes: int, interval_s: float, extra_per_day: float = 0.0) -> dict:
    return {
        "interval_s": interval_s,
        "uplinks_per_day": round(86400.0 / interval_s + extra_per_day, 2),
        "toa_ms": {f"SF{sf}": {"typical": round(toa_ms(typical_bytes, sf), 1),
                               "worst": round(toa_ms(worst_bytes, sf), 1)} for sf in SFS},
        "per_day_s": {f"SF{sf}": round(per_day_s(typical_bytes, sf, interval_s, extra_per_day), 2)
                      for sf in SFS},
        "fair_use_s": TTN_FAIR_USE_S,
    }


def measured(uplinks: list, hours: float) -> dict:
    """What the simulated network put on air for this node (uplinks: scenario.Uplink),
    scaled to a day; the data rates it used."""
    total_ms = sum(u.airtime_ms for u in uplinks)
    drs = sorted({u.dr for u in uplinks})
    return {"uplinks": len(uplinks), "airtime_s": round(total_ms / 1000.0, 2),
            "per_day_s": round(total_ms / 1000.0 * 24.0 / hours, 2) if hours else None,
            "data_rates": drs}
