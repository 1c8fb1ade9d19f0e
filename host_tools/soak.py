"""The account of a soak: every reading a node took, and where it ended (docs/soak.md).

    acc = account(nodes, inventory_path, ledger_path)
    acc["total"]["unaccounted"]          # 0, or readings gone without a trace
    print(report(acc))                   # the table nodectl soak prints

Each figure comes from its own source, never from the node's word alone:
- taken: the readings the simulator saw the firmware take (its console line, printed
  once the reading is on the flash);
- delivered: the uplinks the network server passed on, opened with the inventory's keys
  and decoded here (host_tools.envelope, host_tools.schemas), each through the decoder's
  ledger (host_tools.ledger) as `nodectl decode --state` would; a seq counts once;
- queued: what the node's flash holds at the end, read by the firmware's own queue class
  (the simulator's probe), each body decoded here;
- dropped: the ranges the node reported dropped in the node records (schema 6) the host
  decoded, with their reason; ranges still waiting on the flash for a record to carry
  them are "dropped, not yet reported";
- lost: readings whose last transmission the network recorded lost, with its reason
  (link budget, network unavailable, ...), and that are neither delivered nor queued;
- unaccounted: taken readings with none of those ends.
Every uplink the modem put on air, received or not, counts for counter reuses: one
envelope counter on two different frames is a reuse (the same frame again is the MAC's
retransmission of it, not a reuse).

A node's record (`nodes`) is plain data: `plan` (index, name, kind), `dev_eui`, `taken`
[[seq, wake, t_us]], `frames` [{t_us, fcnt, payload, outcome}], `queue` (the probe's
answer), `config_bad` [[wake, why]], `wakes`, `cuts`, `error` (simulators/soak).
"""
from __future__ import annotations

from pathlib import Path

from host_tools import envelope, inventory, schemas
from host_tools.ledger import Ledger, ReplayError

REASONS = {1: "queue full", 2: "power cut", 3: "unsendable"}
NODE_KIND = "node"


def _reason(r) -> str:
    if isinstance(r, str):
        return r
    return REASONS.get(r, f"reason {r}")


def _ranges(dropped) -> list[tuple[int, int, str]]:
    """[(first, last, reason name)] of a decoded record's or the flash's dropped ranges
    (lists [first, last, reason] or dicts with those keys)."""
    out = []
    for r in dropped or ():
        if isinstance(r, dict):
            first, last, reason = r.get("first"), r.get("last"), r.get("reason")
        else:
            first, last, reason = r[0], r[1], r[2]
        out.append((int(first), int(last), _reason(reason)))
    return out


def _figures() -> dict:
    return {"taken": 0, "delivered": 0, "queued": 0, "dropped": {}, "dropped_unreported": {},
            "lost": {}, "unaccounted": 0, "untaken": 0, "seq_reuses": 0, "counter_reuses": 0,
            "stored_at_cut": 0, "mac_retransmissions": 0, "config_corruptions": 0, "node_records": 0,
            "skipped_seqs": 0, "decode_errors": 0, "replays": 0, "ledger_misjudged": 0,
            "dropped_uncounted": 0, "frames_on_air": 0, "wakes": 0,
            "power_cuts": {"flash_op": 0, "at": 0}, "nodes": 0, "stopped_nodes": 0}


def _add(into: dict, one: dict) -> None:
    for k, v in one.items():
        if isinstance(v, dict):
            _add(into.setdefault(k, {}), v)
        else:
            into[k] = into.get(k, 0) + v


def _open(key: bytes, dev_eui: bytes, payload: bytes) -> tuple[int, list[dict]]:
    """(counter, readings) of a sealed frame: one body, or several in one array."""
    counter, body = envelope.unseal(key, dev_eui, payload)
    decode_all = getattr(schemas, "decode_readings", None)
    if decode_all is not None:
        return counter, decode_all(body)
    return counter, [schemas.decode_body(body)]


def _accept(ledger: Ledger, dev_eui: str, counter: int, readings: list[dict]) -> list:
    """The decoder's verdicts on a frame, as `nodectl decode --state` keeps them."""
    accept_frame = getattr(ledger, "accept_frame", None)
    if accept_frame is not None:
        return accept_frame(dev_eui, counter, readings)
    return [ledger.accept(dev_eui, counter, r["seq"]) for r in readings]


