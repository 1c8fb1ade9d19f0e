"""The pytest plugin's example, as a user's CI would write it (docs/pytest-plugin.md):
no import, the fixtures come from the installed plugin."""


def test_our_interval_and_alarm_level(sim_node):
    run = sim_node(kind="climate", hours=3, config={"interval_s": 600, "rain_alarm_mm_h": 10})
    assert len(run.uplinks) == 18 and run.decode_errors == []
    assert all(abs(u.decoded["temperature"] - u.truth["temperature"]) < 0.3 for u in run.uplinks)
    assert "sleep" in run.console


def test_a_failing_probe_is_flagged_in_our_soil_setup(sim_node):
    run = sim_node(kind="soil", hours=1, faults=["smt100_2:absent"])
    assert run.uplinks and all(u.decoded["faults"] == ["smt100_2"] for u in run.uplinks)
    assert all(u.decoded["vwc_1"] is not None for u in run.uplinks)


def test_a_small_mixed_fleet(sim_fleet):
    runs = sim_fleet([("climate", 2), ("water", 1)], hours=1)
    assert [r.sim.kind for r in runs] == ["climate", "climate", "water"]
    assert len({r.sim.dev_eui for r in runs}) == 3
    assert all(len(r.uplinks) == 4 for r in runs)
