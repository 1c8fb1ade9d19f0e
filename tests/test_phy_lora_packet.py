"""Every PHYPayload of a simulated climate day, checked by lora-packet (npm), a LoRaWAN
implementation independent of the simulator's: the MIC verifies with the session's NwkSKey
and the decrypted FRMPayload is the frame the firmware handed the modem.

Runs `nodectl simulate --phy-log` as a user does, then tools/lora-packet-check/verify.js
(installed by `make setup`)."""
import csv
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from host_tools import envelope
from simulators import modems
from simulators.network import eu868
from conftest import nodectl

ROOT = Path(__file__).resolve().parent.parent
VERIFY = ROOT / "tools" / "lora-packet-check" / "verify.js"
LORA_PACKET = ROOT / "tools" / "lora-packet-check" / "node_modules" / "lora-packet"


def _modem_ready(modem: str) -> bool:
    """Both halves exist: the simulator's model and the firmware's driver."""
    if not (ROOT / "firmware" / "modems" / f"{modem}.py").exists():
        return False
    try:
        modems.model_class(modem)
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module", params=["rak3172", "wioe5", "rn2483"])
def day(request, tmp_path_factory):
    """(uplinks as dicts, PHY log lines, lora-packet verdicts, nodectl's stderr, inventory,
    the PHY log's file mode)."""
    modem = request.param
    if not _modem_ready(modem):
        pytest.skip(f"{modem}: no simulator model or no firmware driver yet")
    assert shutil.which("node"), "node is needed (make setup installs lora-packet with npm)"
    assert LORA_PACKET.is_dir(), "lora-packet is not installed: run `make setup`"
    out = tmp_path_factory.mktemp(f"phy-{modem}")
    log = out / "phy.jsonl"
    r = nodectl("simulate", "--kind", "climate", "--hours", 24, "--seed", 1, "--json",
                "--modem", modem, "--out", out, "--phy-log", log)
    uplinks = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    v = subprocess.run(["node", str(VERIFY), str(log)], capture_output=True, text=True,
                       timeout=120)
    verdicts = [json.loads(line) for line in v.stdout.splitlines()]
    assert v.returncode in (0, 1), v.stderr
    with open(out / "inventory.csv") as f:
        (row,) = list(csv.DictReader(f))
    return uplinks, lines, verdicts, r.stderr, row, stat.S_IMODE(os.stat(log).st_mode)


def test_every_phy_payload_of_the_day_verifies_with_lora_packet(day):
    uplinks, lines, verdicts, _, _, _ = day
    # Every reading of the day arrived; a frame may carry several (and the node record).
    seqs = {x["seq"] for u in uplinks for x in u["readings"] if x.get("kind") != "node"}
    assert seqs == set(range(96))
    assert len(verdicts) == len(lines) >= len(uplinks) + 2   # a join, an accept, the uplinks
    bad = [v for v in verdicts if not v["ok"]]
    assert bad == [], bad[:3]
    assert all(v["mic_ok"] for v in verdicts)
    accepts = [v for v in verdicts if v["type"] == "JoinAccept"]
    assert accepts and all(v["keys_ok"] for v in accepts)


def test_decrypted_frm_payloads_are_the_frames_the_firmware_sent(day):
    uplinks, lines, verdicts, _, row, _ = day
    by_fcnt = {}
    for line, v in zip(lines, verdicts):
        if line["direction"] == "up" and line["type"].endswith("DataUp") and line["received"]:
            by_fcnt[line["fcnt"]] = v["payload"]
    key, dev_eui = bytes.fromhex(row["payload_key"]), bytes.fromhex(row["dev_eui"])
    for u in uplinks:
        decrypted = by_fcnt[u["fcnt"]]
        assert decrypted == u["frame"], u["fcnt"]
        # ... and only the firmware, which holds the payload key, can have sealed it.
        counter, _ = envelope.unseal(key, dev_eui, bytes.fromhex(decrypted))
        assert counter == u["counter"]


def test_reported_airtime_is_the_semtech_formula_of_the_real_frames(day):
    uplinks, lines, _, stderr, row, _ = day
    sent = [x for x in lines if x["direction"] == "up" and x["dr"] is not None]
    assert any(x["type"].endswith("DataUp") for x in sent)
    for x in sent:
        assert x["airtime_us"] == eu868.airtime_us(x["dr"], len(bytes.fromhex(x["phy"]))), x
    total = sum(x["airtime_us"] for x in lines if x["direction"] == "up")
    assert uplinks[-1]["airtime_day_s"] == pytest.approx(total / 1e6, abs=0.001)
    assert f"airtime {row['dev_eui'].upper()}: {total / 1e6:.1f} s on air" in stderr


def test_the_phy_log_holds_keys_so_it_is_owner_only_and_stdout_holds_none(day):
    _, lines, verdicts, stderr, row, mode = day
    assert mode == 0o600
    keys = {lines[0]["app_key"]} | {x["nwk_skey"] for x in lines if "nwk_skey" in x}
    assert row["app_key"].lower() in keys
    printed = json.dumps(verdicts) + stderr
    assert not any(k in printed.lower() for k in keys)
