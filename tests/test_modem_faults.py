"""The modem-fault script, on every modem: no reply, garbage, busy, duty-cycle waits, join
failing for 6 h, the modem rebooting mid-send, a baud mismatch and a backlog drained at
DR0. The real firmware on MicroPython against each dialect's model; no reading may be
lost, and the join requests must stay inside LoRaWAN's back-off, computed here."""
from __future__ import annotations

import pytest

from simulators.network import eu868
from simulators.scenario import FaultWindow, Simulation

MODEMS = ["rak3172", "wioe5", "rn2483"]
# A fresh node whose join server refuses it for 6 h (it is not yet registered, say), then
# every modem fault in turn. Every dialect must join first, so the back-off is exercised on
# each; a module that keeps its session across its own reboot (the RN2483 after `mac save`)
# need not join again after the reboot, and the test does not ask it to.
SCRIPT = ["network:nojoin@0-6", "modem:silent@7-7.7", "modem:garbage@8-8.6",
          "modem:busy@9-9.5", "modem:reboot@10-10.5", "modem:baud@11-11.5"]
HOURS = 14
REFUSED_UNTIL_US = 6 * 3600e6
JOIN_REQUEST_BYTES = 23      # MHDR 1, JoinEUI 8, DevEUI 8, DevNonce 2, MIC 4


def run(sim):
    """(seqs taken, seqs delivered): a frame may carry several readings and a node record."""
    taken, delivered = [], []
    for up in sim.run(on_wake=lambda w: taken.extend(w.readings)):
        delivered += [r["seq"] for r in up.readings if r.get("kind") != "node"]
    return taken, delivered


@pytest.fixture(scope="module", params=MODEMS)
def faulty_day(request, tmp_path_factory):
    sim = Simulation(kind="climate", hours=HOURS, seed=2, modem=request.param,
                     out_dir=tmp_path_factory.mktemp(f"faults-{request.param}"),
                     faults=[FaultWindow.parse(f) for f in SCRIPT])
    taken, delivered = run(sim)
    return sim, taken, delivered


def test_no_reading_is_lost_through_the_modem_fault_script(faulty_day):
    sim, taken, delivered = faulty_day
    assert len(taken) >= HOURS * 4
    assert sorted(set(delivered)) == sorted(taken), "every reading taken reaches the network"
    assert sim.stats.decode_errors == []


def test_every_fault_of_the_script_reached_the_wire(faulty_day):
    sim, _, _ = faulty_day
    injected = sim.modem_faults.injected
    assert all(injected[m] > 0 for m in ("silent", "garbage", "busy", "reboot", "baud")), injected
    refused = [j for j in sim.network.joins if not j.accepted and j.reason == "join failure window"]
    assert refused, "the node tried to join while the join server refused"


def test_the_node_joins_soon_after_the_join_server_answers(faulty_day):
    sim, _, _ = faulty_day
    accepted = [j.t_us for j in sim.network.joins if j.accepted]
    assert accepted and accepted[0] >= REFUSED_UNTIL_US
    # One request per back-off step (1/1000 of a request's airtime after the first hour,
    # 1.5 s at DR0 at most), plus the wake interval the node may be sleeping through.
    assert accepted[0] - REFUSED_UNTIL_US <= (1000 * 1.5 + 900 + 60) * 1e6


def join_airtime_us(sim, attempt):
    dr = getattr(attempt, "dr", None)
    return eu868.airtime_us(sim.config()["dr"] if dr is None else dr, JOIN_REQUEST_BYTES)


def test_join_requests_stay_within_the_lorawan_back_off(faulty_day):
    """LoRaWAN 1.0.4 section 7: from the first join request of a series, the requests'
    aggregated airtime is at most 36 s in the first hour, 36 s in the next 10 hours, and
    8.7 s in any 24 hours after that. A join accept ends the series."""
    sim, _, _ = faulty_day
    dev = sim.dev_eui.hex().upper()
    series, current = [], []
    for j in sorted((j for j in sim.network.joins if j.dev_eui == dev), key=lambda j: j.t_us):
        current.append((j.t_us, join_airtime_us(sim, j)))
        if j.accepted:
            series.append(current)
            current = []
    series.append(current)
    assert sum(len(s) for s in series) > 3
    hour = 3600e6
    for s in series:
        if not s:
            continue
        t0 = s[0][0]
        assert sum(a for t, a in s if t < t0 + hour) <= 36e6
        assert sum(a for t, a in s if t0 + hour <= t < t0 + 11 * hour) <= 36e6
        late = [(t, a) for t, a in s if t >= t0 + 11 * hour]
        for start, _ in late:
            assert sum(a for t, a in late if start <= t < start + 24 * hour) <= 8.7e6


def test_nothing_empty_or_oversize_went_on_air(faulty_day):
    sim, _, _ = faulty_day
    ups = sim.network.uplinks + sim.network.lost
    assert ups
    for up in ups:
        assert up.payload, "an empty uplink: a frame was refused after it went on air"
        assert len(up.payload) <= eu868.max_payload(up.dr)


@pytest.mark.parametrize("modem", MODEMS)
def test_a_backlog_drains_at_dr0_in_frames_that_fit_and_within_the_duty_cycle(modem, tmp_path):
    """Two hours of a hung modem at DR0 (SF12, 51-byte frames, 1.5-2.5 s on air each) on a
    private network (no 30 s fair-use cap): the backlog drains after, every frame fits DR0,
    no sub-band exceeds its duty cycle."""
    sim = Simulation(kind="climate", hours=10, seed=3, modem=modem, out_dir=tmp_path,
                     config={"dr": 0, "adr": False, "airtime_s_per_day": 600},
                     faults=[FaultWindow.parse("modem:silent@0.5-2.5")])
    taken, delivered = run(sim)
    assert sorted(set(delivered)) == sorted(taken)
    ups = sim.network.uplinks + sim.network.lost
    assert all(0 < len(u.payload) <= 51 and u.dr == 0 for u in ups)
    # ETSI EN 300 220 duty cycle per sub-band, over any hour (lorawan-modems.md §2.2).
    for band in {eu868.sub_band(u.channel_hz) for u in ups}:
        mine = sorted((u.t_us, u.airtime_us) for u in ups if eu868.sub_band(u.channel_hz) == band)
        for start, _ in mine:
            used = sum(a for t, a in mine if start <= t < start + 3600e6)
            assert used <= band.duty_cycle * 3600e6, (band, start, used)
