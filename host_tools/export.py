"""The inventory as files that network servers import (`nodectl inventory export`).

    n = export(Path("inventory.csv"), "ttn", Path("devices.json"))
    n = export(Path("inventory.csv"), "chirpstack", Path("devices.json"),
               application_id=UUID, device_profile_id=UUID)

- "ttn": The Things Stack's JSON end-device format, one object per device in a JSON
  stream ("JSON File Reference", thethingsindustries.com/docs/hardware/devices/
  adding-devices/adding-devices-in-bulk/device-json): ids.device_id, ids.dev_eui,
  ids.join_eui, lorawan_version, lorawan_phy_version, frequency_plan_id and
  supports_join always, root_keys.app_key.key for OTAA. Import with
  `ttn-lw-cli end-devices create --application-id APP < devices.json`, or in the Console
  (Import end devices, "The Things Stack JSON").
- "chirpstack": ChirpStack v4 has no file import; its API creates devices
  (api/device.proto: DeviceService.Create with a Device, CreateKeys with DeviceKeys, whose
  nwk_key holds a LoRaWAN 1.0.x device's AppKey). The file is a JSON array of
  {"device": {...}, "deviceKeys": {...}}, each half the body of one REST call of
  chirpstack-rest-api (POST /api/devices, POST /api/devices/{devEui}/keys), in the
  proto3 JSON names its OpenAPI document uses (devEui, joinEui, nwkKey, ...).
docs/field-guide.md has the exact import commands.

Only what the network server needs leaves: identifiers and the AppKey. The payload key
stays with the city (design.md: the operator must not read the readings). The files
hold AppKeys, so they are written owner-only (0600).
"""
from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

from host_tools import boards, inventory

FORMATS = ("ttn", "chirpstack")
# What each modem's firmware implements (docs/field-guide.md): the RAK3172's RUI3 says
# "LoRaWAN 1.0.3" (lorawan-modems.md §3.2); the RN2483 and Wio-E5 AT firmware are taken
# as 1.0.2 rev B, TTN's usual setting for them. --mac-version overrides.
MAC_VERSIONS = {"1.0.2": ("MAC_V1_0_2", "PHY_V1_0_2_REV_B"),
                "1.0.3": ("MAC_V1_0_3", "PHY_V1_0_3_REV_A"),
                "1.0.4": ("MAC_V1_0_4", "RP002_V1_0_3")}
MODEM_MAC = {"rak3172": "1.0.3", "wioe5": "1.0.2", "rn2483": "1.0.2"}
TTN_ID = re.compile(r"^[a-z0-9](?:[-]?[a-z0-9]){2,}$")     # TTS identifiers, max 36


class ExportError(ValueError):
    pass


def _modem_of(board_name: str) -> str | None:
    try:
        return boards.load(board_name)["modem"]["type"]
    except (boards.BoardError, KeyError):
        return None


def _mac_version(row: dict, override: str | None) -> str:
    if override:
        return override
    return MODEM_MAC.get(_modem_of(row.get("board") or ""), "1.0.2")


def _description(row: dict) -> str:
    parts = [f"{row.get('kind') or 'sensor'} node"]
    if row.get("site"):
        parts.append(f"at {row['site']}")
    if row.get("board"):
        parts.append(f"board {row['board']}")
    return ", ".join(parts)


def ttn_device(row: dict, frequency_plan: str = "EU_863_870_TTN", mac: str | None = None) -> dict:
    eui = row["dev_eui"].upper()
    lorawan, phy = MAC_VERSIONS[_mac_version(row, mac)]
    attributes = {k: row[k] for k in ("kind", "board", "site") if row.get(k)}
    dev = {
        "ids": {"device_id": f"eui-{eui.lower()}", "dev_eui": eui,
                "join_eui": (row.get("join_eui") or "0" * 16).upper()},
        "name": f"{row.get('kind') or 'node'} {eui}",
        "description": _description(row),
        "lorawan_version": lorawan,
        "lorawan_phy_version": phy,
        "frequency_plan_id": frequency_plan,
        "supports_join": True,
        "root_keys": {"app_key": {"key": row["app_key"].upper()}},
    }
    if attributes:
        dev["attributes"] = attributes
    return dev


def chirpstack_device(row: dict, application_id: str, device_profile_id: str) -> dict:
    eui = row["dev_eui"].upper()
    tags = {k: row[k] for k in ("kind", "board", "site") if row.get(k)}
    return {
        "device": {"devEui": eui, "name": f"{row.get('kind') or 'node'}-{eui.lower()}",
                   "description": _description(row), "applicationId": application_id,
                   "deviceProfileId": device_profile_id,
                   "joinEui": (row.get("join_eui") or "0" * 16).upper(), "tags": tags},
        "deviceKeys": {"devEui": eui, "nwkKey": row["app_key"].upper()},
    }


def _uuid(value: str | None, option: str) -> str:
    try:
        return str(uuid.UUID(value or ""))
    except ValueError:
        raise ExportError(f"{option} must be the UUID ChirpStack shows for it "
                          f"(got {value!r}); nothing was written") from None


def export(inventory_path: Path, fmt: str, out: Path, *, application_id: str | None = None,
           device_profile_id: str | None = None, frequency_plan: str = "EU_863_870_TTN",
           mac_version: str | None = None) -> int:
    """Write the export file; returns the number of devices in it."""
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}")
    if mac_version is not None and mac_version not in MAC_VERSIONS:
        raise ExportError(f"--mac-version must be one of {', '.join(MAC_VERSIONS)}")
    rows = list(inventory.read(Path(inventory_path)).values())
    if not rows:
        raise ExportError(f"the inventory {inventory_path} lists no node; nothing was written")
    for row in rows:
        if len(row.get("app_key") or "") != 32 or len(row.get("dev_eui") or "") != 16:
            raise ExportError(f"inventory row {row.get('dev_eui')!r} has no 16-digit DevEUI or "
                              f"32-digit AppKey; nothing was written")
    if fmt == "ttn":
        text = "".join(json.dumps(ttn_device(r, frequency_plan, mac_version), indent=2) + "\n"
                       for r in rows)
    else:
        app = _uuid(application_id, "--application-id")
        profile = _uuid(device_profile_id, "--device-profile-id")
        text = json.dumps([chirpstack_device(r, app, profile) for r in rows], indent=2) + "\n"
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, out)
    return len(rows)
