"""bench/results.md from the results dict: the numbers to beat first, then each figure
with how it was measured (docs/benchmarks.md has the long form)."""
from __future__ import annotations

GOALS = {
    "worst_sealed": 51, "typical_climate": 30, "typical_glass": 24, "cbor_ratio": 1.25,
    "airtime_sf9_s": 30.0, "life_years": 10.0, "awake_ms": 150.0, "heap_k": 32,
    "fleet_s": 60.0, "fleet_first_bar_s": 300.0,
}


def _get(d, *path, default=None):
    for k in path:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _verdict(ok) -> str:
    if ok is None:
        return "not measured"
    return "met" if ok else "**not met**"


def _n(x, fmt="{:g}") -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return fmt.format(round(x, 2) + 0.0)      # + 0.0: no "-0"
    if isinstance(x, int) and not isinstance(x, bool) and abs(x) >= 100000:
        return f"{x:,}"
    return fmt.format(x)


def _one_line(text) -> str:
    return " ".join(str(text or "").split()).replace("|", "/")


def _default_board_energy(k: dict) -> dict:
    e = k.get("energy") or {}
    return e.get(k.get("board"), {}) if isinstance(e, dict) else {}


def numbers_to_beat(res: dict) -> list[str]:
    kinds = res.get("kinds", {})
    rows = ["| goal | kind | measured | verdict |", "|---|---|---|---|"]
    for kind, k in kinds.items():
        v = _get(k, "worst", "sealed")
        rows.append(f"| worst-case sealed uplink ≤ {GOALS['worst_sealed']} B | {kind} | {_n(v)} B | "
                    f"{_verdict(None if v is None else v <= GOALS['worst_sealed'])} |")
    for kind, key in (("climate", "typical_climate"), ("glass", "typical_glass")):
        v = _get(kinds, kind, "typical", "sealed")
        rows.append(f"| typical sealed uplink ≤ {GOALS[key]} B | {kind} | {_n(v)} B | "
                    f"{_verdict(None if v is None else v <= GOALS[key])} |")
    for kind, k in kinds.items():
        v = _get(k, "typical", "body_vs_decentlab")
        body, dl = _get(k, "typical", "body"), _get(k, "typical", "decentlab")
        rows.append(f"| CBOR body ≤ {GOALS['cbor_ratio']} × Decentlab-style bytes | {kind} | "
                    f"{_n(v)}× ({_n(body)} B vs {_n(dl)} B) | {_verdict(None if v is None else v <= GOALS['cbor_ratio'])} |")
    for kind, k in kinds.items():
        v = _get(k, "airtime", "per_day_s", "SF9")
        rows.append(f"| airtime a day at SF9, default interval ({_n(k.get('interval_s'))} s) ≤ 30 s | {kind} | "
                    f"{_n(v)} s | {_verdict(None if v is None else v <= GOALS['airtime_sf9_s'])} |")
    for kind in ("climate", "soil"):
        k = kinds.get(kind, {})
        v = _get(_default_board_energy(k), "by_sf", "SF9", "years")
        alt = _get(k, "energy", "same parts on an ESP32", "by_sf", "SF9", "years")
        best = _get(k, "energy", "ESP32, light sleep while the modem works", "by_sf", "SF9", "years")
        extra = f" (what-ifs: same parts on an ESP32 {_n(alt)} years; and light-sleeping while the modem " \
                f"works {_n(best)} years)" if alt is not None else ""
        rows.append(f"| predicted life on 2×AA ≥ 10 years at 15 min, SF9 | {kind} ({k.get('board', '?')}) | "
                    f"{_n(v)} years{extra} | {_verdict(None if v is None else v >= GOALS['life_years'])} |")
    for kind, k in kinds.items():
        v = _get(k, "awake", "excluding_modem_with_compute_ms")
        virt = _get(k, "awake", "reading", "excluding_modem_ms", "median")
        comp = _get(k, "awake", "compute_estimate_ms")
        rows.append(f"| awake ≤ 150 ms a wake, modem waits excluded (median reading wake) | {kind} | "
                    f"{_n(v)} ms ({_n(virt)} ms sensors in virtual time + ≥ {_n(comp)} ms compute, estimated) | "
                    f"{_verdict(None if v is None else v <= GOALS['awake_ms'])} |")
    for kind, k in kinds.items():
        g = k.get("heap_goal_run") or {}
        smallest = _get(k, "heap_smallest", "smallest_k")
        note = f"smallest found to run {_n(g.get('hours'))} h: {_n(smallest)}K"
        failed = _get(k, "heap_smallest", "failed_week_k")
        if failed:
            note += f" ({', '.join(f'{x}K' for x in failed)} failed within the week)"
        if g and not g.get("ok"):
            note += f"; at 32K: {_one_line(g.get('why'))[:120]}"
        rows.append(f"| runs a week with `-X heapsize=32K` | {kind} | {note} | "
                    f"{_verdict(g.get('ok') if g else None)} |")
    f = res.get("fleet") or {}
    if f.get("available") and f.get("wall_s") is not None:
        v = f.get("wall_s")
        fv = _verdict(v <= GOALS["fleet_s"] and f.get("ok"))
        first = "met" if v <= GOALS["fleet_first_bar_s"] and f.get("ok") else "not met"
        rows.append(f"| 1,000 nodes × 24 h, wall time ≤ 60 s (first bar ≤ 300 s) | fleet | {_n(v)} s "
                    f"(first bar: {first}) | {fv} |")
    elif f.get("available"):
        rows.append(f"| 1,000 nodes × 24 h, wall time ≤ 60 s (first bar ≤ 300 s) | fleet | "
                    f"{_one_line(f.get('reason') or f.get('error'))} | **not met** |")
    else:
        rows.append(f"| 1,000 nodes × 24 h, wall time ≤ 60 s (first bar ≤ 300 s) | fleet | not available: "
                    f"{f.get('reason', f.get('error', 'not run'))} | not measured |")
    return rows


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_n(c) if not isinstance(c, str) else c for c in row) + " |" for row in rows]
    return out


