"""`nodectl decode` opens one uplink from the command line, or says clearly why not."""
from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from conftest import nodectl
from host_tools import inventory

VECTORS = Path(__file__).parent / "vectors"


def vector(name):
    return json.loads((VECTORS / f"{name}.json").read_text())


def test_decodes_a_frame_with_a_key_to_the_reading():
    v = vector("climate_negative_temperature")
    i = v["inputs"]
    r = nodectl("decode", v["expected"]["frame"], "--dev-eui", i["dev_eui"], "--key", i["key"])
    out = json.loads(r.stdout)
    assert out["counter"] == i["counter"]
    assert out["temperature"] == -12.34 and out["humidity"] == 87.5 and out["faults"] == []


def test_decodes_with_the_inventory_and_never_prints_the_key(tmp_path):
    v = vector("counter_3_bytes")
    i = v["inputs"]
    inv = tmp_path / "inventory.csv"
    inventory.append(inv, {"dev_eui": i["dev_eui"].upper(), "app_key": "00" * 16,
                           "payload_key": i["key"].upper(), "kind": "climate"})
    assert stat.S_IMODE(inv.stat().st_mode) == 0o600
    r = nodectl("decode", v["expected"]["frame"], "--dev-eui", i["dev_eui"], "--inventory", inv)
    assert json.loads(r.stdout)["counter"] == 70000
    assert i["key"].lower() not in (r.stdout + r.stderr).lower()


@pytest.mark.parametrize("frame_of, reason", [
    (lambda v: v["expected"]["frame"][:-2] + "00", "bad tag"),
    (lambda v: v["expected"]["frame"][:12], "truncated"),
    (lambda v: "e0" + v["expected"]["frame"][2:], "unknown version"),
    (lambda v: "zz", "hexadecimal"),
])
def test_a_bad_frame_gets_a_clear_error(frame_of, reason):
    v = vector("climate_normal")
    i = v["inputs"]
    r = nodectl("decode", frame_of(v), "--dev-eui", i["dev_eui"], "--key", i["key"], check=False)
    assert r.returncode == 2 and r.stdout == ""
    assert reason in r.stderr
    assert i["key"] not in r.stderr


def test_a_wrong_dev_eui_fails_the_tag():
    v = vector("climate_normal")
    r = nodectl("decode", v["expected"]["frame"], "--dev-eui", "0011223344556678",
                "--key", v["inputs"]["key"], check=False)
    assert r.returncode == 2 and "bad tag" in r.stderr


def test_an_unknown_device_in_the_inventory_is_named(tmp_path):
    inv = tmp_path / "inventory.csv"
    inventory.append(inv, {"dev_eui": "AC1F09FFFE000001", "app_key": "00" * 16,
                           "payload_key": "11" * 16})
    r = nodectl("decode", vector("climate_normal")["expected"]["frame"], "--dev-eui",
                "0011223344556677", "--inventory", inv, check=False)
    assert r.returncode == 2 and "0011223344556677 is not in inventory" in r.stderr


def test_inventory_refuses_a_duplicate_device_and_keeps_the_file(tmp_path):
    inv = tmp_path / "inventory.csv"
    row = {"dev_eui": "AC1F09FFFE000001", "app_key": "00" * 16, "payload_key": "11" * 16}
    inventory.append(inv, row)
    before = inv.read_bytes()
    with pytest.raises(inventory.InventoryError, match="already"):
        inventory.append(inv, row)
    assert inv.read_bytes() == before


def test_with_a_state_file_a_replayed_frame_is_rejected(tmp_path):
    v = vector("climate_normal")
    i = v["inputs"]
    args = ("decode", v["expected"]["frame"], "--dev-eui", i["dev_eui"], "--key", i["key"],
            "--state", tmp_path / "state.json")
    first = json.loads(nodectl(*args).stdout)
    assert first["duplicate"] is False and first["lost"] == []
    again = nodectl(*args, check=False)
    assert again.returncode == 2 and "replay" in again.stderr
