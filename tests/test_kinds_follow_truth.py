"""Each kind, two simulated days through `nodectl simulate --json`: every uplink decodes
and every channel follows the simulated truth within the accuracy its schema states."""
from __future__ import annotations

import json

import pytest

from conftest import nodectl
from host_tools import schemas
from simulators import kinds as sim_kinds


@pytest.mark.parametrize("kind", sim_kinds.available())
def test_two_days_decode_and_follow_the_truth(tmp_path, kind):
    r = nodectl("simulate", "--kind", kind, "--hours", 48, "--seed", 9, "--json", "--out", tmp_path,
                timeout=600)
    uplinks = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    interval = getattr(sim_kinds.rig_class(kind), "DEFAULT_INTERVAL_S", 900)
    assert len(uplinks) >= 48 * 3600 // interval - 1
    schema = schemas.schema_for_kind(kind)
    checked = 0
    for u in uplinks:
        assert "error" not in u["decoded"], u
        for ch in schema.channels:
            got, true = u["decoded"].get(ch.name), u["truth"].get(ch.name)
            if got is None or true is None:
                continue
            assert abs(got - true) <= ch.accuracy, (ch.name, got, true, u["t"])
            checked += 1
    assert checked >= len(uplinks) * len(schema.channels) * 0.9
