"""The nodectl verbs of a technician's bench: provision, config, status, selftest,
monitor, inventory export, and downlink (host_tools/downlink.py). host_tools/cli.py
adds them with `add_parsers(sub)`.

Each prints a short human result, or one JSON object with --json; an error is one line
on stderr (what went wrong, what was left as it was, what to do) and exit status 2;
`selftest` exits 1 when a part fails. No key is ever printed: check values (KCV) are.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from host_tools import export as export_mod
from host_tools import inventory
from host_tools import provision as prov
from host_tools import serial_link as sl


def _run(verb: str, fn, args) -> int:
    try:
        return fn(args)
    except (prov.ProvisionError, sl.LinkError, export_mod.ExportError, inventory.InventoryError,
            ValueError) as e:
        print(f"nodectl {verb}: {e}", file=sys.stderr)
        return 2


def _emit(args, data: dict, text: str) -> None:
    print(json.dumps(data) if args.json else text, flush=True)


# --- provision -----------------------------------------------------------------------------
def _provision(args) -> int:
    r = prov.provision(args.port, args.kind, inventory_path=Path(args.inventory), site=args.site,
                       lat=args.lat, lon=args.lon, dev_eui=args.dev_eui, join_eui=args.join_eui,
                       keys_from=Path(args.keys_from) if args.keys_from else None,
                       interval_s=args.interval, erase=args.erase,
                       unlock_inventory=Path(args.unlock_inventory) if args.unlock_inventory else None)
    where = f", site {r['site']} ({r['lat']}, {r['lon']})" if r["site"] else ""
    _emit(args, r, f"provisioned {r['kind']} node DevEUI {r['dev_eui']} JoinEUI {r['join_eui']}"
                   f"{where}\nkeys written and verified: AppKey KCV {r['kcv']['app_key']}, payload "
                   f"key KCV {r['kcv']['payload_key']}; node locked\nadded to {r['inventory']} "
                   f"(mode 0600); next: nodectl selftest --port {args.port}")
    return 0


# --- config ------------------------------------------------------------------------------------
def _config(args) -> int:
    if args.action == "get":
        r = prov.config_get(args.port, args.pairs)
        lines = [f"{k} = {json.dumps(v)}" for k, v in sorted(r["config"].items())]
        lines.append(f"(node {'locked' if r['locked'] else 'not locked'})")
        _emit(args, r, "\n".join(lines))
        return 0
    if not args.pairs:
        raise ValueError("config set needs key=value pairs, e.g. interval_s=600")
    r = prov.config_set(args.port, args.pairs, Path(args.inventory))
    lines = [f"{k} = {json.dumps(v)}" + ("  (firmware default)" if v is None else "")
             for k, v in sorted(r["applied"].items())]
    lines.append("applied; the node " + ("was unlocked for it and locked again"
                                         if r["locked"] else "is not locked"))
    _emit(args, r, "\n".join(lines))
    return 0


# --- status ------------------------------------------------------------------------------------
def _status(args) -> int:
    st = prov.status(args.port)
    cfg, kcv, modem = st.get("config") or {}, st.get("kcv") or {}, st.get("modem") or {}
    files = st.get("files") or {}
    up, join = st.get("uplink") or {}, st.get("join") or {}
    lines = [
        f"firmware {st.get('firmware')} build {st.get('build')}, {st.get('kind')} node on "
        f"{st.get('board')}; files {files.get('checked', 0) - files.get('differ_count', 0)}/"
        f"{files.get('checked', 0)} match the manifest"
        + (f" (differ: {', '.join(files['differ'])})" if files.get("differ") else ""),
        f"DevEUI {cfg.get('dev_eui')} JoinEUI {cfg.get('join_eui')}; "
        f"{'locked' if st.get('locked') else 'NOT locked'}",
        f"key check values: AppKey {kcv.get('app_key') or '-'}, payload key "
        f"{kcv.get('payload_key') or '-'}",
        f"modem {modem.get('type')}: " + (f"DevEUI {modem.get('dev_eui')}, "
                                          f"{'joined' if modem.get('joined') else 'not joined'}"
                                          if "error" not in modem else modem["error"]),
        "join: " + (f"no accept for {join['now'] - join['since']} s; next request allowed in "
                    f"{max(0, join['next_allowed'] - join['now'])} s"
                    if join.get("failing") else "no failed join pending"),
        f"uplinks: {up.get('unacked_confirmed', 0)} confirmed frames in a row without ACK; "
        + (f"readings {up['head_seq']}..{up['next_seq'] - 1} kept, sent up to "
           f"{up['sent_seq'] - 1}; dropped {up['dropped']}" if "next_seq" in up
           else "queue: no reading sent or dropped yet"),
        f"battery {st.get('battery_mv')} mV; resets {st.get('resets') or {}}",
        f"interval {cfg.get('interval_s') or 'default'} s, site {cfg.get('site') or '-'}"
        + (f" ({cfg.get('lat')}, {cfg.get('lon')})" if cfg.get("site") else ""),
    ]
    _emit(args, st, "\n".join(lines))
    return 0


# --- selftest ----------------------------------------------------------------------------------
def _reading(r) -> str:
    if not r:
        return "-"
    return " ".join(f"{k}={v}" for k, v in r.items())


def _selftest(args) -> int:
    parts = prov.selftest(args.port)
    failed = [p["part"] for p in parts if p["verdict"] == "fail"]
    if args.json:
        print(json.dumps({"parts": parts, "failed": failed}))
    else:
        for p in parts:
            print(f"{p['part']:<10} {p['verdict']:<8} {p.get('identity') or '-'}\n"
                  f"{'':<19} {_reading(p.get('reading'))}"
                  + (f"\n{'':<19} {p['reason']}" if p.get("reason") else ""))
        print(f"{len(parts) - len(failed)} of {len(parts)} parts pass"
              + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


# --- monitor -----------------------------------------------------------------------------------
def _monitor(args) -> int:
    n = 0
    try:
        for line in sl.console_lines(args.port, args.seconds):
            print(json.dumps({"line": line}) if args.json else line, flush=True)
            n += 1
            if args.lines and n >= args.lines:
                break
    except KeyboardInterrupt:
        pass
    return 0


# --- inventory export --------------------------------------------------------------------------
def _inventory(args) -> int:
    n = export_mod.export(Path(args.inventory), args.format, Path(args.out),
                          application_id=args.application_id,
                          device_profile_id=args.device_profile_id,
                          frequency_plan=args.frequency_plan, mac_version=args.mac_version)
    how = ("ttn-lw-cli end-devices create --application-id APP < " + args.out
           if args.format == "ttn" else "docs/field-guide.md, \"ChirpStack\"")
    _emit(args, {"format": args.format, "devices": n, "out": args.out},
          f"{n} devices written to {args.out} (mode 0600: it holds AppKeys, no payload keys); "
          f"import: {how}")
    return 0


# --- downlink ------------------------------------------------------------------------------
def _downlink(args) -> int:
    from host_tools import downlink
    r = downlink.build(args.dev_eui, args.pairs, Path(args.inventory), Path(args.state), args.port)
    sets = " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(r["set"].items()))
    _emit(args, r, f"downlink for {r['dev_eui']}: set {sets}; counter {r['counter']}, "
                   f"FPort {r['fport']}, {r['bytes']} bytes\nhex    {r['hex']}\n"
                   f"base64 {r['base64']}")
    return 0


def _verb(name, fn):
    return lambda args: _run(name, fn, args)


def add_parsers(sub) -> None:
    """The verbs, on nodectl's subparsers."""
    raw = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("provision", help="give a flashed node its identity, keys and site, then lock it",
                       formatter_class=raw,
                       description="Over the node's USB serial: write DevEUI/JoinEUI, a new AppKey "
                       "(into the modem) and payload key, the site and interval; verify the keys by "
                       "their check values; add the node to the inventory (CSV, mode 0600); lock it.",
                       epilog="example:\n  nodectl provision --port /dev/ttyACM0 --kind climate "
                       "--site 'Rathausplatz' --lat 48.1374 --lon 11.5755\n(docs/field-guide.md)")
    p.add_argument("--port", required=True, help="the node's serial port")
    p.add_argument("--kind", required=True, help="the node kind it was flashed as")
    p.add_argument("--inventory", default="inventory.csv", help="inventory CSV to add the node to "
                   "(default inventory.csv; created with mode 0600)")
    p.add_argument("--site", help="site name (up to 40 characters)")
    p.add_argument("--lat", type=float, help="site latitude in degrees")
    p.add_argument("--lon", type=float, help="site longitude in degrees")
    p.add_argument("--interval", type=int, help="uplink interval in seconds (default: the firmware's)")
    p.add_argument("--dev-eui", help="DevEUI (default: the one the modem carries from its factory)")
    p.add_argument("--join-eui", help="JoinEUI (default 0000000000000000)")
    p.add_argument("--keys-from", help="JSON file (mode 0600) with app_key and payload_key to use "
                   "instead of new random keys")
    p.add_argument("--unlock-inventory", help="inventory holding the payload key of a node "
                   "provisioned before (it is locked)")
    p.add_argument("--erase", action="store_true", help="first wipe the node's keys, settings and "
                   "queue (a locked node whose payload key is lost)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=_verb("provision", _provision))

    c = sub.add_parser("config", help="read or change a node's settings over serial",
                       formatter_class=raw,
                       description="get: the node's configuration. set: change settings (checked "
                       "here and on the node; an empty value restores the firmware default); a "
                       "locked node is unlocked with its payload key from the inventory and "
                       "locked again.",
                       epilog="examples:\n  nodectl config get --port /dev/ttyACM0\n"
                       "  nodectl config set --port /dev/ttyACM0 interval_s=600 rain_alarm_mm_h=20")
    actions = c.add_subparsers(dest="action", required=True, metavar="get|set")
    for action, what in (("get", "names to show (default: all)"), ("set", "settings to change")):
        a = actions.add_parser(action, help=f"{action} settings",
                               epilog=f"example: nodectl config {action} --port /dev/ttyACM0 "
                               + ("interval_s site" if action == "get" else "interval_s=600"))
        a.add_argument("pairs", nargs="*", metavar="key" if action == "get" else "key=value",
                       help=what)
        a.add_argument("--port", required=True, help="the node's serial port")
        if action == "set":
            a.add_argument("--inventory", default="inventory.csv",
                           help="inventory holding the node's payload key, to unlock it "
                           "(default inventory.csv)")
        a.add_argument("--json", action="store_true", help="print the result as one JSON object")
        a.set_defaults(func=_verb("config", _config))

    s = sub.add_parser("status", help="a node's firmware, identity, key check values, modem and counters",
                       description="Read the node's status over serial: firmware and whether its files "
                       "match the manifest, DevEUI, key check values, modem, join and uplink state, "
                       "battery, reset counts. Changes nothing.",
                       epilog="example: nodectl status --port /dev/ttyACM0")
    s.add_argument("--port", required=True, help="the node's serial port")
    s.add_argument("--json", action="store_true", help="print the status as one JSON object")
    s.set_defaults(func=_verb("status", _status))

    t = sub.add_parser("selftest", help="read every part of a node once: identity, reading, verdict",
                       description="The bench check before a node goes out: each part's identity "
                       "(chip id or serial), one reading and a verdict. Exit status 1 if a part fails.",
                       epilog="example: nodectl selftest --port /dev/ttyACM0")
    t.add_argument("--port", required=True, help="the node's serial port")
    t.add_argument("--json", action="store_true", help="print the results as one JSON object")
    t.set_defaults(func=_verb("selftest", _selftest))

    m = sub.add_parser("monitor", help="show the node's log lines as it prints them",
                       description="Follow the node's console without disturbing it (nothing is sent "
                       "to it). Ctrl-C stops.",
                       epilog="example: nodectl monitor --port /dev/ttyACM0")
    m.add_argument("--port", required=True, help="the node's serial port")
    m.add_argument("--seconds", type=float, help="stop after this many seconds")
    m.add_argument("--lines", type=int, help="stop after this many lines")
    m.add_argument("--json", action="store_true", help="one JSON object per line")
    m.set_defaults(func=_verb("monitor", _monitor))

    i = sub.add_parser("inventory", help="export the inventory for a network server",
                       formatter_class=raw,
                       description="Write the inventory's nodes as a file The Things Stack "
                       "(ttn-lw-cli / Console JSON import) or ChirpStack v4 (its REST API) takes. "
                       "Only DevEUI, JoinEUI and AppKey leave; payload keys never do.",
                       epilog="examples:\n  nodectl inventory export --format ttn --out devices.json\n"
                       "  nodectl inventory export --format chirpstack --application-id UUID "
                       "--device-profile-id UUID --out cs.json\n(docs/field-guide.md has the import "
                       "commands)")
    i.add_argument("action", choices=("export",))
    i.add_argument("--format", required=True, choices=export_mod.FORMATS)
    i.add_argument("--inventory", default="inventory.csv", help="inventory CSV (default inventory.csv)")
    i.add_argument("--out", required=True, help="file to write (mode 0600)")
    i.add_argument("--application-id", help="ChirpStack application UUID (chirpstack)")
    i.add_argument("--device-profile-id", help="ChirpStack device-profile UUID (chirpstack)")
    i.add_argument("--frequency-plan", default="EU_863_870_TTN", help="TTS frequency plan (ttn)")
    i.add_argument("--mac-version", choices=sorted(export_mod.MAC_VERSIONS),
                   help="LoRaWAN version of every node (default: by its board's modem)")
    i.add_argument("--json", action="store_true", help="print the result as one JSON object")
    i.set_defaults(func=_verb("inventory", _inventory))

    d = sub.add_parser("downlink", help="build a sealed downlink that changes a node's settings",
                       formatter_class=raw,
                       description="Seal `set key=value ...` for one node (docs/payload.md, "
                       "\"Downlinks\"): values are checked as the node checks them, the frame gets "
                       "the device's next downlink counter (kept in --state, mode 0600). Queue the "
                       "printed frame (hex, or base64 for TTN's and ChirpStack's APIs) on the FPort "
                       "shown; the node confirms it in its next node record.",
                       epilog="example:\n  nodectl downlink --dev-eui AC1F09FFFE000001 set "
                       "interval_s=600")
    d.add_argument("action", choices=("set",))
    d.add_argument("pairs", nargs="*", metavar="key=value", help="settings to change")
    d.add_argument("--dev-eui", required=True, help="the node's DevEUI (16 hex digits)")
    d.add_argument("--inventory", default="inventory.csv",
                   help="inventory holding the node's kind and payload key (default inventory.csv)")
    d.add_argument("--state", default="downlinks.json",
                   help="the downlink counters per device (default downlinks.json)")
    d.add_argument("--port", type=int, default=2,
                   help="FPort: the node's `port` setting (default 2)")
    d.add_argument("--json", action="store_true", help="print the result as one JSON object")
    d.set_defaults(func=_verb("downlink", _downlink))
