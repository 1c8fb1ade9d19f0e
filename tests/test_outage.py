"""Three days without a network: a climate node keeps what its ring holds, reports what
gave way in node records, and once the network is back drains the backlog in full frames
within the duty cycle and TTN's fair use. Every reading is delivered or reported dropped."""
from __future__ import annotations

from collections import defaultdict

import pytest

from host_tools.ledger import Ledger
from simulators.network import eu868
from simulators.scenario import Simulation

HOUR_US = 3600 * 10**6
RTC_EPOCH = 946684800       # the node's clock counts from 2000-01-01


def run_outage(tmp_path, interval_s, queue_max, outage_h=72, before_h=6, after_h=12):
    # Seed 48: a dry spell, so every wake is a reading slot (docs/kinds/climate.md).
    sim = Simulation(kind="climate", hours=before_h + outage_h + after_h, seed=48,
                     out_dir=tmp_path, interval_s=interval_s, config={"queue_max": queue_max})
    start, end = before_h * HOUR_US, (before_h + outage_h) * HOUR_US
    taken, queued = [], []

    def on_wake(wake):
        taken.extend(wake.readings)
        queued.extend(int(ln.rsplit("=", 1)[1]) for ln in wake.console.splitlines()
                      if "queued=" in ln)
        # The outage, through the network's public switch: from the next wake on.
        sim.network.available = not start <= sim.clock.now_us < end

    uplinks = list(sim.run(on_wake=on_wake))
    assert not sim.stats.decode_errors, sim.stats.decode_errors[:3]
    return sim, uplinks, taken, queued, (start, end)


def check_outage(sim, uplinks, taken, queued, window, queue_max):
    start, end = window
    eui = sim.dev_eui.hex().upper()
    # The host decodes every frame it got, in order, with its ledger.
    with Ledger(sim.out_dir / "ledger.json") as ledger:
        for up in uplinks:
            ledger.accept_frame(eui, up.counter, up.readings)
        account = ledger.account(eui)
    delivered = {r["seq"] for up in uplinks for r in up.readings}
    dropped = {s: d["reason"] for up in uplinks for r in up.readings if r["kind"] == "node"
               for d in r["dropped"] for s in range(d["first"], d["last"] + 1)}
    records = {r["seq"] for up in uplinks for r in up.readings if r["kind"] == "node"}

    # None unaccounted: every seq up to the last is delivered or reported dropped.
    last = max(taken)
    assert last in delivered, "the backlog did not drain before the run ended"
    missing = [s for s in range(last + 1) if s not in delivered and s not in dropped]
    assert missing == [], missing
    assert account["lost"] == 0 and account["gaps"] == [], account
    assert set(taken) | records == set(range(last + 1)), "a seq the node never took"

    # The ring held what fits, the rest gave way (oldest first) and was said so.
    assert max(queued) <= queue_max
    during = [s for s in taken if s in dropped or s in delivered]
    given_way = [s for s in during if dropped.get(s) == "queue full" and s not in delivered]
    assert len(given_way) >= len([s for s in taken if s not in delivered]) > 0
    backlog = [up for up in uplinks if up.t * 1e6 >= end]
    from_outage = {r["seq"] for up in backlog for r in up.readings} & set(taken)
    assert len(from_outage) >= queue_max - 4, "the ring did not keep what fits"
    assert set(dropped.values()) == {"queue full"}, "no power cut, nothing unsendable here"
    assert account["dropped"].get("queue full") == len(given_way)

    # Draining sends full frames: far fewer frames than readings.
    drain = [up for up in backlog if len(up.readings) > 1]
    assert sum(len(up.readings) for up in drain) >= queue_max - 4
    assert len(drain) <= sum(len(up.readings) for up in drain) / 5

    # Duty cycle: replay every transmission of the device (heard or not) through the
    # EU868 sub-band model the modems use; none may start while its sub-band is off.
    sent = sorted((u for u in sim.network.uplinks + sim.network.lost if u.dev_eui == eui),
                  key=lambda u: u.t_us)
    duty = eu868.DutyCycle()
    per_band_hour = defaultdict(int)
    for u in sent:
        assert u.channel_hz, "an uplink without its channel"
        assert duty.wait_us(u.t_us, u.channel_hz) == 0, (u.t_us / 3.6e9, u.channel_hz)
        duty.record(u.t_us, u.channel_hz, u.airtime_us)
        per_band_hour[eu868.sub_band(u.channel_hz).name, u.t_us // HOUR_US] += u.airtime_us
    for (band, hour), us in per_band_hour.items():
        dc = next(b for b in eu868.SUB_BANDS if b.name == band).duty_cycle
        assert us <= dc * HOUR_US, (band, hour, us)

    # Fair use: at most 30 s on air per day of the node's clock, joins included.
    epoch_us = int((sim.clock.epoch_s - RTC_EPOCH) * 1e6)
    days = {(epoch_us + u.t_us) // (86400 * 10**6) for u in sent}
    for day in days:
        lo = day * 86400 * 10**6 - epoch_us
        on_air = sim.network.airtime_us(eui, lo, lo + 86400 * 10**6)
        assert on_air <= 30 * 10**6, (day, on_air)

    drained_at = min(up.t for up in backlog if len(up.readings) == 1 and up.readings[0]["kind"]
                     == "climate" and up.t * 1e6 > end + HOUR_US)
    hours = (drained_at * 1e6 - end) / HOUR_US
    print(f"\n{len(taken)} readings, {len(given_way)} gave way (reported), "
          f"{len(from_outage)} kept and delivered after the outage in {len(drain)} frames; "
          f"drained {hours:.1f} h after the network came back")
    return hours


def test_three_days_offline_every_reading_delivered_or_reported_dropped(tmp_path):
    # Hourly readings and a ring of two days: a day's worth has to give way.
    sim, uplinks, taken, queued, window = run_outage(tmp_path, 3600, 48)
    hours = check_outage(sim, uplinks, taken, queued, window, 48)
    assert hours < 8


@pytest.mark.slow
def test_three_days_offline_at_the_default_interval(tmp_path):
    sim, uplinks, taken, queued, window = run_outage(tmp_path, 900, 192, after_h=18)
    hours = check_outage(sim, uplinks, taken, queued, window, 192)
    assert hours < 12


def test_at_dr0_a_backlog_goes_in_frames_that_fit_never_cut(tmp_path):
    # DR0 carries 51 bytes: two climate readings a frame. Two hours offline, then back;
    # an ACK asked for every 4 readings, so that the node notices within the outage. (At
    # DR0 TTN's 30 s a day is 14 frames: this network allows ten times that.)
    sim = Simulation(kind="climate", hours=9, seed=48, out_dir=tmp_path, interval_s=900,
                     config={"dr": 0, "adr": False, "airtime_s_per_day": 300,
                             "confirm_after": 4})

    def on_wake(wake):
        sim.network.available = not HOUR_US <= sim.clock.now_us < 3 * HOUR_US

    uplinks = list(sim.run(on_wake=on_wake))
    assert not sim.stats.decode_errors and uplinks
    assert all(up.dr == 0 and len(up.frame) // 2 <= 51 for up in uplinks)
    assert max(len(up.readings) for up in uplinks) == 2
    # Nothing cut short: every body decoded whole, and every seq up to the newest came.
    seqs = {r["seq"] for up in uplinks for r in up.readings}
    assert set(range(max(seqs) + 1)) == seqs
