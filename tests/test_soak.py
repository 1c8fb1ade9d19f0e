"""The soak's account (nodectl soak, docs/soak.md): every reading a node took ends
delivered, queued, dropped or lost with a reason, and the account catches a reading
that vanished, a counter used twice on air and a wake on the wrong configuration."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from host_tools import cli, config_image
from host_tools import soak as account_mod
from simulators import soak
from simulators.fleet.run import firmware_split
from simulators.fleet.warm import WarmInterpreter
from simulators.interpreter import REPO, run_script


def _figures(fig: dict) -> tuple:
    return (fig["taken"], fig["delivered"], fig["queued"], fig["dropped"],
            fig["dropped_unreported"], fig["lost"], fig["unaccounted"])


# --- the plan ---------------------------------------------------------------------------------
def test_plan_spreads_every_cut_half_in_flash_ops_and_gives_each_part_its_fault_time():
    spec = soak.SoakSpec(nodes=8, days=2, power_cuts=101, faults=0.1, seed=5)
    plans = soak.plan(spec)
    cuts = [c for p in plans for c in p.cuts]
    assert len(cuts) == 101
    assert sum(m == "flash_op" for _, m in cuts) == 51
    assert len({p.index for p in plans if p.cuts}) > 4, "cuts go to many nodes"
    assert [p.kind for p in plans[:4]] == ["climate", "soil", "water", "glass"]
    for p in plans:
        per_part: dict[str, float] = {}
        for text in p.faults:
            window = soak.FaultWindow.parse(text)
            per_part[window.part] = per_part.get(window.part, 0) + window.end_h - window.start_h
            assert 0 <= window.start_h and window.end_h <= 48
        assert {"modem", "network"} <= set(per_part)
        for part, hours in per_part.items():
            assert hours == pytest.approx(0.1 * 48, abs=1e-3), (p.name, part)
    assert soak.plan(spec) == plans, "the plan follows from the seed alone"
    assert soak.plan(soak.SoakSpec(nodes=8, days=2, power_cuts=101, faults=0.1, seed=6)) != plans


def test_plan_refuses_a_fault_rate_outside_0_to_1():
    with pytest.raises(ValueError, match="--faults"):
        soak.plan(soak.SoakSpec(nodes=1, days=1, faults=1.5))


# --- one node at a time, with the simulator's pieces the soak workers use ----------------------
@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    out = tmp_path_factory.mktemp("soak-rig")
    rom, flash_files = firmware_split(out)
    vm = WarmInterpreter(out / "vm")
    probe = soak.Probe(out / "vm")
    yield {"out": out, "rom": rom, "flash": flash_files, "vm": vm, "probe": probe}
    probe.close()
    vm.close()


def _run(rig, tmp_path, kind="climate", hours=6.0, faults=(), hook=None, power_cuts=None):
    spec = soak.SoakSpec(nodes=1, days=hours / 24, seed=3, out_dir=tmp_path, radius_m=0)
    plan = soak.NodePlan(0, f"{kind}-0001", kind, 300_009, None, (), tuple(faults))
    rec = soak.run_node(plan, spec, rig["vm"], rig["probe"], rig["rom"], rig["flash"],
                        hook=hook, power_cuts=power_cuts)
    assert rec.error is None, rec.error
    return rec


def _account(rec, tmp_path):
    inv = tmp_path / "inventory.csv"
    account_mod.write_inventory([rec], inv)
    ledger = tmp_path / "ledger.json"
    ledger.unlink(missing_ok=True)
    return account_mod.account([rec], inv, ledger)


def _remove_newest_queue_file(image: Path) -> None:
    """Delete the newest file of the node's queue folder, as a flash that lost it would."""
    r = run_script(
        "import os, vfs\n"
        "from _simflash import FlashBlockDevice, PROG_SIZE\n"
        f"dev = FlashBlockDevice({str(image)!r})\n"
        "vfs.mount(vfs.VfsLfs2(dev, progsize=PROG_SIZE), '/f')\n"
        "names = sorted(n for n in os.listdir('/f/q') if len(n) == 8)\n"
        "os.remove('/f/q/' + names[-1])\n"
        "vfs.umount('/f')\n"
        "print(names[-1])\n",
        path=[REPO / "simulators" / "node_runtime"])
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_reading_that_vanishes_from_the_flash_is_unaccounted(rig, tmp_path):
    # The modem is silent for the last two hours: those readings stay queued.
    rec = _run(rig, tmp_path, faults=["modem:silent@4-6"])
    before = _account(rec, tmp_path)["total"]
    assert before["queued"] >= 4 and before["unaccounted"] == 0, before
    assert account_mod.balanced(before)

    queued = {seq for seq, _ in rec.queue["queued"]}
    _remove_newest_queue_file(Path(rec.image))
    rec.queue = rig["probe"].ask("queue", Path(rec.image))
    gone = queued - {seq for seq, _ in rec.queue["queued"]}
    assert gone, "the file removed held a queued reading"

    acc = _account(rec, tmp_path)
    after = acc["total"]
    assert after["unaccounted"] == len(gone)
    assert set(acc["nodes"][0]["unaccounted"]) == gone
    assert after["queued"] == before["queued"] - len(gone)
    assert account_mod.balanced(after) and not account_mod.clean(after)


def test_the_probe_reads_the_flash_without_changing_it(rig, tmp_path):
    rec = _run(rig, tmp_path, hours=2, faults=["modem:silent@1-2"])
    image = Path(rec.image)
    digest = hashlib.sha256(image.read_bytes()).hexdigest()
    answer = rig["probe"].ask("queue", image)
    assert answer["mount"] and answer["queued"]
    assert rig["probe"].ask("config", image)["config"] == rec.provisioned
    assert hashlib.sha256(image.read_bytes()).hexdigest() == digest


