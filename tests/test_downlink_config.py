"""Configuration by downlink, end to end: `nodectl downlink` seals a command, the
simulated network delivers it after an uplink, the node verifies it, applies it or
rejects it, and says which in its next node record (docs/payload.md, "Downlinks")."""
from __future__ import annotations

import json

import cbor2
import pytest

from conftest import nodectl
from host_tools import envelope, inventory
from simulators.board.image import read_files
from simulators.scenario import Simulation

CONFIG_FILES = ("config.a", "config.b")


def config_files(sim) -> dict[str, bytes]:
    files = read_files(sim.node.flash.path)
    return {n: files.get(n) for n in CONFIG_FILES}


def downlink_cmd(sim, state, *pairs, check=True):
    return nodectl("downlink", "--dev-eui", sim.dev_eui.hex().upper(), "--inventory",
                   sim.inventory_path, "--state", state, "--json", "set", *pairs, check=check)


def confirmations(uplinks):
    """(uplink index, confirmation) of every downlink confirmation the host decoded."""
    out = []
    for i, u in enumerate(uplinks):
        for r in u.readings:
            for c in r.get("downlinks", ()):
                out.append((i, c))
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A climate node for 2.5 h; after given wakes the test queues its downlinks."""
    out = tmp_path_factory.mktemp("downlink")
    sim = Simulation(kind="climate", hours=2.5, seed=5, out_dir=out)
    state = out / "downlinks.json"
    seen = {"wakes": 0, "good": None, "snapshots": {}, "outputs": []}

    def on_wake(wake):
        seen["wakes"] += 1
        seen["outputs"].append(wake.console)      # the node's log lines
        n = seen["wakes"]
        if n == 1:
            r = downlink_cmd(sim, state, "interval_s=600")
            seen["outputs"].append(r.stdout + r.stderr)
            seen["good"] = json.loads(r.stdout)
            sim.network.queue_downlink(sim.dev_eui, seen["good"]["fport"],
                                       bytes.fromhex(seen["good"]["hex"]))
        elif n == 3:
            seen["snapshots"]["applied"] = config_files(sim)
            # The very same frame again: a replay.
            sim.network.queue_downlink(sim.dev_eui, 2, bytes.fromhex(seen["good"]["hex"]))
        elif n == 5:
            forged = bytearray(bytes.fromhex(seen["good"]["hex"]))
            forged[-3] ^= 0x01
            forged[1] = 7             # a fresh-looking counter, but the tag no longer fits
            sim.network.queue_downlink(sim.dev_eui, 2, bytes(forged))
        elif n == 7:
            # Another key entirely, under a fresh counter.
            other = envelope.seal(bytes(range(16)), sim.dev_eui, 9,
                                  cbor2.dumps([1, {"interval_s": 300}]), envelope.DOWNLINK)
            sim.network.queue_downlink(sim.dev_eui, 2, other)
        elif n == 9:
            # What the host refuses, forced onto the air with the right key.
            key = inventory.payload_key(sim.inventory_path, sim.dev_eui.hex())
            bad = envelope.seal(key, sim.dev_eui, 10, cbor2.dumps([1, {"interval_s": -5}]),
                                envelope.DOWNLINK)
            sim.network.queue_downlink(sim.dev_eui, 2, bad)
        elif n == 11:
            seen["snapshots"]["end"] = config_files(sim)

    uplinks = list(sim.run(on_wake=on_wake))
    return sim, uplinks, seen, state


def test_a_downlink_setting_the_interval_is_applied_and_confirmed_in_the_next_record(run):
    sim, uplinks, seen, _ = run
    assert not sim.stats.decode_errors
    good = seen["good"]
    confs = confirmations(uplinks)
    assert confs[0][1] == {"counter": good["counter"], "status": "applied", "keys": ["interval_s"]}
    # Every 15 min until the downlink came (in the receive window of uplink 1); the node
    # sleeps 10 min from then on, but the climate kind keeps its readings on the grid of
    # the interval (docs/kinds/climate.md), so the next reading is at the next 10-min
    # mark, 15 min later: from the uplink confirming it on, every 10 min.
    times = [u.t for u in uplinks]
    confirmed_at = confs[0][0]
    assert confirmed_at == 2
    assert times[1] - times[0] == pytest.approx(900, abs=60)
    gaps = [b - a for a, b in zip(times[confirmed_at:], times[confirmed_at + 1:])]
    assert len(gaps) >= 6
    assert all(g == pytest.approx(600, abs=60) for g in gaps), gaps


def test_replayed_forged_and_invalid_downlinks_are_rejected_and_reported(run):
    sim, uplinks, seen, _ = run
    statuses = [c["status"] for _, c in confirmations(uplinks)]
    assert statuses == ["applied", "replay", "bad frame", "bad frame", "invalid"]
    invalid = confirmations(uplinks)[-1][1]
    assert invalid["keys"] == ["interval_s"] and invalid["counter"] == 10


def test_rejected_downlinks_leave_the_configuration_files_byte_identical(run):
    _, _, seen, _ = run
    applied, end = seen["snapshots"]["applied"], seen["snapshots"]["end"]
    assert applied["config.a"] and applied["config.b"]
    assert end == applied


def test_host_refuses_an_invalid_value_and_takes_no_counter(run, tmp_path):
    sim, _, _, state = run
    before = state.read_bytes()
    r = downlink_cmd(sim, state, "interval_s=-5", check=False)
    assert r.returncode == 2 and not r.stdout
    assert "interval_s must be 60..86400, not -5" in r.stderr
    assert "no downlink was built" in r.stderr
    r = downlink_cmd(sim, state, "no_such_setting=1", check=False)
    assert r.returncode == 2 and "unknown setting" in r.stderr
    assert state.read_bytes() == before


def test_counters_rise_and_the_state_file_is_owner_only(run):
    sim, _, _, state = run
    first = json.loads(downlink_cmd(sim, state, "interval_s=900").stdout)["counter"]
    second = json.loads(downlink_cmd(sim, state, "interval_s=900").stdout)["counter"]
    assert second == first + 1
    assert state.stat().st_mode & 0o077 == 0


def test_no_key_appears_in_any_output(run):
    sim, _, seen, state = run
    r = nodectl("downlink", "--dev-eui", sim.dev_eui.hex(), "--inventory", sim.inventory_path,
                "--state", state, "set", "interval_s=900")
    texts = seen["outputs"] + [r.stdout + r.stderr, state.read_text()]
    for key in (sim.payload_key, sim.app_key):
        for form in (key.hex(), key.hex().upper()):
            assert not any(form in t for t in texts)