def counter_reuses(frames: list[dict]) -> tuple[int, int, int]:
    """(reuses, MAC retransmissions, frames whose header cannot be read) over every
    uplink on air. The header is read without the key (envelope.parse_header)."""
    seen: dict[int, set] = {}
    repeats = unreadable = 0
    for f in frames:
        payload = bytes.fromhex(f["payload"])
        try:
            counter = envelope.parse_header(payload)[2]
        except envelope.EnvelopeError:
            unreadable += 1
            continue
        frame = (f["fcnt"], payload)
        same = seen.setdefault(counter, set())
        if frame in same:
            repeats += 1            # the modem sent the same frame again (confirmed retry)
        same.add(frame)
    reuses = sum(len(v) - 1 for v in seen.values())
    return reuses, repeats, unreadable


def node_account(node, key: bytes, ledger: Ledger) -> tuple[dict, dict]:
    """(figures, detail) of one node; the ledger is the decoder's memory of devices."""
    fig = _figures()
    fig["nodes"] = 1
    fig["stopped_nodes"] = 1 if node.error else 0
    fig["wakes"] = node.wakes
    _add(fig["power_cuts"], node.cuts)
    dev_eui = bytes.fromhex(node.dev_eui)
    detail = {"name": node.plan.name, "kind": node.plan.kind, "dev_eui": node.dev_eui,
              "unaccounted": [], "untaken": [], "ledger_misjudged": [],
              "stored_at_cut": list(getattr(node, "stored_at_cut", ())),
              "config_bad": list(node.config_bad),
              "error": node.error}

    taken: dict[int, int] = {}
    for seq, _wake, _t in node.taken:
        taken[seq] = taken.get(seq, 0) + 1
    fig["taken"] = len(taken)
    fig["seq_reuses"] = sum(n - 1 for n in taken.values())
    fig["stored_at_cut"] = len(getattr(node, "stored_at_cut", ()))

    fig["frames_on_air"] = len(node.frames)
    fig["counter_reuses"], fig["mac_retransmissions"], unreadable = counter_reuses(node.frames)
    fig["decode_errors"] += unreadable

    # Delivered: what the network server passed on, opened and decoded here.
    delivered: set[int] = set()
    delivered_records: set[int] = set()
    reported: list[tuple[int, int, str]] = []
    for f in node.frames:
        if f["outcome"] != "received":
            continue
        try:
            counter, readings = _open(key, dev_eui, bytes.fromhex(f["payload"]))
        except (envelope.EnvelopeError, schemas.SchemaError):
            fig["decode_errors"] += 1
            continue
        try:
            verdicts = _accept(ledger, node.dev_eui, counter, readings)
        except ReplayError:
            fig["replays"] += 1
            continue
        for reading, verdict in zip(readings, verdicts):
            seq = reading["seq"]
            first_time = seq not in delivered
            if verdict.duplicate == first_time:
                fig["ledger_misjudged"] += 1   # the decoder's verdict disagrees with the seqs seen
                detail["ledger_misjudged"].append([seq, counter, "duplicate" if verdict.duplicate
                                                   else "new"])
            delivered.add(seq)
            if reading.get("kind") == NODE_KIND:
                delivered_records.add(seq)
                if first_time:
                    fig["node_records"] += 1
                reported += _ranges(reading.get("dropped"))

    # Lost on air: the reason of each seq's last transmission that did not arrive.
    record_seqs = set()              # node records are no readings, wherever they ended
    lost_on_air: dict[int, str] = {}
    for f in node.frames:
        if f["outcome"] in ("received", "retransmission"):
            continue
        try:
            _, readings = _open(key, dev_eui, bytes.fromhex(f["payload"]))
        except (envelope.EnvelopeError, schemas.SchemaError):
            continue
        for reading in readings:
            if reading.get("kind") == NODE_KIND:
                record_seqs.add(reading["seq"])
            lost_on_air[reading["seq"]] = f["outcome"]
    record_seqs |= delivered_records

    # Queued: the flash at the end, read by the firmware's own queue class.
    q = node.queue or {}
    if "error" in q or not q.get("mount", True):
        detail["probe"] = q.get("error") or "the flash does not mount"
    queued: set[int] = set()
    for seq, body in q.get("queued", ()):
        try:
            reading = schemas.decode_body(bytes.fromhex(body))
        except schemas.SchemaError:
            continue                     # not a reading that can ever be delivered
        if reading["seq"] != seq:
            continue
        if reading.get("kind") == NODE_KIND:
            record_seqs.add(seq)
        else:
            queued.add(seq)
    pending = q.get("dropped")
    unreported: list[tuple[int, int, str]] = []
    if isinstance(pending, list):
        unreported = _ranges(pending)
    elif isinstance(pending, int):
        fig["dropped_uncounted"] = pending   # a count without seqs: no reading is placed by it

    def reason_of(seq, ranges):
        for first, last, reason in ranges:
            if first <= seq <= last:
                return reason
        return None

    for seq in sorted(taken):
        if seq in delivered:
            fig["delivered"] += 1
        elif seq in queued:
            fig["queued"] += 1
        elif (r := reason_of(seq, reported)) is not None:
            fig["dropped"][r] = fig["dropped"].get(r, 0) + 1
        elif (r := reason_of(seq, unreported)) is not None:
            fig["dropped_unreported"][r] = fig["dropped_unreported"].get(r, 0) + 1
        elif seq in lost_on_air:
            r = lost_on_air[seq]
            fig["lost"][r] = fig["lost"].get(r, 0) + 1
        else:
            fig["unaccounted"] += 1
            detail["unaccounted"].append(seq)
    # The other way round: a reading delivered or queued that no wake was seen taking.
    delivered -= delivered_records
    ghosts = sorted((delivered | queued) - set(taken) - record_seqs)
    fig["untaken"] = len(ghosts)
    detail["untaken"] = ghosts
    # Seqs in dropped ranges that were never taken: numbers a power cut consumed before a
    # reading was stored (the counter reserves ahead). Not readings; listed apart.
    skipped = set()
    for first, last, _ in reported + unreported:
        skipped.update(s for s in range(first, last + 1) if s not in taken)
    fig["skipped_seqs"] = len(skipped - record_seqs)
    fig["config_corruptions"] = len(node.config_bad)
    return fig, detail


