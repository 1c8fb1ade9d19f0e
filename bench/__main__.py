"""`python -m bench` (make bench): run every figure and write bench/results.json and
bench/results.md.

    python -m bench                  # the full suite (~10-15 min on 2 cores)
    python -m bench --quick          # shorter runs, for trying the bench itself
    python -m bench --kinds climate --skip callgrind,fleet

docs/benchmarks.md says what each figure means and how it is measured.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench import airtime, awake, callgrind, energy, fleet, heap, host, payload, report, sizes
from bench.runs import KINDS, simulate
from bench.runtime import precompiled
from host_tools import boards
from simulators import kinds as sim_kinds
from simulators.power import energy_model as em

HERE = Path(__file__).resolve().parent
FIGURES = ("payload", "airtime", "awake", "energy", "heap", "size", "callgrind", "throughput", "fleet")

FULL = {"day_h": 24, "probe_h": 24, "search_h": 12, "week_h": 168, "callgrind_wakes": 3}
QUICK = {"day_h": 6, "probe_h": 6, "search_h": 6, "week_h": 24, "callgrind_wakes": 2}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def guarded(results: dict, key: str, fn, *args, **kw):
    """Run one figure; a failure is recorded with its reason, the bench goes on."""
    try:
        value = fn(*args, **kw)
    except Exception as e:  # noqa: BLE001 - one broken figure must not hide the others
        value = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-1500:]}
        log(f"  {key}: FAILED {value['error']}")
    results[key] = value
    return value


def interval_of(kind: str) -> int:
    return getattr(sim_kinds.rig_class(kind), "DEFAULT_INTERVAL_S", 900)


def bench_kind(kind: str, p: dict, skip: set, out: dict) -> None:
    board_name = sim_kinds.rig_class(kind).DEFAULT_BOARD
    board = boards.load(board_name)
    r: dict = {"board": board_name, "mcu": board["mcu"], "modem": board["modem"]["type"],
               "interval_s": interval_of(kind)}
    out[kind] = r

    if "size" not in skip:
        guarded(r, "mpy", sizes.kind_size, kind, board["modem"]["type"])

    # A plain day, as a user runs it: throughput, and the readings for the byte counts.
    log(f"{kind}: a simulated day as users run it")
    day = simulate(kind, p["day_h"])
    r["day_run"] = {"hours": p["day_h"], "ok": day.ok, "error": day.error, "wakes": len(day.wakes),
                    "uplinks": len(day.uplinks), "wall_s": round(day.wall_s, 2)}
    if "throughput" not in skip and day.wall_s:
        r["throughput"] = {"wakes_per_s": round(len(day.wakes) / day.wall_s, 2),
                           "virtual_h_per_wall_s": round(p["day_h"] / day.wall_s, 2),
                           "wall_s": round(day.wall_s, 2), "wakes": len(day.wakes)}
    if "payload" not in skip:
        log(f"{kind}: sealed uplink bytes on the firmware's encoder")
        guarded(r, "worst", payload.worst_case, kind)
        guarded(r, "typical", payload.typical, kind, day.uplinks)
    if "airtime" not in skip and "typical" in r and "sealed" in r.get("typical", {}):
        extra = max(0.0, len(day.uplinks) * 24 / p["day_h"] - 86400 / r["interval_s"])
        r["airtime"] = airtime.figures(r["typical"]["sealed"], r["worst"]["sealed"], r["interval_s"], extra)
        r["airtime"]["measured"] = airtime.measured(day.uplinks, p["day_h"])

    with precompiled():
        cg: dict = {}
        if "callgrind" not in skip:
            log(f"{kind}: instructions per wake under callgrind")
            hours = p["callgrind_wakes"] * r["interval_s"] / 3600.0
            cg = guarded(r, "callgrind", callgrind.measure, kind, hours)
            reading = [w for w in cg.get("wakes", []) if w["reading"] and w["wake"] != 1]
            if reading:
                cg["reading_wake_instructions"] = sorted(w["instructions"] for w in reading)[len(reading) // 2]
                cg["reading_wake_firmware_estimate"] = sorted(w["firmware_estimate"] for w in reading)[len(reading) // 2]
        if "awake" not in skip or "heap" not in skip or "energy" not in skip:
            log(f"{kind}: awake states and heap per wake (probe run, {p['probe_h']} h)")
            obs = awake.StateObserver(int(board["modem"]["uart"]))
            probe = simulate(kind, p["probe_h"], mode="probe", observer=obs, on_wake=obs.close)
            r["probe_run"] = {"hours": p["probe_h"], "ok": probe.ok, "error": probe.error,
                              "failures": probe.failures[:5], "wakes": len(probe.wakes)}
            r["awake"] = awake.summarize(obs.wakes)
            samples = heap.per_wake(probe.wakes)
            r["heap_per_wake"] = heap.summary([s for s in samples if s["wake"] != 1]) or {}
            r["heap_per_wake"]["first_wake_peak"] = samples[0]["peak"] if samples else None
            instr = r.get("callgrind", {}).get("reading_wake_firmware_estimate")
            mhz = board.get("freq", 125_000_000)
            compute_ms = energy.compute_s(instr, mhz) * 1000.0
            r["awake"]["compute_estimate_ms"] = round(compute_ms, 1)
            r["awake"]["mcu_hz"] = mhz
            if "reading" in r["awake"]:
                rd = r["awake"]["reading"]
                r["awake"]["excluding_modem_with_compute_ms"] = round(rd["excluding_modem_ms"]["median"] + compute_ms, 1)
            if "energy" not in skip:
                guarded(r, "energy", energy_of, kind, board, probe, obs.wakes, compute_ms / 1000.0)


def heap_of(kind: str, p: dict) -> dict:
    """The smallest heap for a week, and a week at the goal's 32K (a worker process)."""
    r: dict = {}
    with precompiled():
        log(f"{kind}: smallest heap for {p['week_h']:g} h")
        guarded(r, "heap_smallest", heap.smallest, kind, p["search_h"], p["week_h"], log=log)
        ok, why = heap.runs_ok(kind, heap.GOAL_K, p["week_h"])
        r["heap_goal_run"] = {"heap_k": heap.GOAL_K, "hours": p["week_h"], "ok": ok, "why": why}
        log(f"  heap {kind} {heap.GOAL_K}K {p['week_h']:g} h: {'ok' if ok else 'fails: ' + why[:100]}")
    return r


