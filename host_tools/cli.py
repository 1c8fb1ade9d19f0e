"""nodectl: simulate city sensor nodes and decode their uplinks.

Each verb's --help says what it does and shows an example.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from host_tools import boards, envelope, inventory, schemas
from host_tools.keys import parse_hex
from host_tools.ledger import Ledger


class CliError(Exception):
    """A user error: printed as one clear line, exit status 2."""


def _fmt(v, nd):
    return "-" if v is None else f"{v:.{nd}f}"


def _fault_help() -> str:
    from simulators.sensors.faults import MODES
    lines = ["PART names by kind:"]
    for kind in sorted({s.kind for s in schemas.SCHEMAS.values()}):
        lines.append(f"  {kind}: {', '.join(schemas.schema_for_kind(kind).faults)}")
    lines.append(f"MODEs: {', '.join(MODES)} (docs/simulator.md says what each does on the wire;"
                 f" a part takes the modes its bus can show)")
    return "\n".join(lines)


def cmd_simulate(args) -> int:
    if args.nodes is not None:
        return _simulate_fleet(args)
    from simulators.scenario import FaultWindow, Simulation
    faults = [FaultWindow.parse(f) for f in args.fault]
    sim = Simulation(kind=args.kind, board=args.board, hours=args.hours, seed=args.seed,
                     out_dir=Path(args.out), interval_s=args.interval, faults=faults,
                     modem=args.modem)
    notice = sys.stderr if args.json else sys.stdout
    print(f"inventory (keys, mode 0600): {sim.inventory_path}", file=notice)
    if not args.json:
        print(f"{'time':>8} {'ctr':>5}  {'T °C':>7} {'truth':>7}  {'RH %':>6} {'truth':>6}  "
              f"{'bat V':>5}  faults")
    for up in sim.run():
        if args.json:
            print(up.to_json(), flush=True)
            continue
        d, t = up.decoded, up.truth
        h, m = divmod(int(up.t // 60), 60)
        print(f"{h:>5}:{m:02d} {up.counter:>5}  {_fmt(d.get('temperature'), 2):>7} "
              f"{_fmt(t.get('temperature'), 2):>7}  {_fmt(d.get('humidity'), 1):>6} "
              f"{_fmt(t.get('humidity'), 1):>6}  {_fmt(d.get('battery'), 2):>5}  "
              f"{','.join(d.get('faults', []) + d.get('flags', [])) or d.get('error', '')}", flush=True)
    s = sim.stats
    print(f"{s.uplinks} uplinks decoded from {s.wakes} wakes in {sim.hours:g} simulated hours "
          f"({s.wall_s:.1f} s wall); {len(s.decode_errors)} decode errors", file=notice)
    for eui, us in sorted(sim.network.airtime_by_device().items()):
        print(f"airtime {eui}: {us / 1e6:.1f} s on air = {us / 1e6 * 24 / sim.hours:.1f} s per "
              f"day (TTN fair use: 30 s per day)", file=notice)
    if args.phy_log:
        try:
            n = sim.network.write_phy_log(args.phy_log)
        except OSError as e:
            raise CliError(f"cannot write the PHY log: {e}") from None
        print(f"PHY log (session keys, mode 0600): {args.phy_log} ({n} frames)", file=notice)
    return 1 if s.decode_errors else 0


def _simulate_fleet(args) -> int:
    """`simulate --nodes N`: a fleet sharing one gateway, its report in --out."""
    from host_tools.fleet_report import write_report
    from simulators.fleet.plan import parse_kinds
    from simulators.fleet.progress import Progress
    from simulators.fleet.run import FleetSpec, run_fleet
    single = [o for o, v in (("--fault", args.fault), ("--board", args.board), ("--modem", args.modem),
                             ("--interval", args.interval), ("--phy-log", args.phy_log)) if v]
    if single:
        raise CliError(f"{', '.join(single)} apply to one node; a fleet (--nodes) takes "
                       f"--kinds, --hours, --seed, --workers and --out")
    if args.nodes < 1 or (args.workers is not None and args.workers < 1):
        raise CliError("--nodes and --workers must be at least 1")
    spec = FleetSpec(nodes=args.nodes, hours=args.hours, kinds=parse_kinds(args.kinds),
                     seed=args.seed, out_dir=Path(args.out), workers=args.workers)
    with Progress(sys.stderr) as bar:
        result = run_fleet(spec, progress=bar.update)
    report = write_report(result, spec.out_dir)
    s = result.summary()
    if args.json:
        print(json.dumps({**s, "report": str(report)}))
    else:
        print(f"{s['nodes']} nodes, {s['hours']:g} h: {s['wakes']} wakes, {s['uplinks_received']} of "
              f"{s['uplinks_sent']} uplinks received ({s['collisions']} frames collided), "
              f"airtime {s['airtime_s_per_node_day']['mean']} s/node/day; {s['wall_s']} s wall "
              f"on {s['workers']} workers\nreport: {report}")
    return 1 if s["decode_errors"] or s["stopped_nodes"] else 0


def cmd_decode(args) -> int:
    try:
        frame = bytes.fromhex(args.frame)
    except ValueError:
        raise CliError("FRAME must be hexadecimal (the application payload of the uplink)")
    try:
        dev_eui = parse_hex(args.dev_eui, 8, "--dev-eui")
        if args.key:
            key = parse_hex(args.key, 16, "--key")
        else:
            key = inventory.payload_key(Path(args.inventory), dev_eui.hex())
        counter, body = envelope.unseal(key, dev_eui, frame)
        # One reading, or several packed in one frame (docs/payload.md).
        readings = schemas.decode_readings(body)
        if args.state:
            with Ledger(Path(args.state)) as ledger:
                verdicts = ledger.accept_frame(dev_eui.hex(), counter, readings)
            for reading, verdict in zip(readings, verdicts):
                reading["duplicate"] = verdict.duplicate
                reading["lost"] = verdict.lost
                reading["lost_count"] = verdict.lost_count
                if verdict.dropped:   # [first, last, reason]: dropped by the node
                    reading["dropped_by_node"] = verdict.dropped
        out = {"dev_eui": dev_eui.hex().upper(), "counter": counter}
        if len(readings) == 1:
            out.update(readings[0])
        else:
            out["readings"] = readings
    except (ValueError, inventory.InventoryError) as e:
        raise CliError(f"cannot decode: {e}") from None
    print(json.dumps(out))
    return 0


def cmd_board(args) -> int:
    from simulators.board.board import VirtualBoard
    try:
        board = VirtualBoard(kind=args.kind, board=args.board, modem=args.modem,
                             workdir=Path(args.dir), speed=args.speed, seed=args.seed,
                             fresh=args.fresh, on_event=_board_events(args.json))
    except OSError as e:
        raise CliError(f"cannot set up the board in {args.dir}: {e}; choose a writable "
                       f"folder with --dir") from None
    def ready():
        if args.json:
            print(json.dumps({"event": "ready", "port": board.port.path, "kind": args.kind,
                              "board": board.board_name, "modem": board.board["modem"]["type"],
                              "flash": str(board.node.flash.path), "speed": args.speed}), flush=True)
        else:
            print(board.port.path, flush=True)
            print(f"virtual {args.kind} board {board.board_name} on {board.port.path}: flash "
                  f"{board.node.flash.path}, {args.speed:g}x real time; Ctrl-C stops it",
                  file=sys.stderr, flush=True)
    board.run(ready)
    return 0


def _board_events(as_json: bool):
    def note(event, **fields):
        if as_json:
            print(json.dumps({"event": event, **fields}), flush=True)
        elif event != "off":
            detail = " ".join(f"{k}={v}" for k, v in fields.items())
            print(f"board: {event} {detail}".rstrip(), file=sys.stderr, flush=True)
    return note


def cmd_flash(args) -> int:
    from host_tools.flash import FlashError, flash_board
    try:
        report = flash_board(args.port, kind=args.kind, board=args.board, modem=args.modem,
                             progress=_progress_bar() if sys.stderr.isatty() else None,
                             reset=not args.no_reset)
    except FlashError as e:
        raise CliError(str(e)) from None
    if args.json:
        print(report.to_json())
        return 0
    where = (f"firmware {report.firmware} build {report.build}, board {report.board}, "
             f"kind {report.kind}, on {report.port}")
    after = "board reset" if report.reset else "board left at the REPL (not reset)"
    if not report.copied and not report.removed:
        print(f"nothing to copy: the {report.unchanged} files on the board already match "
              f"(sha256 checked on the board); {after}\n{where}")
    else:
        print(f"copied {len(report.copied)} files ({report.bytes_copied / 1024:.1f} KiB), "
              f"removed {len(report.removed)}, {report.unchanged} unchanged; verified on the "
              f"board (sha256); {after}\n{where}")
    return 0


def cmd_soak(args) -> int:
    from host_tools import soak
    from simulators.soak import SoakSpec
    spec = SoakSpec(nodes=args.nodes, days=args.days, power_cuts=args.power_cuts,
                    faults=args.faults, seed=args.seed, out_dir=Path(args.out),
                    radius_m=args.radius_m, workers=args.workers)
    spec.check()
    shown = [-1]

    def progress(done: float, nodes_done: int) -> None:
        pct = int(done * 100)
        if pct != shown[0]:
            shown[0] = pct
            print(f"\rsoak: {pct:3d}% of the node-time, {nodes_done}/{spec.nodes} nodes done",
                  end="", file=sys.stderr, flush=True)

    acc = soak.soak(spec, progress)
    print(file=sys.stderr)
    run = acc["run"]
    cuts = run["power_cuts"]
    head = (f"soak: {spec.nodes} nodes x {spec.days:g} days, seed {spec.seed}, "
            f"{cuts['made']} of {cuts['planned']} power cuts made ({cuts['flash_op']} in a flash "
            f"operation, {cuts['at']} at an instant), faults {spec.faults:.0%} of the time, "
            f"{run['wakes']} wakes in {run['wall_s']:.0f} s on {run['workers']} workers")
    if args.json:
        print(head, file=sys.stderr)
        print(json.dumps(soak.summary(acc), separators=(",", ":")))
    else:
        print(soak.report(acc, head))
        print(f"per node: {Path(args.out) / 'account.json'}; keys: {run['inventory']} (mode 0600)")
    return 0 if run["ok"] else 1


def _progress_bar():
    def show(done: int, total: int, path: str) -> None:
        width = 24
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        print(f"\r[{'#' * filled}{'-' * (width - filled)}] {100 * done // max(total, 1):3d}% "
              f"{path[:40]:<40}", end=end, file=sys.stderr, flush=True)
    return show


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nodectl", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")

    from simulators import kinds as sim_kinds
    s = sub.add_parser("simulate", help="run a simulated node and show its decoded uplinks",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run one simulated node on the real MicroPython interpreter "
                       "in virtual time and print each decoded uplink beside the simulated truth; "
                       "with --nodes, a fleet sharing one gateway, with a report.",
                       epilog="examples:\n  nodectl simulate --kind climate --hours 24 --json\n"
                       "  nodectl simulate --kind climate --fault sht4x:crc@2-5\n"
                       "  nodectl simulate --nodes 1000 --hours 24 --out fleet-out   # a fleet\n\n"
                       + _fault_help())
    s.add_argument("--kind", default="climate", choices=sim_kinds.available(),
                   help="node kind (default climate)")
    s.add_argument("--board", default=None,
                   help=f"board file name (default: the kind's usual board; known: {', '.join(boards.available())})")
    s.add_argument("--modem", default=None, choices=sorted(boards.MODEMS),
                   help="LoRaWAN modem on the board's modem UART (default: the board file's)")
    s.add_argument("--fault", action="append", default=[], metavar="PART:MODE[@START_H[-END_H]]",
                   help="put a part into a fault mode, from START_H to END_H simulated hours "
                   "(repeatable; PARTs and MODEs below)")
    s.add_argument("--nodes", type=int, default=None, metavar="N",
                   help="a fleet of N nodes sharing one gateway, instead of one node; writes "
                   "report.html and PNG plots to --out")
    s.add_argument("--kinds", default="climate,soil,water,glass",
                   help="kinds of a fleet's nodes, taking turns (default all four)")
    s.add_argument("--workers", type=int, default=None,
                   help="processes a fleet runs on (default one per core; results do not depend on it)")
    s.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    s.add_argument("--seed", type=int, default=1, help="seed of the environment and radio (default 1)")
    s.add_argument("--interval", type=int, default=None,
                   help="uplink interval in seconds (default: the kind's, 900 for climate)")
    s.add_argument("--json", action="store_true", help="one JSON object per uplink per line")
    s.add_argument("--out", default="sim-out", help="output directory (flash image, inventory)")
    s.add_argument("--phy-log", metavar="FILE", default=None,
                   help="write every LoRaWAN PHYPayload of the run as JSON lines with its session "
                   "keys (mode 0600), for checking with tools/lora-packet-check/verify.js")
    s.set_defaults(func=cmd_simulate)

    d = sub.add_parser("decode", help="open and decode one sealed uplink",
                       description="Verify and decrypt one sealed uplink and print the reading as JSON "
                       "(a frame of several readings: under \"readings\", oldest first).",
                       epilog="example: nodectl decode 2003e8... --dev-eui AC1F09FFFE012345 --inventory inventory.csv")
    d.add_argument("frame", metavar="FRAME", help="application payload in hex")
    d.add_argument("--dev-eui", required=True, help="the node's DevEUI (16 hex digits)")
    g = d.add_mutually_exclusive_group(required=True)
    g.add_argument("--key", help="payload key (32 hex digits); prefer --inventory, which keeps it off the command line")
    g.add_argument("--inventory", help="inventory CSV holding the node's payload key")
    d.add_argument("--state", help="decoder state file (JSON): rejects replays, marks repeated "
                   "readings as duplicate and reports skipped ones as lost, across runs")
    d.set_defaults(func=cmd_decode)

    b = sub.add_parser("board", help="start a virtual board whose USB serial is a pseudo-terminal",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Start a simulated node that behaves like MicroPython on a board "
                       "over a pseudo-terminal: it runs main.py after a reset, Ctrl-C interrupts it, "
                       "and it serves the raw REPL, so mpremote and nodectl flash work against it. "
                       "Prints the pty path on its first line; runs until interrupted.",
                       epilog="example:\n  nodectl board --kind climate > port.txt &\n"
                       "  mpremote connect $(head -1 port.txt) exec 'print(1)'\n"
                       "  nodectl flash --port $(head -1 port.txt) --kind climate\n"
                       "(docs/virtual-board.md)")
    b.add_argument("--kind", default="climate", choices=sim_kinds.available(),
                   help="node kind: its parts are wired to the board (default climate)")
    b.add_argument("--board", default=None,
                   help=f"board file name (default: the kind's usual board; known: {', '.join(boards.available())})")
    b.add_argument("--modem", default=None, choices=sorted(boards.MODEMS),
                   help="LoRaWAN modem on the board's modem UART (default: the board file's)")
    b.add_argument("--dir", default="board-out",
                   help="folder of the board's flash image and console log; the image is kept "
                   "between runs (default board-out)")
    b.add_argument("--fresh", action="store_true", help="start with an erased flash")
    b.add_argument("--speed", type=float, default=1.0,
                   help="virtual seconds per wall second (default 1: real time)")
    b.add_argument("--seed", type=int, default=1, help="seed of the environment and radio (default 1)")
    b.add_argument("--json", action="store_true",
                   help="first line a JSON object with the port; then one JSON line per board event")
    b.set_defaults(func=cmd_board)

    f = sub.add_parser("flash", help="put the firmware on a board, copying only what changed",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Compile the firmware with mpy-cross, compare it with the files "
                       "on the board by sha256 computed on the board, copy what differs, write "
                       "board.json and manifest.json, verify and reset. Works over any serial port "
                       "mpremote can use, and on a virtual board.",
                       epilog="examples:\n  nodectl flash --port /dev/ttyACM0 --kind climate\n"
                       "  nodectl flash --port /dev/pts/4 --kind soil --board pico-rak3172-soil --json\n"
                       "(docs/flashing.md)")
    f.add_argument("--port", required=True, help="the board's serial port (e.g. /dev/ttyACM0)")
    f.add_argument("--kind", required=True, choices=sim_kinds.available(), help="node kind")
    f.add_argument("--board", default=None,
                   help=f"board file written as /board.json (default: the kind's usual board; known: "
                   f"{', '.join(boards.available())})")
    f.add_argument("--modem", default=None, choices=sorted(boards.MODEMS),
                   help="the board carries this modem instead of its board file's")
    f.add_argument("--no-reset", action="store_true",
                   help="leave the board at the REPL instead of resetting it into the new firmware")
    f.add_argument("--json", action="store_true", help="print the result as one JSON object")
    f.set_defaults(func=cmd_flash)

    # provision, config, status, selftest, monitor, inventory export
    from host_tools import field_commands
    field_commands.add_parsers(sub)

    k = sub.add_parser("soak", help="run a mixed fleet for days under power cuts and faults, and "
                       "account for every reading",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Run N simulated nodes (climate, soil, water, glass in turn) for "
                       "D days under C random power cuts and random part, modem and network faults, "
                       "then account for every reading they took: delivered, still queued, dropped "
                       "with a reason, lost on air with a reason, or unaccounted; and count envelope "
                       "counter reuses on air and wakes that ran on a wrong configuration. Exit "
                       "status 1 if a reading is unaccounted, a counter was reused, a wake ran on "
                       "a wrong configuration or a node stopped (docs/soak.md).",
                       epilog="examples:\n  nodectl soak --nodes 4 --days 1 --power-cuts 20\n"
                       "  nodectl soak --nodes 20 --days 7 --power-cuts 1000 --faults 0.05 --json")
    k.add_argument("--nodes", type=int, required=True, metavar="N", help="nodes in the fleet")
    k.add_argument("--days", type=float, required=True, metavar="D", help="simulated days")
    k.add_argument("--power-cuts", type=int, default=0, metavar="C",
                   help="power cuts spread over the nodes and the days, half inside a flash "
                   "operation, half at an instant (default 0)")
    k.add_argument("--faults", type=float, default=0.0, metavar="RATE",
                   help="fraction of the time each part, the modem and the network spend in a "
                   "random fault mode they can show, in windows of about 2 h (default 0)")
    k.add_argument("--seed", type=int, default=1, help="seed of everything random (default 1)")
    k.add_argument("--radius-m", type=float, default=2000.0,
                   help="nodes stand at random over a disc this wide around their gateway "
                   "(link-budget loss); 0 puts them all on the gateway's bench (default 2000)")
    k.add_argument("--workers", type=int, default=None,
                   help="processes to run on (default one per core; results do not depend on it)")
    k.add_argument("--out", default="soak-out",
                   help="output folder: flash images, console logs, inventory, account.json "
                   "(default soak-out)")
    k.add_argument("--json", action="store_true",
                   help="print the figures as one JSON object on the last line of stdout")
    k.set_defaults(func=cmd_soak)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, boards.BoardError, ValueError) as e:
        print(f"nodectl {args.verb}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