def account(nodes, inventory_path: Path, ledger_path: Path) -> dict:
    """Figures per kind and in total, and per node (keys come from the inventory)."""
    rows = inventory.read(inventory_path)
    kinds: dict[str, dict] = {}
    total = _figures()
    per_node = []
    with Ledger(ledger_path) as ledger:
        for node in nodes:
            if not node.dev_eui:
                fig, detail = _figures(), {"name": node.plan.name, "kind": node.plan.kind,
                                           "error": node.error}
                fig["nodes"] = fig["stopped_nodes"] = 1
            else:
                row = rows.get(node.dev_eui.upper())
                if row is None:
                    raise inventory.InventoryError(f"DevEUI {node.dev_eui} is not in {inventory_path}")
                fig, detail = node_account(node, bytes.fromhex(row["payload_key"]), ledger)
            detail["figures"] = fig
            per_node.append(detail)
            _add(kinds.setdefault(node.plan.kind, _figures()), fig)
            _add(total, fig)
    total["nodes"] = len(per_node)
    return {"total": total, "kinds": kinds, "nodes": per_node}


def balanced(fig: dict) -> bool:
    """taken = delivered + queued + dropped + lost + unaccounted."""
    return fig["taken"] == (fig["delivered"] + fig["queued"] + sum(fig["dropped"].values())
                            + sum(fig["dropped_unreported"].values()) + sum(fig["lost"].values())
                            + fig["unaccounted"])


def clean(fig: dict) -> bool:
    """Nothing unaccounted, nothing from nowhere, no counter or seq used twice, every
    wake on its own configuration, every node still running."""
    return (balanced(fig) and fig["unaccounted"] == 0 and fig["untaken"] == 0
            and fig["counter_reuses"] == 0 and fig["seq_reuses"] == 0
            and fig["config_corruptions"] == 0 and fig["stopped_nodes"] == 0
            and fig["decode_errors"] == 0 and fig["replays"] == 0)


