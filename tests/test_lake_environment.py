"""The lake model: reproducible, a daily photosynthesis swing of oxygen and pH, and
pollution events that raise the ions and draw the oxygen down."""
from simulators.clock import DEFAULT_EPOCH
from simulators.environment.lake import Lake

H = 3600


def test_same_seed_same_water_other_seed_other_water():
    t = DEFAULT_EPOCH + 30 * H
    assert Lake(5).at(t) == Lake(5).at(t)
    assert Lake(5).at(t) != Lake(6).at(t)


def test_oxygen_and_ph_peak_in_the_afternoon_and_bottom_out_before_dawn():
    # 17:00 local (15:00 UTC) against 05:00 local, 20 seeds x 3 days; a pollution event
    # may spoil a day, the daily cycle must show on nearly all
    days = wins = 0
    for seed in range(20):
        lake = Lake(seed)
        for day in range(3):
            base = DEFAULT_EPOCH + day * 24 * H
            pm, am = lake.at(base + 15 * H), lake.at(base + 3 * H)
            days += 1
            wins += pm["oxygen"] > am["oxygen"] + 0.5 and pm["ph"] > am["ph"] + 0.2
    assert wins >= 0.85 * days


def test_a_pollution_event_raises_ions_and_lowers_oxygen():
    lake = Lake(9)
    start = lake.events[0][0]
    assert start < 36 * H
    before = lake.at(DEFAULT_EPOCH + start - 60)
    during = lake.at(DEFAULT_EPOCH + start + 2 * H)
    assert during["conductivity"] > before["conductivity"] + 50
    assert during["chloride"] > before["chloride"] + 10
    assert during["ammonium"] > before["ammonium"] + 0.3
    assert during["oxygen"] < before["oxygen"]


def test_relative_and_absolute_pressure_differ_by_the_barometer():
    d = Lake(1).at(DEFAULT_EPOCH + 5 * H)
    baro = d["pressure_abs"] - d["pressure_rel"]
    assert 980 < baro < 1045
    assert 150 < d["pressure_rel"] < 250      # about 2 m of water
