"""The decoder's per-device ledger: replays rejected, repeats recognised, gaps reported,
state kept across runs and never torn."""
from __future__ import annotations

import json
import multiprocessing

import pytest

from host_tools.ledger import Ledger, ReplayError

EUI = "AC1F09FFFE000001"


def test_a_counter_not_above_the_last_is_a_replay_and_changes_nothing(tmp_path):
    path = tmp_path / "state.json"
    with Ledger(path) as led:
        led.accept(EUI, 10, 0)
    before = path.read_bytes()
    for counter in (10, 9):
        with pytest.raises(ReplayError, match="replay"):
            with Ledger(path) as led:
                led.accept(EUI, counter, 1)
    assert path.read_bytes() == before


def test_a_reading_sent_again_under_a_new_counter_is_a_duplicate(tmp_path):
    with Ledger(tmp_path / "s.json") as led:
        assert not led.accept(EUI, 1, 0).duplicate
        assert led.accept(EUI, 2, 0).duplicate
        assert not led.accept(EUI, 3, 1).duplicate
        assert led.devices[EUI]["readings"] == 2


def test_a_skipped_reading_number_is_reported_lost_across_runs(tmp_path):
    path = tmp_path / "s.json"
    with Ledger(path) as led:
        led.accept(EUI, 1, 0)
    with Ledger(path) as led:
        v = led.accept(EUI, 5, 4)
    assert v.lost == [1, 2, 3]
    assert json.loads(path.read_text())["devices"][EUI]["lost"] == 3


def test_readings_behind_the_node_record_in_one_frame_are_not_duplicates(tmp_path):
    # The node record rides first in a frame but was numbered after the readings behind
    # it (found by the soak: a node's first frame lost its readings as "duplicates").
    with Ledger(tmp_path / "s.json") as led:
        record = {"seq": 7, "kind": "node", "dropped": []}
        v = led.accept_frame(EUI, 1, [record, {"seq": 5}, {"seq": 6}])
        assert [x.duplicate for x in v] == [False, False, False]
        v = led.accept_frame(EUI, 2, [{"seq": 8}, {"seq": 6}])
        assert [x.duplicate for x in v] == [False, True]
        assert led.devices[EUI]["readings"] >= 3


def test_a_damaged_state_file_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="damaged"):
        with Ledger(path):
            pass
    assert path.read_text() == "{not json"


def _accept_many(path, start):
    for i in range(50):
        with Ledger(path) as led:
            c = led.devices.get(EUI, {}).get("counter", -1) + 1
            led.accept(EUI, c, c)


def test_two_decoders_at_once_never_lose_an_update(tmp_path):
    path = tmp_path / "s.json"
    procs = [multiprocessing.Process(target=_accept_many, args=(path, k)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    state = json.loads(path.read_text())["devices"][EUI]
    assert state["counter"] == 99 and state["readings"] == 100
