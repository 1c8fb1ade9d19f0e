"""`nodectl inventory export`: files The Things Stack and ChirpStack v4 import, checked
against what their documentation requires.

- The Things Stack, "JSON File Reference" (thethingsindustries.com/docs/hardware/devices/
  adding-devices/adding-devices-in-bulk/device-json): a JSON stream of end devices;
  always ids.device_id, ids.dev_eui, ids.join_eui, lorawan_version, lorawan_phy_version,
  frequency_plan_id, supports_join; root_keys.app_key.key for OTAA. Identifiers follow
  the API's pattern ^[a-z0-9](?:[-]?[a-z0-9]){2,}$, at most 36 characters; MACVersion
  and PHYVersion are the API's enums (lorawan-stack api/lorawan.proto), paired as the
  Console pairs them (1.0.2: PHY_V1_0_2_REV_A/B, 1.0.3: PHY_V1_0_3_REV_A).
- ChirpStack v4 (chirpstack api/proto/api/device.proto and chirpstack-rest-api's
  device.swagger.json): CreateDeviceRequest {device: Device} with devEui, name,
  applicationId, deviceProfileId (UUIDs), joinEui, tags; CreateDeviceKeysRequest
  {deviceKeys: DeviceKeys}, where nwkKey holds a LoRaWAN 1.0.x device's AppKey.
"""
from __future__ import annotations

import json
import re
import uuid

import pytest

from host_tools import cli, export, inventory, keys

TTS_ID = re.compile(r"^[a-z0-9](?:[-]?[a-z0-9]){2,}$")
MAC_PHY = {"MAC_V1_0_2": {"PHY_V1_0_2_REV_A", "PHY_V1_0_2_REV_B"},
           "MAC_V1_0_3": {"PHY_V1_0_3_REV_A"},
           "MAC_V1_0_4": {"RP002_V1_0_0", "RP002_V1_0_1", "RP002_V1_0_2", "RP002_V1_0_3",
                          "RP002_V1_0_4"}}
CS_DEVICE_FIELDS = {"devEui", "name", "description", "applicationId", "deviceProfileId",
                    "skipFcntCheck", "isDisabled", "variables", "tags", "joinEui"}
CS_KEYS_FIELDS = {"devEui", "nwkKey", "appKey", "genAppKey"}
APP = "6e0c1f2a-3b4c-4d5e-8f60-718293a4b5c6"
PROFILE = "0a1b2c3d-4e5f-4a6b-9c7d-8e9fa0b1c2d3"
HEX16 = re.compile(r"^[0-9A-F]{16}$")
HEX32 = re.compile(r"^[0-9A-F]{32}$")


@pytest.fixture
def inv(tmp_path):
    path = tmp_path / "inventory.csv"
    rows = [("AC1F09FFFE0A0B0C", "pico-rak3172", "climate", "Sendlinger Tor"),
            ("0004A30B001C2D3E", "pico-rn2483", "climate", ""),
            ("2CF7F12032405F6A", "pico-wioe5", "climate", "Hofgarten; Ost")]
    for eui, board, kind, site in rows:
        inventory.append(path, {"dev_eui": eui, "join_eui": "0000000000000000",
                                "app_key": keys.new_key().hex().upper(),
                                "payload_key": keys.new_key().hex().upper(), "kind": kind,
                                "board": board, "site": site, "created": "2026-06-01T00:00:00+00:00"})
    return path


def json_stream(text: str) -> list[dict]:
    """Objects one after the other, as ttn-lw-cli reads a stream from stdin."""
    dec, out, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return out
        obj, i = dec.raw_decode(text, i)
        out.append(obj)


def test_ttn_export_has_every_field_the_things_stack_requires(inv, tmp_path):
    out = tmp_path / "devices.json"
    assert cli.main(["inventory", "export", "--format", "ttn", "--inventory", str(inv),
                     "--out", str(out)]) == 0
    devices = json_stream(out.read_text())
    rows = inventory.read(inv)
    assert [d["ids"]["dev_eui"] for d in devices] == list(rows)
    for d in devices:
        row = rows[d["ids"]["dev_eui"]]
        ids = d["ids"]
        assert TTS_ID.match(ids["device_id"]) and len(ids["device_id"]) <= 36
        assert HEX16.match(ids["dev_eui"]) and HEX16.match(ids["join_eui"])
        assert d["lorawan_phy_version"] in MAC_PHY[d["lorawan_version"]]
        assert d["frequency_plan_id"] == "EU_863_870_TTN" and d["supports_join"] is True
        assert d["root_keys"] == {"app_key": {"key": row["app_key"]}}
        assert HEX32.match(d["root_keys"]["app_key"]["key"])
        assert all(TTS_ID.match(k) and len(v) <= 200 for k, v in d.get("attributes", {}).items())
    # The RAK3172's RUI3 says LoRaWAN 1.0.3; the others go as 1.0.2 rev B.
    assert [d["lorawan_version"] for d in devices] == ["MAC_V1_0_3", "MAC_V1_0_2", "MAC_V1_0_2"]


def test_chirpstack_export_is_the_bodies_of_its_create_device_and_keys_calls(inv, tmp_path):
    out = tmp_path / "cs.json"
    assert cli.main(["inventory", "export", "--format", "chirpstack", "--inventory", str(inv),
                     "--application-id", APP, "--device-profile-id", PROFILE.upper(),
                     "--out", str(out)]) == 0
    items = json.loads(out.read_text())
    rows = inventory.read(inv)
    assert len(items) == 3
    for item in items:
        dev, dk = item["device"], item["deviceKeys"]
        assert set(dev) <= CS_DEVICE_FIELDS and set(dk) <= CS_KEYS_FIELDS
        assert uuid.UUID(dev["applicationId"]) == uuid.UUID(APP)
        assert dev["deviceProfileId"] == PROFILE          # normalised to ChirpStack's form
        assert HEX16.match(dev["devEui"]) and dk["devEui"] == dev["devEui"]
        # LoRaWAN 1.0.x: the AppKey goes in nwkKey; appKey is for 1.1 devices only
        assert dk["nwkKey"] == rows[dev["devEui"]]["app_key"] and "appKey" not in dk
        assert all(isinstance(v, str) for v in dev["tags"].values())


def test_exports_are_owner_only_and_never_carry_a_payload_key(inv, tmp_path):
    rows = inventory.read(inv)
    for fmt, extra in (("ttn", {}), ("chirpstack", {"application_id": APP,
                                                    "device_profile_id": PROFILE})):
        out = tmp_path / f"{fmt}.json"
        assert export.export(inv, fmt, out, **extra) == 3
        assert out.stat().st_mode & 0o777 == 0o600
        text = out.read_text()
        for row in rows.values():
            assert row["payload_key"] not in text and row["payload_key"].lower() not in text


def test_chirpstack_export_without_valid_uuids_writes_nothing(inv, tmp_path, capsys):
    out = tmp_path / "cs.json"
    assert cli.main(["inventory", "export", "--format", "chirpstack", "--inventory", str(inv),
                     "--application-id", "my-app", "--device-profile-id", PROFILE,
                     "--out", str(out)]) == 2
    assert "--application-id must be the UUID" in capsys.readouterr().err
    assert not out.exists()


def test_export_of_a_missing_inventory_says_so(tmp_path, capsys):
    assert cli.main(["inventory", "export", "--format", "ttn", "--inventory",
                     str(tmp_path / "none.csv"), "--out", str(tmp_path / "x.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