def test_a_counter_sent_twice_on_air_is_counted(rig, tmp_path):
    # The flash rolls back three wakes (a restored backup, a bad flash): on a board
    # without RTC memory the frame counter comes back from the flash and repeats.
    saved = tmp_path / "snapshot.img"

    def roll_back(sim, wake):
        if wake.index == 4:
            shutil.copyfile(sim.node.flash.path, saved)
        if wake.index == 7:
            shutil.copyfile(saved, sim.node.flash.path)

    rec = _run(rig, tmp_path, hours=4, hook=roll_back)
    fig = _account(rec, tmp_path)["total"]
    assert fig["counter_reuses"] >= 1, fig
    assert fig["seq_reuses"] >= 1      # the seq counter came back too
    assert not account_mod.clean(fig)

    clean = _account(_run(rig, tmp_path / "control", hours=4), tmp_path / "control")["total"]
    assert clean["counter_reuses"] == 0 and account_mod.clean(clean), clean


@pytest.mark.parametrize("tamper", ["wrong interval", "no configuration"])
def test_a_wake_on_a_wrong_configuration_is_counted(rig, tmp_path, tamper):
    def corrupt(sim, wake):
        if wake.index != 3:
            return
        if tamper == "wrong interval":
            cfg = dict(sim.config(), interval_s=600)
            files = {"config.a": config_image.pack(cfg, 7), "config.b": config_image.pack(cfg, 8)}
        else:
            files = {"config.a": b"", "config.b": b"CF1 torn"}
        rig["vm"].build_image(sim.node.flash.path, files, keep=True)

    rec = _run(rig, tmp_path, hours=3, hook=corrupt)
    fig = _account(rec, tmp_path)["total"]
    later = rec.wakes - 3                    # every wake after the third ran on it
    assert fig["config_corruptions"] == later + 1, rec.config_bad     # + it ended so
    assert [w for w, _ in rec.config_bad] == list(range(4, rec.wakes + 1)) + [0]
    if tamper == "no configuration":
        assert "unprovisioned" in rec.config_bad[0][1]
    assert not account_mod.clean(fig)


def test_a_reading_cut_before_it_is_stored_is_not_counted_taken(rig, tmp_path):
    # Every other wake is cut inside one of its flash operations, in turn (a wake from
    # deep sleep does five or six: the seq counter, the queue, ...), or two seconds in,
    # when the reading is stored and the node waits for its modem; the modem is silent,
    # so whatever was stored stays queued. A reading counts as taken exactly when the
    # flash holds it: said on the console once stored, or stored by the very program
    # the power failed in.
    seen = {"queued": set(), "cut_stored": 0, "cut_lost": 0}

    def cuts(wake):
        if wake % 2:
            return None
        n = wake // 2
        # Some while the node talks to its (silent) modem, after the reading is stored.
        return ("at", 2_000_000) if n % 3 == 0 else ("flash_op", n % 5)

    def check(sim, wake):
        logged = {int(s) for s in soak.TAKEN_LINE.findall(wake.console)}
        queued = {seq for seq, _ in rig["probe"].ask("queue", sim.node.flash.path)["queued"]}
        new = queued - seen["queued"]
        assert logged <= queued, (wake.index, wake.console)
        if wake.ended == "power_cut":
            assert len(new - logged) <= 1, (wake.index, new, wake.console)
            seen["cut_stored" if new else "cut_lost"] += 1
        else:
            assert new == logged, (wake.index, new, wake.console)
        seen["queued"] = queued

    rec = _run(rig, tmp_path, hours=8, faults=["modem:silent"], hook=check, power_cuts=cuts)
    assert rec.ended.get("power_cut", 0) >= 8
    assert {seq for seq, _, _ in rec.taken} == seen["queued"]
    # Both sides were seen: cuts after the reading was stored, and cuts that tore it.
    assert seen["cut_stored"] and seen["cut_lost"], seen


# --- the whole soak, as a user runs it ---------------------------------------------------------
def test_nodectl_soak_accounts_for_every_reading_of_a_small_fleet(tmp_path, capsys):
    code = cli.main(["soak", "--nodes", "3", "--days", "1", "--power-cuts", "20", "--faults",
                     "0.05", "--seed", "2", "--out", str(tmp_path), "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    total = summary["total"]
    assert summary["power_cuts"] == {"planned": 20, "made": 20, "flash_op": 10, "at": 10}
    assert total["taken"] > 200
    assert account_mod.balanced(total)
    assert total["unaccounted"] == 0 and total["untaken"] == 0, summary
    assert total["counter_reuses"] == 0 and total["config_corruptions"] == 0
    assert set(summary["kinds"]) == {"climate", "soil", "water"}
    assert sum(k["taken"] for k in summary["kinds"].values()) == total["taken"]
    assert code == 0
    assert (tmp_path / "inventory.csv").stat().st_mode & 0o777 == 0o600
    detail = json.loads((tmp_path / "account.json").read_text())
    assert "payload_key" not in json.dumps(detail)


def test_a_soak_is_the_same_for_a_seed_whatever_the_number_of_workers(tmp_path):
    accs = []
    for workers in (1, 2):
        spec = soak.SoakSpec(nodes=2, days=0.5, power_cuts=6, faults=0.05, seed=4,
                             out_dir=tmp_path / f"w{workers}", workers=workers)
        acc = account_mod.soak(spec)
        accs.append([(n["name"], _figures(n["figures"]), n["figures"]["frames_on_air"])
                     for n in acc["nodes"]])
    assert accs[0] == accs[1]