def _reasons(d: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "none"


def report(acc: dict, head: str = "") -> str:
    """The account as a short table and the lines under it."""
    lines = [head] if head else []
    cols = ("taken", "delivered", "queued", "dropped", "lost", "unaccounted")
    lines.append(f"{'':<8}" + "".join(f"{c:>12}" for c in cols))
    for name, fig in [*sorted(acc["kinds"].items()), ("total", acc["total"])]:
        row = [fig["taken"], fig["delivered"], fig["queued"],
               sum(fig["dropped"].values()) + sum(fig["dropped_unreported"].values()),
               sum(fig["lost"].values()), fig["unaccounted"]]
        lines.append(f"{name:<8}" + "".join(f"{v:>12}" for v in row))
    t = acc["total"]
    lines.append(f"dropped, reported by node records: {_reasons(t['dropped'])}; "
                 f"not yet reported (on the flash): {_reasons(t['dropped_unreported'])}")
    lines.append(f"lost on air (last try): {_reasons(t['lost'])}")
    lines.append(f"counter reuses: {t['counter_reuses']} over {t['frames_on_air']} frames on air "
                 f"(the same frame sent again by the MAC: {t['mac_retransmissions']})")
    lines.append(f"config corruptions: {t['config_corruptions']} wakes")
    lines.append(f"readings delivered or queued that no wake took: {t['untaken']}; seq used twice: "
                 f"{t['seq_reuses']}; seqs skipped by a cut (no reading): {t['skipped_seqs']}; "
                 f"node records delivered: {t['node_records']}")
    if t["decode_errors"] or t["replays"] or t["ledger_misjudged"]:
        lines.append(f"decode errors: {t['decode_errors']}; replays rejected: {t['replays']}; "
                     f"ledger verdicts that disagree with the seqs seen: {t['ledger_misjudged']}")
    if t["dropped_uncounted"]:
        lines.append(f"the nodes count {t['dropped_uncounted']} dropped readings without saying "
                     f"which (no node record yet)")
    stopped = [n["name"] for n in acc["nodes"] if n.get("error")]
    if stopped:
        lines.append(f"stopped nodes: {', '.join(stopped)}")
    return "\n".join(lines)


def write_inventory(nodes, path: Path) -> None:
    """The nodes' keys, one inventory row each (mode 0600), for the decoder."""
    path = Path(path)
    path.unlink(missing_ok=True)
    for node in nodes:
        if node.keys:
            inventory.append(path, node.keys)


def soak(spec, progress=None) -> dict:
    """Run a soak (simulators/soak.py) and account for it. Writes OUT/inventory.csv (the
    keys, 0600), OUT/ledger.json (the decoder's state) and OUT/account.json (figures per
    node, no keys). Returns the account with the run's facts under "run"."""
    import json
    from dataclasses import asdict

    from simulators.soak import run_soak

    out = Path(spec.out_dir)
    result = run_soak(spec, progress)
    inv = out / "inventory.csv"
    write_inventory(result.nodes, inv)
    ledger = out / "ledger.json"
    ledger.unlink(missing_ok=True)      # a fresh decoder: these DevEUIs come back per seed
    acc = account(result.nodes, inv, ledger)
    made = acc["total"]["power_cuts"]
    acc["run"] = {"nodes": spec.nodes, "days": spec.days, "seed": spec.seed,
                  "faults": spec.faults, "radius_m": spec.radius_m,
                  "power_cuts": {"planned": spec.power_cuts, "made": sum(made.values()), **made},
                  "wakes": acc["total"]["wakes"], "workers": result.workers,
                  "wall_s": round(result.wall_s, 1), "ok": clean(acc["total"]),
                  "out": str(out), "inventory": str(inv)}
    plans = {n.plan.index: asdict(n.plan) for n in result.nodes}
    for detail, node in zip(acc["nodes"], result.nodes):
        detail["plan"] = plans[node.plan.index]
        detail["wall_s"] = round(node.wall_s, 1)
    (out / "account.json").write_text(json.dumps(acc, indent=1, default=str))
    return acc


def summary(acc: dict) -> dict:
    """The figures `nodectl soak --json` prints: the run, the total and each kind."""
    return {**acc["run"], "total": acc["total"], "kinds": acc["kinds"]}
