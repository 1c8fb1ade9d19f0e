"""The report of a fleet run: PNG plots and report.html beside them, in the run's folder.

    from host_tools.fleet_report import write_report
    write_report(result, Path("fleet-out"))     # -> fleet-out/report.html

report.html is self-contained but for its images, which it links relatively, so the
folder can be moved or served as it is. The plots (matplotlib, Agg backend):
- readings.png: each kind's main decoded reading over time, one line per node;
- delivery.png: delivery ratio per node (uplinks the application got after the gateway,
  collisions included, over the uplinks the node put on air) against distance;
- airtime.png: time on air per node per day against distance, beside TTN's fair-use 30 s;
- energy.png: battery voltage (glass: the solar store's voltage) over time, per node.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from host_tools import schemas  # noqa: E402

READING = {"climate": "temperature", "soil": "vwc_1", "water": "temperature", "glass": "fill"}
ENERGY = {"glass": "storage"}          # every other kind reports "battery"
TTN_FAIR_USE_S = 30
COLORS = {"climate": "tab:red", "soil": "tab:brown", "water": "tab:blue", "glass": "tab:green"}
PLOTS = ("readings.png", "delivery.png", "airtime.png", "energy.png")


def _unit(kind: str, channel: str) -> str:
    for s in schemas.SCHEMAS.values():
        if s.kind == kind:
            for c in s.channels:
                if c.name == channel:
                    return c.unit
    return ""


def _series(uplinks: list[dict], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for u in uplinks:
        v = u["decoded"].get(key)
        if isinstance(v, (int, float)):
            xs.append(u["t"] / 3600)
            ys.append(v)
    return xs, ys


def _kinds(result) -> list[str]:
    return sorted({n.plan.kind for n in result.nodes})


def _by_kind_plot(result, path: Path, channel_of, title: str) -> None:
    kinds = _kinds(result)
    fig, axes = plt.subplots(len(kinds), 1, figsize=(9, 2.6 * len(kinds)), sharex=True,
                             squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds):
        channel = channel_of(kind)
        nodes = [n for n in result.nodes if n.plan.kind == kind]
        alpha = max(0.15, min(0.9, 8 / len(nodes)))
        for n in nodes:
            xs, ys = _series(result.received(n), channel)
            if xs:
                ax.plot(xs, ys, color=COLORS.get(kind), alpha=alpha, linewidth=0.8)
        ax.set_ylabel(f"{channel} ({_unit(kind, channel)})")
        ax.set_title(f"{kind}: {len(nodes)} nodes", fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("hours since the start of the run")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _scatter(result, path: Path, value, ylabel: str, title: str, hline=None) -> None:
    fig, ax = plt.subplots(figsize=(9, 4))
    for kind in _kinds(result):
        pts = [(n.plan.distance_m / 1000, value(n)) for n in result.nodes if n.plan.kind == kind]
        pts = [(x, y) for x, y in pts if y is not None]
        if pts:
            ax.scatter(*zip(*pts), s=10, alpha=0.7, color=COLORS.get(kind), label=kind)
    if hline is not None:
        ax.axhline(hline[0], color="black", linestyle="--", linewidth=1, label=hline[1])
    ax.set_xlabel("distance to the gateway (km)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_plots(result, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    _by_kind_plot(result, out_dir / "readings.png", lambda k: READING.get(k, "battery"),
                  "Decoded readings per kind")
    _scatter(result, out_dir / "delivery.png", lambda n: result.node_stats(n)["delivery"],
             "delivery ratio", "Uplinks received / uplinks sent, per node")
    _scatter(result, out_dir / "airtime.png", lambda n: result.node_stats(n)["airtime_s_per_day"],
             "time on air (s per day)", "Airtime per node per day",
             hline=(TTN_FAIR_USE_S, "TTN fair use, 30 s/day"))
    _by_kind_plot(result, out_dir / "energy.png", lambda k: ENERGY.get(k, "battery"),
                  "Battery (glass: solar store) over time")
    return [out_dir / p for p in PLOTS]


def _table(rows: list[tuple], head: tuple) -> str:
    out = ["<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in head) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>")
    return "\n".join(out + ["</table>"])


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def write_report(result, out_dir: Path) -> Path:
    """The plots, summary.json and report.html; returns report.html's path."""
    out_dir = Path(out_dir)
    write_plots(result, out_dir)
    s = result.summary()
    (out_dir / "summary.json").write_text(json.dumps(s, indent=1) + "\n")
    airtime = s["airtime_s_per_node_day"]
    summary_rows = [
        ("nodes", s["nodes"]),
        ("kinds", ", ".join(f"{k} {v}" for k, v in s["kinds"].items())),
        ("simulated hours", f"{s['hours']:g}"), ("seed", s["seed"]),
        ("wakes", s["wakes"]), ("readings taken", s["readings"]),
        ("uplinks sent", s["uplinks_sent"]), ("uplinks received", s["uplinks_received"]),
        ("collisions at the gateway (frames)", s["collisions"]),
        ("delivery ratio", _pct(s["delivery_ratio"])),
        ("airtime per node per day (mean / max)", f"{airtime['mean']} s / {airtime['max']} s"),
        ("decode errors", s["decode_errors"]),
        ("nodes that stopped", ", ".join(s["stopped_nodes"]) or "none"),
        ("wall time", f"{s['wall_s']} s ({s['workers']} workers)"),
    ]
    kind_rows = []
    for kind in _kinds(result):
        nodes = [n for n in result.nodes if n.plan.kind == kind]
        st = [result.node_stats(n) for n in nodes]
        sent, got = sum(x["sent"] for x in st), sum(x["received"] for x in st)
        kind_rows.append((kind, len(nodes), sum(n.wakes for n in nodes), sent, got,
                          _pct(got / sent if sent else None),
                          f"{sum(x['airtime_s_per_day'] for x in st) / len(st):.1f}"))
    worst = sorted(result.nodes, key=lambda n: (result.node_stats(n)["delivery"] is None,
                                                result.node_stats(n)["delivery"] or 0))[:10]
    worst_rows = [(n.plan.name, f"{n.plan.distance_m:.0f} m", result.node_stats(n)["sent"],
                   result.node_stats(n)["received"], result.node_stats(n)["collisions"],
                   _pct(result.node_stats(n)["delivery"])) for n in worst]
    images = "\n".join(f'<p><img src="{p}" alt="{p}"></p>' for p in PLOTS)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fleet report</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Fleet report</h1>
<p>{s['nodes']} simulated nodes sharing one gateway for {s['hours']:g} hours: the real
firmware on MicroPython, in virtual time. Uplinks count as received when the application
got them after the gateway's collisions (docs/simulator.md, "Fleets").</p>
<h2>Summary</h2>
{_table(summary_rows, ("", ""))}
<h2>Per kind</h2>
{_table(kind_rows, ("kind", "nodes", "wakes", "uplinks sent", "received", "delivery",
                    "airtime s/day (mean)"))}
<h2>Plots</h2>
{images}
<h2>Nodes with the lowest delivery</h2>
{_table(worst_rows, ("node", "distance", "sent", "received", "collisions", "delivery"))}
<p>Each decoded uplink: <a href="uplinks.jsonl">uplinks.jsonl</a>; the figures:
<a href="summary.json">summary.json</a>; each node's console: <code>nodes/NAME/console.log</code>.</p>
</body></html>
"""
    path = out_dir / "report.html"
    path.write_text(page)
    return path