def energy_of(kind: str, board: dict, probe, states: list, compute_each_s: float) -> dict:
    """Battery life (or the glass balance) from the probe run's wakes, after the first."""
    sent: dict = {}
    for up in probe.uplinks:
        # The uplink belongs to the wake that was running when it went out.
        for w in probe.wakes:
            if w.start_us <= up.t * 1e6 <= w.end_us:
                sent.setdefault(w.index, []).append(len(bytes.fromhex(up.frame)))
                break
    measured_sf = {0: 12, 1: 11, 2: 10, 3: 9, 4: 8, 5: 7}.get(probe.uplinks[-1].dr, 9) if probe.uplinks else 9
    steady = [s for s in states if not s.first]
    covered = probe.hours * 3600.0 - (probe.wakes[1].start_us / 1e6 if len(probe.wakes) > 1 else 0.0)
    out: dict = {"measured_sf": measured_sf, "covered_s": round(covered),
                 "battery": {"cells": em.ALKALINE_2AA.cells, "capacity_ah": em.ALKALINE_2AA.capacity_ah,
                             "mean_cell_v": em.ALKALINE_2AA.mean_cell_v, "cutoff_v": em.ALKALINE_2AA.cutoff_v,
                             "self_discharge_per_year": em.ALKALINE_2AA.self_discharge_per_year,
                             "energy_j": round(em.ALKALINE_2AA.energy_j())}}
    # label -> (board model, MCU light-sleeps while the modem works)
    variants = {board.get("name", board["mcu"]): (em.Board.for_board_file(board), False)}
    if board["mcu"] == "rp2040":
        variants["same parts on an ESP32"] = (em.Board.for_board_file(board, mcu="esp32"), False)
    if kind != "glass":
        variants["ESP32, light sleep while the modem works"] = (em.Board.for_board_file(board, mcu="esp32"), True)
    for label, (b, sleepy) in variants.items():
        per_sf = {}
        for sf in energy.SFS:
            wakes = energy.wakes_at_sf(steady, sent, measured_sf, sf, compute_each_s, sleepy)
            per_sf[f"SF{sf}"] = energy.life(b, wakes, covered)
        out[label] = {"mcu": b.mcu, "sleep_uw": round(b.sleep_watts() * 1e6, 1), "by_sf": per_sf,
                      "what_if": sleepy or label.startswith("same parts")}
    if kind == "glass":
        store = probe.sim.rig.store
        run = {"hours": probe.hours, "harvested_j": round(store.harvested_j, 1),
               "consumed_j": round(store.consumed_j, 1), "min_v": round(store.min_v, 3),
               "browned_out": len(store.browned_out)}
        b = next(iter(variants.values()))[0]
        wakes = energy.wakes_at_sf(steady, sent, measured_sf, 9, compute_each_s)
        out["balance"] = energy.glass_balance(b, wakes, covered, run)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs (a smoke test of the bench)")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds (default all)")
    ap.add_argument("--skip", default="", help=f"comma-separated figures to skip: {', '.join(FIGURES)}")
    ap.add_argument("--jobs", type=int, default=2, help="kinds whose heap weeks run at once (default 2)")
    ap.add_argument("--out", type=Path, default=HERE, help="where results.json/results.md go (default bench/)")
    args = ap.parse_args(argv)
    p = QUICK if args.quick else FULL
    skip = {s for s in args.skip.split(",") if s}
    t0 = time.monotonic()
    results: dict = {"machine": host.describe(), "quick": args.quick, "parameters": p, "kinds": {}}
    log(f"bench on {results['machine']['cpu']} ({results['machine']['cores']} cores), "
        f"{'quick' if args.quick else 'full'} runs")
    kinds = args.kinds.split(",")
    for kind in kinds:
        try:
            bench_kind(kind, p, skip, results["kinds"])
        except Exception as e:  # noqa: BLE001
            results["kinds"].setdefault(kind, {})["error"] = f"{type(e).__name__}: {e}"
            log(f"{kind}: FAILED {e}")
    if "heap" not in skip:
        # The slow part (simulated weeks): the kinds side by side, `--jobs` at a time.
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {kind: pool.submit(heap_of, kind, p) for kind in kinds}
            for kind, fut in futures.items():
                try:
                    results["kinds"].setdefault(kind, {}).update(fut.result())
                except Exception as e:  # noqa: BLE001
                    results["kinds"][kind]["heap_smallest"] = {"error": f"{type(e).__name__}: {e}"}
    if "heap" not in skip:
        log("heap floor of the simulator's runtime")
        b = boards.load(sim_kinds.rig_class("climate").DEFAULT_BOARD)
        results["heap_floor_k"] = {"runtime_as_shipped": heap.floor_k(b, mode=None)}
        with precompiled():
            results["heap_floor_k"]["runtime_compiled"] = heap.floor_k(b)
        results["heap_floor_k"]["runtime_in_rom"] = heap.floor_k(b, rom=True)
    if "fleet" not in skip:
        log(f"fleet: {fleet.NODES} nodes x {fleet.HOURS} h")
        guarded(results, "fleet", fleet.measure)
    results["wall_s"] = round(time.monotonic() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str) + "\n")
    (args.out / "results.md").write_text(report.render(results))
    log(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'} in {results['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
