"""nodectl provision, config, status and selftest: a node's keys and settings over its
USB serial, in the provisioning protocol (host_tools/serial_link.py, docs/provisioning.md).

    result = provision("/dev/ttyACM0", "climate", inventory_path=Path("inventory.csv"),
                       site="Rathausplatz", lat=48.137, lon=11.575)
    config_set("/dev/ttyACM0", ["interval_s=600"], inventory_path=Path("inventory.csv"))

Every function checks what it can before it touches the node, and its errors
(ProvisionError) say what went wrong, what was left as it was, and what to do next.
Keys never leave this module except into the node and the inventory (mode 0600):
results carry their check values (KCV), never the keys.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import stat
import struct
from datetime import datetime, timezone
from pathlib import Path

from host_tools import firmware_build, inventory, keys
from host_tools import serial_link as sl

DEFAULT_JOIN_EUI = bytes(8)      # ChirpStack's "blank" JoinEUI; TTN accepts it for own devices


class ProvisionError(Exception):
    """What went wrong, what was left as it was, what to do next: printed as is."""


def load_options():
    """firmware/node/options.py, the table the node checks settings against."""
    path = firmware_build.FIRMWARE / "node" / "options.py"
    spec = importlib.util.spec_from_file_location("citynodes_node_options", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


OPTIONS = load_options()


def parse_value(key: str, text: str):
    """`text` from the command line as the type the setting has (None: back to the
    firmware's default); ValueError if it is not one."""
    if text == "":
        return None
    spec = OPTIONS.OPTIONS.get(key)
    if spec is None:
        return text                              # OPTIONS.check says it is unknown
    typ = spec[0]
    try:
        if typ == "int":
            return int(text)
        if typ == "num":
            return float(text) if any(c in text for c in ".eE") else int(text)
        if typ == "bool":
            low = text.lower()
            if low in ("true", "yes", "on", "1"):
                return True
            if low in ("false", "no", "off", "0"):
                return False
            raise ValueError
        if typ == "map":
            return json.loads(text)
    except ValueError:
        raise ValueError(f"{key}={text!r}: not a {'number' if typ != 'bool' else 'true/false'}"
                         f"{' (JSON)' if typ == 'map' else ''}") from None
    return text


def parse_settings(pairs: list[str], kind: str | None) -> dict:
    """key=value pairs, each checked as the node checks it (kind None: the kind's own
    keys are checked once the node's kind is known)."""
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{pair!r}: expected key=value (value empty: back to the default)")
        value = parse_value(key, text)
        if value is not None:
            spec = OPTIONS.OPTIONS.get(key)
            only = spec[3] if spec else None
            value = OPTIONS.check(key, value, kind if kind is not None else only)
        out[key] = value
    return out


def read_keys_file(path: Path) -> tuple[bytes, bytes]:
    """(app_key, payload_key) from a JSON file that only its owner can read."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ProvisionError(f"--keys-from {path}: no such file; nothing was changed") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ProvisionError(f"--keys-from {path} can be read by others (mode "
                             f"{stat.S_IMODE(mode):04o}); nothing was changed. Make it owner-"
                             f"only (chmod 600 {path}) and run again")
    try:
        data = json.loads(path.read_text())
        return (keys.parse_hex(data["app_key"], 16, "app_key"),
                keys.parse_hex(data["payload_key"], 16, "payload_key"))
    except (ValueError, KeyError, TypeError) as e:
        raise ProvisionError(f"--keys-from {path}: expected JSON with app_key and payload_key, "
                             f"32 hex digits each ({e}); nothing was changed") from None


def _session(port: str) -> sl.ProvisioningSession:
    try:
        return sl.open_provisioning(port)
    except sl.LinkError as e:
        raise ProvisionError(str(e)) from None


def _refused(e: sl.NodeRefused, what: str, left: str, then: str) -> ProvisionError:
    return ProvisionError(f"the node refused {what}: {e.reply.describe()}. {left} {then}".strip())


def _unlock(link: sl.Link, payload_key: bytes, dev_eui: bytes) -> None:
    challenge = link.ok(sl.CHALLENGE)
    link.ok(sl.UNLOCK, sl.unlock_tag(payload_key, dev_eui, challenge))


def _inventory_key(path: Path | None, dev_eui_hex: str | None) -> bytes | None:
    if path is None or not dev_eui_hex or not Path(path).exists():
        return None
    row = inventory.read(Path(path)).get(dev_eui_hex.upper())
    return bytes.fromhex(row["payload_key"]) if row else None


def _status_summary(st: dict) -> dict:
    """The parts of a STATUS reply a result shows."""
    cfg = st.get("config") or {}
    return {"firmware": st.get("firmware"), "build": st.get("build"), "kind": st.get("kind"),
            "board": st.get("board"), "dev_eui": cfg.get("dev_eui"), "join_eui": cfg.get("join_eui"),
            "locked": st.get("locked"), "kcv": st.get("kcv")}


def provision(port: str, kind: str, *, inventory_path: Path, site: str | None = None,
              lat: float | None = None, lon: float | None = None, dev_eui: str | None = None,
              join_eui: str | None = None, keys_from: Path | None = None,
              interval_s: int | None = None, erase: bool = False,
              unlock_inventory: Path | None = None) -> dict:
    """Write identity, keys and settings into the node, check them by their KCVs, add
    the node to the inventory, lock it. Returns what was done (no keys in it)."""
    inventory_path = Path(inventory_path)
    # --- everything that can be checked before the node is touched ---------------------
    try:
        dev = keys.parse_hex(dev_eui, 8, "--dev-eui") if dev_eui else None
        join = keys.parse_hex(join_eui, 8, "--join-eui") if join_eui else DEFAULT_JOIN_EUI
        site_cfg = None
        if site is not None or lat is not None or lon is not None:
            if site is None or lat is None or lon is None:
                raise ValueError("--site, --lat and --lon go together")
            site_cfg = {"name": OPTIONS.check("site", site, kind),
                        "lat": OPTIONS.check("lat", lat, kind),
                        "lon": OPTIONS.check("lon", lon, kind)}
        if interval_s is not None:
            OPTIONS.check("interval_s", interval_s, kind)
    except ValueError as e:
        raise ProvisionError(f"{e}; nothing was sent to the node") from None
    if dev in (bytes(8), b"\xff" * 8):
        raise ProvisionError("--dev-eui: not a device's EUI-64; nothing was sent to the node")
    app_key, payload_key = read_keys_file(keys_from) if keys_from else (keys.new_key(), keys.new_key())
    if inventory_path.exists():
        if not os.access(inventory_path, os.W_OK):
            raise ProvisionError(f"the inventory {inventory_path} is not writable; nothing was "
                                 f"sent to the node. Fix its permissions or choose another")
        try:
            known = inventory.read(inventory_path)
        except (OSError, inventory.InventoryError, csv.Error) as e:
            raise ProvisionError(f"cannot read the inventory {inventory_path}: {e}; nothing "
                                 f"was sent to the node") from None
    else:
        known = {}
        try:
            # Can it be created? Found out now, not after the node holds new keys.
            fd = os.open(inventory_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            inventory_path.unlink()
        except OSError as e:
            raise ProvisionError(f"cannot create the inventory {inventory_path} ({e}); nothing "
                                 f"was sent to the node. Choose a writable --inventory") from None

    session = _session(port)
    link = session.link
    stage = "look"
    try:
        st = link.json(sl.STATUS)
        if st.get("kind") != kind:
            what = (f"was flashed as a {st['kind']} node" if st.get("kind")
                    else "has no manifest.json (it was not flashed with nodectl flash)")
            raise ProvisionError(f"the node {what}, not {kind}. Nothing was changed. Flash it "
                                 f"first: nodectl flash --port {port} --kind {kind}")
        modem = st.get("modem") or {}
        if dev is None:
            if not modem.get("dev_eui"):
                raise ProvisionError(f"the modem did not say its DevEUI ({modem.get('error', 'no answer')}). "
                                     f"Nothing was changed. Check the modem, or give --dev-eui")
            dev = bytes.fromhex(modem["dev_eui"])
        dev_hex = dev.hex().upper()
        if dev_hex in known:
            raise ProvisionError(f"DevEUI {dev_hex} is already in the inventory {inventory_path} "
                                 f"(provisioned {known[dev_hex].get('created') or 'before'}). "
                                 f"Nothing was changed. A node gets its keys once per inventory: "
                                 f"use another --inventory (and --unlock-inventory {inventory_path} "
                                 f"if the node is locked)")
        old_dev = (st.get("config") or {}).get("dev_eui")
        if erase:
            stage = "erase"
            link.ok(sl.ERASE, b"ERASE", timeout=60)
        elif st.get("locked"):
            old_key = _inventory_key(unlock_inventory, old_dev)
            if old_key is None:
                where = (f"in {unlock_inventory}" if unlock_inventory
                         else "given (--unlock-inventory FILE)")
                raise ProvisionError(
                    f"the node is locked (provisioned before, DevEUI {old_dev or 'unknown'}) and "
                    f"its payload key is not {where}. Nothing was changed. Give the inventory "
                    f"that holds it with --unlock-inventory, or wipe the node's keys, settings "
                    f"and queue with --erase")
            stage = "unlock"
            try:
                _unlock(link, old_key, bytes.fromhex(old_dev))
            except sl.NodeRefused as e:
                raise _refused(e, "to unlock", "Nothing was changed.",
                               f"The payload key in {unlock_inventory} is not this node's; "
                               f"use the right inventory or --erase") from None
        stage = "write"
        link.ok(sl.SET_IDS, dev + join, timeout=60)
        kcv_app = link.ok(sl.SET_APP_KEY, app_key, timeout=60).decode()
        kcv_payload = link.ok(sl.SET_PAYLOAD_KEY, payload_key).decode()
        if interval_s is not None:
            link.ok(sl.SET_INTERVAL, struct.pack(">I", interval_s))
        if site_cfg is not None:
            link.ok(sl.SET_SITE, json.dumps(site_cfg).encode())
        stage = "verify"
        st = link.json(sl.STATUS)
        want = {"app_key": keys.check_value(app_key), "payload_key": keys.check_value(payload_key)}
        got = st.get("kcv") or {}
        if got != want or kcv_app != want["app_key"] or kcv_payload != want["payload_key"]:
            raise ProvisionError(f"the node holds keys with check values {got}, not {want}: they "
                                 f"did not arrive intact. The node is not locked and not in the "
                                 f"inventory. Run nodectl provision again")
        modem_eui = (st.get("modem") or {}).get("dev_eui")
        if modem_eui and modem_eui != dev_hex:
            raise ProvisionError(f"the modem reports DevEUI {modem_eui}, not {dev_hex}. The node is "
                                 f"not locked and not in the inventory. Run nodectl provision again")
        stage = "inventory"
        row = {"dev_eui": dev_hex, "join_eui": join.hex().upper(), "app_key": app_key.hex().upper(),
               "payload_key": payload_key.hex().upper(), "kind": kind,
               "board": st.get("board") or "", "site": site or "",
               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        try:
            inventory.append(inventory_path, row)
        except (OSError, inventory.InventoryError) as e:
            raise ProvisionError(f"the node holds its new keys but they could not be added to "
                                 f"the inventory {inventory_path} ({e}). The node was left "
                                 f"unlocked. Fix the inventory and run nodectl provision again "
                                 f"(it writes new keys)") from None
        stage = "lock"
        link.ok(sl.LOCK)
    except sl.NodeRefused as e:
        session.close(bye=True)
        raise _refused(e, _STAGE_WHAT.get(stage, stage), _STAGE_LEFT.get(stage, ""),
                       "Fix what it says and run nodectl provision again") from None
    except sl.LinkError as e:
        session.close(bye=False)
        raise ProvisionError(f"the link to the node broke while provisioning ({stage}): {e}. "
                             f"{_STAGE_LEFT.get(stage, '')} Run nodectl provision again") from None
    except ProvisionError:
        session.close(bye=True)
        raise
    session.close(bye=True)
    return {"port": port, "dev_eui": dev_hex, "join_eui": join.hex().upper(), "kind": kind,
            "board": st.get("board"), "firmware": st.get("firmware"), "build": st.get("build"),
            "site": site, "lat": lat, "lon": lon, "interval_s": interval_s,
            "kcv": want, "inventory": str(inventory_path), "locked": True,
            "modem": (st.get("modem") or {}).get("type")}


_STAGE_WHAT = {"look": "the status read", "erase": "to erase", "unlock": "to unlock", "write": "a setting",
               "verify": "the status read", "lock": "to lock"}
_STAGE_LEFT = {
    "look": "Nothing was changed.",
    "erase": "The erase may be partial.",
    "unlock": "Nothing was changed.",
    "write": "Some settings or keys may be new; the node is not locked and not in the inventory.",
    "verify": "The node holds new keys; it is not locked and not in the inventory.",
    "inventory": "The node holds new keys; it is not locked and not in the inventory.",
    "lock": "The node is in the inventory but not locked.",
}


def _open_unlocked(link: sl.Link, st: dict, inventory_path: Path | None) -> bool:
    """Unlock a locked node with its payload key from the inventory; True if it was locked."""
    if not st.get("locked"):
        return False
    dev_hex = (st.get("config") or {}).get("dev_eui")
    key = _inventory_key(inventory_path, dev_hex)
    if key is None:
        raise ProvisionError(f"the node is locked and its payload key (DevEUI {dev_hex}) is not in "
                             f"the inventory {inventory_path}. Nothing was changed. Give the "
                             f"inventory that holds it with --inventory")
    try:
        _unlock(link, key, bytes.fromhex(dev_hex))
    except sl.NodeRefused as e:
        raise _refused(e, "to unlock", "Nothing was changed.",
                       f"The payload key in {inventory_path} is not this node's") from None
    return True


def config_get(port: str, names: list[str] | None = None) -> dict:
    session = _session(port)
    try:
        with session as link:
            got = link.json(sl.GET_CONFIG)
    except (sl.LinkError, sl.NodeRefused) as e:
        raise ProvisionError(f"reading the configuration failed: {e}. Nothing was changed. "
                             f"Run again") from None
    cfg = got.get("config", {})
    if names:
        missing = [n for n in names if n not in cfg and n not in OPTIONS.OPTIONS
                   and n not in OPTIONS.IDENTITY]
        if missing:
            raise ProvisionError(f"unknown setting {', '.join(missing)}; nothing was changed")
        cfg = {n: cfg.get(n) for n in names}
    return {"config": cfg, "locked": got.get("locked")}


def config_set(port: str, pairs: list[str], inventory_path: Path | None = None) -> dict:
    try:
        parse_settings(pairs, None)          # types and ranges, before the node is touched
    except ValueError as e:
        raise ProvisionError(f"{e}; nothing was sent to the node") from None
    session = _session(port)
    link = session.link
    relock = False
    try:
        st = link.json(sl.STATUS)
        try:
            changes = parse_settings(pairs, st.get("kind"))
        except ValueError as e:
            raise ProvisionError(f"{e}; nothing was changed on the node") from None
        relock = _open_unlocked(link, st, inventory_path)
        try:
            applied = link.json(sl.SET_OPTIONS, json.dumps(changes).encode())
        except sl.NodeRefused as e:
            raise _refused(e, "the settings", "Nothing was changed.", "Correct the value") from None
        if relock:
            link.ok(sl.LOCK)
            relock = False
    except sl.LinkError as e:
        session.close(bye=False)
        raise ProvisionError(f"the link to the node broke: {e}. The settings may or may not "
                             f"have been written; check with nodectl config get") from None
    except (ProvisionError, sl.NodeRefused) as e:
        if relock:
            try:
                link.ok(sl.LOCK)
            except (sl.LinkError, sl.NodeRefused):
                pass
        session.close(bye=True)
        if isinstance(e, sl.NodeRefused):
            raise ProvisionError(f"the node refused: {e.reply.describe()}") from None
        raise
    session.close(bye=True)
    return {"applied": applied, "locked": bool(st.get("locked"))}


def status(port: str) -> dict:
    session = _session(port)
    try:
        with session as link:
            return link.json(sl.STATUS)
    except (sl.LinkError, sl.NodeRefused) as e:
        raise ProvisionError(f"reading the status failed: {e}. Nothing was changed. Run again") from None


def selftest(port: str) -> list[dict]:
    session = _session(port)
    try:
        with session as link:
            return link.json(sl.SELFTEST, timeout=120)["parts"]
    except (sl.LinkError, sl.NodeRefused) as e:
        raise ProvisionError(f"the self-test did not complete: {e}. Nothing was changed. "
                             f"Run again") from None
