"""Battery life per kind from the wakes the simulator measured and the datasheet currents
of simulators/power/energy_model.py (docs/energy.md), at SF7, SF9 and SF12; and the
energy balance of the harvesting glass node (simulators/power/harvester.py's sun).

A wake's states come from bench/awake.py (virtual ms). At another spreading factor the
modem wait changes by the difference in time on air; the MCU waits awake for the modem
(the firmware reads the modem's UART until +EVT:TX_DONE), except in light sleeps. Compute
time is estimated from the instructions per wake (bench/callgrind.py) at one MCU cycle per
counted instruction: a lower bound (docs/energy.md).
"""
from __future__ import annotations

import math

from bench.airtime import toa_ms
from simulators.power import energy_model as em
from simulators.power import harvester

SFS = (7, 9, 12)
GOAL_YEARS = 10.0
CYCLES_PER_INSTRUCTION = 1.0


def compute_s(instructions: float | None, mcu_hz: float) -> float:
    if not instructions:
        return 0.0
    return instructions * CYCLES_PER_INSTRUCTION / mcu_hz


def wakes_at_sf(states: list, uplink_bytes: dict, measured_sf: int, sf: int,
                compute_each_s: float, sleep_through_modem: bool = False) -> list[em.Wake]:
    """energy_model.Wake for each measured wake, moved to spreading factor `sf`.
    uplink_bytes: wake index -> list of application payload lengths sent in it.
    `sleep_through_modem`: a what-if, the MCU light-sleeps while the modem transmits and
    listens instead of waiting on its UART awake."""
    out = []
    for w in states:
        sent = uplink_bytes.get(w.index, [])
        toa_then = sum(toa_ms(n, measured_sf) for n in sent) / 1000.0
        toa_now = sum(toa_ms(n, sf) for n in sent) / 1000.0
        sensor_busy = (w.sensor_ms - w.sensor_light_ms) / 1000.0
        modem_busy = max(0.0, (w.modem_ms - w.modem_light_ms) / 1000.0 - toa_then + toa_now)
        light = w.light_ms / 1000.0
        if sleep_through_modem:
            light, modem_busy = light + modem_busy, 0.0
        out.append(em.Wake(active_s=sensor_busy + (compute_each_s if w.reading else 0.0),
                           modem_wait_s=modem_busy, light_s=light,
                           airtime_s=toa_now, rx_s=len(sent) * em.rx_windows_s(sf),
                           readings=1 if w.reading else 0))
    return out


def life(board: em.Board, wakes: list[em.Wake], covered_s: float,
         battery: em.Battery = em.ALKALINE_2AA) -> dict:
    """Years on `battery` for a node whose `wakes` happened over `covered_s` seconds."""
    scale = 86400.0 / covered_s
    day_j = board.sleep_watts() * 86400.0 + scale * sum(board.wake_joules(w) for w in wakes)
    parts = {k: round(v * scale, 3) for k, v in board.breakdown(wakes, covered_s).items()}
    return {"day_j": round(day_j, 3), "avg_uw": round(day_j / 86400.0 * 1e6, 1),
            "years": round(battery.life_years(day_j / 86400.0), 2), "day_j_by_part": parts}


def harvest_by_month(seed: int = 7) -> dict:
    """Mean energy a day the glass node's cell puts into its store, by month (J), from
    the solar model (51.5° N, seeded daily cloudiness, 70 % charging)."""
    from datetime import datetime, timezone
    out = {}
    for month in range(1, 13):
        epoch = datetime(2026, month, 1, tzinfo=timezone.utc).timestamp()
        store = harvester.SolarStore(seed=seed, epoch_s=epoch)
        days = 28
        total = 0.0
        step = harvester.STEP_S
        t = 0.0
        while t < days * 86400:
            total += store.sun_w(t + step / 2) * harvester.EFF_CHARGE * step
            t += step
        out[datetime(2026, month, 1).strftime("%b")] = round(total / days, 1)
    return out


def _store_usable_j() -> float:
    s = harvester.SolarStore()
    return 0.5 * s.c * (s.v_max ** 2 - s.v_min ** 2)


def glass_balance(board: em.Board, wakes: list[em.Wake], covered_s: float, store_run: dict) -> dict:
    use = life(board, wakes, covered_s)
    harvest = harvest_by_month()
    worst = min(harvest, key=harvest.get)
    return {"consumption_day_j": use["day_j"], "harvest_day_j_by_month": harvest,
            "worst_month": worst, "balance_worst_month_j": round(harvest[worst] - use["day_j"], 1),
            "months_in_deficit": [m for m, h in harvest.items() if h < use["day_j"]],
            "store_usable_j": round(_store_usable_j(), 1),
            "simulated_run": store_run}


def years_str(y: float) -> str:
    return "∞" if math.isinf(y) else f"{y:.1f}"