def render(res: dict) -> str:
    m = res.get("machine", {})
    kinds = res.get("kinds", {})
    L = ["# Benchmark results", "",
         f"Generated by `make bench` (`python -m bench`{' --quick' if res.get('quick') else ''}) "
         f"on {m.get('date')}, in {_n(res.get('wall_s'))} s. How each figure is measured: "
         "[docs/benchmarks.md](../docs/benchmarks.md); the energy model: [docs/energy.md](../docs/energy.md).", "",
         "**Machine.** " + f"{m.get('cpu')}, {m.get('cores')} cores (load at start {m.get('load_average_at_start')}), "
         f"{m.get('os')}; Python {m.get('python')}; the unix port reports `{m.get('micropython')}`; "
         f"{m.get('mpy_cross')}; {m.get('valgrind')}; firmware at git {m.get('git')}.", ""]
    if res.get("quick"):
        L += ["**Quick run**: shorter simulations than the full bench; not the record.", ""]
    L += ["## The numbers to beat", ""] + numbers_to_beat(res) + [""]

    L += ["## Bytes on air", "",
          "Sealed = the frame the modem gets (header, AES-CCM body, 8-byte tag), built by the firmware's own "
          "encoder on MicroPython. Typical = the median over a simulated day's readings re-encoded with seq and "
          "counter of a node one year in service; worst = the kind's `worst_case()` with seq and counter "
          "0xFFFFFFFF. Cayenne LPP and Decentlab-style carry the same quantities, unencrypted, without seq.", ""]
    rows = []
    for kind, k in kinds.items():
        t, w = k.get("typical", {}), k.get("worst", {})
        rows.append([kind, t.get("body"), t.get("sealed"), t.get("sealed_first_day"), w.get("body"), w.get("sealed"),
                     t.get("lpp"), w.get("lpp"), t.get("decentlab"), t.get("body_vs_decentlab")])
    L += _table(["kind", "body typical", "sealed typical", "sealed, first day", "body worst", "sealed worst",
                 "LPP typical", "LPP all present", "Decentlab-style", "body / Decentlab"], rows) + [""]
    for kind, k in kinds.items():
        ex = _get(k, "typical", "example")
        if ex:
            L.append(f"- {kind}: LPP `{ex['lpp_hex']}`, Decentlab-style `{ex['decentlab_hex']}`")
    L.append("")

    L += ["## Time on air", "",
          "EU868, 125 kHz, CR 4/5, 13 bytes of LoRaWAN overhead (Semtech formula, simulators/network/eu868.py); "
          "per day = readings a day at the default interval (plus the extra uplinks the simulated day had, "
          "e.g. rain alarms) × time on air of the typical sealed uplink. TTN fair use: 30 s a day.", ""]
    rows = []
    for kind, k in kinds.items():
        a = k.get("airtime") or {}
        toa = a.get("toa_ms", {})
        rows.append([kind, a.get("interval_s")] +
                    [f"{_n(_get(toa, f'SF{sf}', 'typical'))} / {_n(_get(toa, f'SF{sf}', 'worst'))}" for sf in range(7, 13)] +
                    [_get(a, "per_day_s", "SF7"), _get(a, "per_day_s", "SF9"), _get(a, "per_day_s", "SF12"),
                     _get(a, "measured", "per_day_s")])
    L += _table(["kind", "interval s"] + [f"SF{sf} ms typ/worst" for sf in range(7, 13)] +
                ["s/day SF7", "s/day SF9", "s/day SF12", "s/day simulated (ADR)"], rows) + [""]

    L += ["## Awake time per wake (virtual ms)", "",
          "By state, from every machine call the simulator sees (bench/awake.py): sensor = bus time and "
          "conversion waits, modem = the modem's UART (AT answers, TX, RX1/RX2) and duty-cycle sleeps. The "
          "simulator charges no time to computing: compute is estimated from the instructions per wake at one "
          "MCU cycle per instruction (a lower bound). Median of the reading wakes after the first (the first "
          "joins); `other` = wakes without a reading (climate rain watch, glass impact sessions).", ""]
    rows = []
    for kind, k in kinds.items():
        for group in ("reading", "other", "first"):
            g = _get(k, "awake", group)
            if not g:
                continue
            rows.append([kind, group, g["wakes"], g["total_ms"]["median"], g["sensor_ms"]["median"],
                         g["modem_ms"]["median"], g["light_ms"]["median"], g["excluding_modem_ms"]["median"],
                         g["excluding_modem_ms"]["max"],
                         _get(k, "awake", "compute_estimate_ms") if group == "reading" else "—"])
    L += _table(["kind", "wakes", "n", "total", "sensor", "modem", "of which light sleep", "excl. modem",
                 "excl. modem, max", "compute (est.)"], rows) + [""]

    L += ["## Energy and battery life", "",
          "docs/energy.md: datasheet currents of MCU, modem and parts, each with its source; 2×AA alkaline "
          f"({_n(em_get(kinds, 'capacity_ah'))} Ah per cell, {_n(em_get(kinds, 'mean_cell_v'))} V mean, "
          f"cut-off {_n(em_get(kinds, 'cutoff_v'))} V, self-discharge {_n(em_get(kinds, 'self_discharge_per_year'))} "
          "of capacity a year). The wakes are the simulated ones (reading and other wakes, after the first).", ""]
    rows = []
    for kind, k in kinds.items():
        e = k.get("energy") or {}
        for label, v in e.items():
            if not isinstance(v, dict) or "by_sf" not in v:
                continue
            by = v["by_sf"]
            if kind == "glass":
                label += " (no battery: harvests; see the balance below)"
            rows.append([kind, label, v.get("sleep_uw")] +
                         [f"{_n(_get(by, f'SF{sf}', 'day_j'))} J / {_n(_get(by, f'SF{sf}', 'years'))} y" for sf in (7, 9, 12)])
    L += _table(["kind", "board", "sleep floor µW", "SF7: a day / life", "SF9", "SF12"], rows) + [""]
    for kind, k in kinds.items():
        parts = _get(_default_board_energy(k), "by_sf", "SF9", "day_j_by_part")
        if parts:
            top = sorted(parts.items(), key=lambda kv: -kv[1])[:4]
            L.append(f"- {kind} at SF9, where a day's energy goes: " +
                     ", ".join(f"{name} {val:.1f} J" for name, val in top))
    bal = _get(kinds, "glass", "energy", "balance")
    if bal:
        L += ["", f"**Glass node energy balance** (solar model of simulators/power/harvester.py, 40 mW cell, "
              f"10 F store, {_n(bal['store_usable_j'])} J usable): consumption {_n(bal['consumption_day_j'])} J a day "
              f"(energy model, SF9); harvest a day by month: " +
              ", ".join(f"{mo} {j:g}" for mo, j in bal["harvest_day_j_by_month"].items()) +
              f" J. Worst month {bal['worst_month']}: balance {_n(bal['balance_worst_month_j'])} J a day; "
              f"months in deficit: {', '.join(bal['months_in_deficit']) or 'none'}. The simulated run "
              f"({_n(_get(bal, 'simulated_run', 'hours'))} h from 1 June) harvested "
              f"{_n(_get(bal, 'simulated_run', 'harvested_j'))} J and used {_n(_get(bal, 'simulated_run', 'consumed_j'))} J "
              f"(the harvester's own load model); lowest store voltage {_n(_get(bal, 'simulated_run', 'min_v'))} V."]
    L.append("")

    L += ["## Heap", "",
          "Peak per wake: gc.collect() and gc.mem_alloc() before every machine call (bench/node_probe.py). "
          "The node holds its firmware as a board must (docs/flashing.md): in a ROMFS image mapped outside "
          "the heap, imported in place; the simulator's runtime (a board has machine/time built in) comes "
          "from a second image (simulators/romfs.py). Smallest heap: "
          "binary search over simulated days, then 7 days at the size found. The unix port is 64-bit: "
          "objects take more room than on a 32-bit MCU.", ""]
    fl = res.get("heap_floor_k") or {}
    if fl:
        L += [f"Floor of the simulator itself (a main.py that only deep-sleeps): {_n(fl.get('runtime_as_shipped'))}K "
              f"as shipped, {_n(fl.get('runtime_compiled'))}K with the runtime compiled, "
              f"{_n(fl.get('runtime_in_rom'))}K with the runtime in its ROM image (as the bench's nodes run).", ""]
    rows = []
    for kind, k in kinds.items():
        h = k.get("heap_per_wake") or {}
        rows.append([kind, h.get("runtime_base"), h.get("first_wake_peak"), h.get("peak_median"), h.get("peak_max"),
                     h.get("total_alloc_median"), _get(k, "heap_smallest", "smallest_k"),
                     "ok" if _get(k, "heap_goal_run", "ok") else _one_line(_get(k, "heap_goal_run", "why", default="—"))[:100]])
    L += _table(["kind", "runtime base B", "peak, first wake B", "peak median B", "peak max B",
                 "allocated a wake B", "smallest heap (7 days) K", "a week at 32K"], rows) + [""]

    L += ["## Firmware size and instructions", "",
          "`.mpy` bytes a board of the kind needs (mpy-cross, host_tools/firmware_build.py): main.py and every "
          "module reachable from it, the kind and the modem driver. Instructions: callgrind on the node's "
          "MicroPython process, counted inside MicroPython's main only; sim-only = the JSON wire, compiling "
          "the simulator's Python runtime, the Python flash driver.", ""]
    rows = []
    for kind, k in kinds.items():
        cg = k.get("callgrind") or {}
        w = [x for x in cg.get("wakes", []) if x.get("reading") and x.get("wake") != 1]
        first = next((x for x in cg.get("wakes", []) if x.get("wake") == 1), {})
        rows.append([kind, _get(k, "mpy", "bytes"), _get(k, "mpy", "modules"),
                     first.get("instructions"), cg.get("reading_wake_instructions"),
                     cg.get("reading_wake_firmware_estimate"),
                     cg.get("reason") if cg.get("available") is False else f"{len(cg.get('wakes', []))} wakes"])
    L += _table(["kind", ".mpy bytes", "modules", "instructions, first wake", "instructions, reading wake",
                 "of which firmware (est.)", "callgrind"], rows) + [""]

    L += ["## Simulator throughput", "",
          "A simulated day of one node as `nodectl simulate` runs it (a process per wake), wall clock on this machine.", ""]
    rows = [[kind, _get(k, "throughput", "wakes"), _get(k, "throughput", "wall_s"),
             _get(k, "throughput", "wakes_per_s"), _get(k, "throughput", "virtual_h_per_wall_s")]
            for kind, k in kinds.items()]
    L += _table(["kind", "wakes", "wall s", "wakes/s", "virtual h per wall s"], rows) + [""]

    f = res.get("fleet") or {}
    L += ["## Fleet", ""]
    if f.get("available") and f.get("wall_s") is None:
        L += [f"`nodectl simulate --nodes {f.get('nodes')} --hours {f.get('hours')}`: "
              f"{_one_line(f.get('reason') or f.get('error'))}."]
    elif f.get("available"):
        L += [f"`nodectl simulate --nodes {f.get('nodes')} --hours {f.get('hours')}`: {_n(f.get('wall_s'))} s wall "
              f"(goal ≤ {_n(f.get('goal_s'))} s, first bar ≤ {_n(f.get('first_bar_s'))} s); "
              f"exit {'ok' if f.get('ok') else 'failed'}; report.html {'written' if f.get('report_html') else 'missing'}."]
    else:
        L += [f"Not available: {f.get('reason', f.get('error', 'not run'))}."]
    errors = [(kind, key, v["error"]) for kind, k in kinds.items() for key, v in k.items()
              if isinstance(v, dict) and "error" in v and v["error"]]
    if errors:
        L += ["", "## Figures that failed", ""] + [f"- {kind} {key}: {err}" for kind, key, err in errors]
    return "\n".join(L) + "\n"


def em_get(kinds: dict, key: str):
    for k in kinds.values():
        v = _get(k, "energy", "battery", key)
        if v is not None:
            return v
    return None
