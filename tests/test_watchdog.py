"""The watchdog (firmware/node/watchdog.py, node/steps.py, node/resets.py) on the real
MicroPython interpreter against the simulator's model of each port's machine.WDT: a hung
bus or modem ends in a reset and the node goes on sending; a long wait with progress is
not reset; nothing that spins without progress keeps the watchdog fed; resets are counted
by cause. docs/watchdog.md says what each port does and where that comes from."""
from __future__ import annotations

import ast
import json
import re
import textwrap

import pytest

from host_tools import boards, firmware_build
from simulators.clock import Clock
from simulators.interpreter import FIRMWARE, run_script
from simulators.network import Network
from simulators.node import NodeStopped, SimNode
from simulators.scenario import FaultWindow, Simulation

RP2040 = "pico-rak3172"
ESP32 = "esp32-rak3172"
TIMEOUT_US = 8_000_000            # node/watchdog.py's timeout on both MCUs
WAITS_US = 600_000_000            # node/watchdog.py's allowance for declared waits a wake
RESETS_LINE = re.compile(r"resets (\{.*\})")


# --- the simulator's machine.WDT follows the ports ------------------------------------

def bare_node(tmp_path, board_name, main):
    """A node whose main.py is `main`, with the firmware beside it on the flash."""
    board = boards.load(board_name)
    node = SimNode("n", board, tmp_path / "n", Clock(), Network(seed=0), bytes(8))
    node.flash.erase_all()
    files = firmware_build.build()
    files["board.json"] = json.dumps(board).encode()
    files["main.py"] = textwrap.dedent(main).encode()
    node.install(files)
    return node


def printed(wake, key):
    for line in wake.console.splitlines():
        if line.startswith(key + " "):
            return json.loads(line[len(key) + 1:])
    raise AssertionError(f"no {key} line in:\n{wake.console}")


WDT_LIMITS = """
import json, machine
out = {}
for t in (8388, 8389, 0, 60000, -1):
    try:
        w = machine.WDT(timeout=t)
        out[t] = "ok"
    except ValueError:
        out[t] = "ValueError"
out["deinit"] = hasattr(machine.WDT(timeout=5000), "deinit")
print("LIMITS " + json.dumps(out))
machine.deepsleep(1000)
"""


def test_the_wdt_model_has_each_ports_limits(tmp_path):
    rp2 = printed(bare_node(tmp_path / "rp2", RP2040, WDT_LIMITS.replace(", 0, ", ", ")).wake(),
                  "LIMITS")
    # ports/rp2/machine_wdt.c: at most 8388 ms (24-bit counter, 2 ticks per µs).
    assert rp2 == {"8388": "ok", "8389": "ValueError", "60000": "ValueError",
                   "-1": "ValueError", "deinit": False}
    esp = printed(bare_node(tmp_path / "esp", ESP32, WDT_LIMITS).wake(), "LIMITS")
    # ports/esp32/machine_wdt.c: any timeout above 0 ms; no port can stop a started WDT.
    assert esp == {"8388": "ok", "8389": "ok", "0": "ValueError", "60000": "ok",
                   "-1": "ValueError", "deinit": False}


LIGHTSLEEP = """
import machine, time
machine.WDT(timeout=3000)
machine.lightsleep(5000)
print("AWAKE", time.ticks_ms())
time.sleep_ms(2500)
print("STILL", time.ticks_ms())
machine.deepsleep(60000)
"""


def test_the_watchdog_counts_through_light_sleep_on_rp2040_only(tmp_path):
    # micropython#17228: on RP2040 a WDT(3000) resets a lightsleep(5000).
    wake = bare_node(tmp_path / "rp2", RP2040, LIGHTSLEEP).wake()
    assert wake.ended == "wdt" and wake.end_us - wake.start_us == 3_000_000
    assert "AWAKE" not in wake.console
    # ESP32: the task watchdog's timer is clock-gated in light sleep and goes on after it.
    wake = bare_node(tmp_path / "esp", ESP32, LIGHTSLEEP).wake()
    assert "STILL" in wake.console and wake.ended == "deepsleep" and wake.sleep_ms == 60000


DEEPSLEEP = """
import machine
machine.WDT(timeout=8000)
machine.deepsleep(60000)
"""


def test_a_deep_sleep_longer_than_the_timeout_ends_in_a_watchdog_reset_on_rp2040(tmp_path):
    # rp2's deepsleep is a light sleep followed by a reset (ports/rp2/modmachine.c).
    wake = bare_node(tmp_path / "rp2", RP2040, DEEPSLEEP).wake()
    assert wake.ended == "wdt" and wake.end_us - wake.start_us == TIMEOUT_US
    wake = bare_node(tmp_path / "esp", ESP32, DEEPSLEEP).wake()
    assert wake.ended == "deepsleep"


SCRATCH = """
import machine, time
print("SCRATCH", machine.mem32[0x4005800C])
machine.mem32[0x4005800C] = 0xCAFE0001
machine.WDT(timeout=1000)
time.sleep_ms(2000)
"""


def test_rp2040_scratch_registers_survive_a_watchdog_reset_but_not_a_power_cut(tmp_path):
    node = bare_node(tmp_path, RP2040, SCRATCH)
    assert node.wake().ended == "wdt"
    wake = node.wake()
    assert printed(wake, "SCRATCH") == 0xCAFE0001 and wake.ended == "wdt"
    node.power_cut()
    assert printed(node.wake(), "SCRATCH") == 0


# --- feeding only on progress ----------------------------------------------------------

PRELUDE = """
import machine, time
from node.board import Board
from node import steps, watchdog
board = Board.load()
watchdog.start(board)
steps.load(board, machine.reset_cause())
"""

SPINNERS = {
    # A loop that waits for something that never comes.
    "sleeps": ("while True:\n    time.sleep_ms(50)\n", 0),
    # waiting() outside a declared wait does not feed.
    "waiting without a bound": ("while True:\n    watchdog.waiting()\n    time.sleep_ms(50)\n", 0),
    # A declared wait is fed for as long as it said, never longer.
    "waiting past its bound": ("watchdog.expect(3000)\nwhile True:\n    watchdog.waiting()\n"
                               "    time.sleep_ms(50)\n", 3_000_000),
    # Beginning the step that already runs is no progress.
    "the same step again": ("while True:\n    steps.begin('sht4x')\n    time.sleep_ms(50)\n", 0),
    # A loop around bounded waits is still a loop: fed for the wake's allowance at most.
    # (charged by what they declare: 5 s a turn drains it in 120 turns).
    "light sleeps in a loop": ("while True:\n    watchdog.lightsleep(20000)\n", WAITS_US),
    "declared waits in a loop": ("while True:\n    watchdog.expect(5000)\n"
                                 "    watchdog.waiting()\n    time.sleep_ms(50)\n", 6_000_000),
}


@pytest.mark.parametrize("name", sorted(SPINNERS))
def test_firmware_that_spins_without_progress_is_reset(tmp_path, name):
    body, fed_for_us = SPINNERS[name]
    wake = bare_node(tmp_path, RP2040, PRELUDE + body).wake()
    assert wake.ended == "wdt"
    assert fed_for_us <= wake.end_us - wake.start_us <= fed_for_us + TIMEOUT_US + 100_000


PROGRESS = PRELUDE + """
for i in range(40):                 # 40 s of parts answering one after the other
    steps.begin("part%d" % (i % 3))
    time.sleep_ms(1000)
steps.end()
watchdog.expect(20000)              # a join's RX windows: a bounded 20 s wait
t = time.ticks_ms()
while time.ticks_diff(time.ticks_ms(), t) < 20000:
    watchdog.waiting()
    time.sleep_ms(50)
watchdog.lightsleep(30000)          # a duty-cycle wait, the longest delivery.py takes
steps.sleeping()
watchdog.deepsleep(900000)
"""


@pytest.mark.parametrize("board", [RP2040, ESP32])
def test_a_wake_that_makes_progress_through_long_waits_is_not_reset(tmp_path, board):
    wake = bare_node(tmp_path, board, PROGRESS).wake()
    # On RP2040 the deep sleep (a light sleep there) is slept with the watchdog paused.
    assert wake.ended == "deepsleep" and wake.sleep_ms == 900000, wake.console
    assert wake.end_us - wake.start_us >= (40 + 20 + 30) * 10**6


# --- whole nodes: a hung part, a hung modem, a long duty-cycle wait -------------------------

def run(sim):
    """(seqs of the readings taken, readings delivered, node records delivered, wakes)."""
    taken, delivered, records, wakes = [], [], [], []

    def on_wake(w):
        wakes.append(w)
        taken.extend(w.readings)
    for up in sim.run(on_wake=on_wake):
        for r in up.readings:
            (records if r["kind"] == "node" else delivered).append(r)
    assert sim.stats.decode_errors == []
    return taken, delivered, records, wakes


def check_nothing_lost(taken, delivered, records):
    """Every seq up to the last is a reading delivered or a node record; none dropped."""
    seqs = {r["seq"] for r in delivered}
    assert seqs == set(taken), "every reading taken was delivered"
    assert set(taken) | {r["seq"] for r in records} == set(range(max(taken) + 1))
    assert all(r["dropped"] == [] for r in records)


def counted_resets(sim, records):
    """The reset counts as the node's last record reported them, and as its console says."""
    console = (sim.node.workdir / "console.log").read_text()
    logged = RESETS_LINE.findall(console)
    return records[-1]["resets"], ast.literal_eval(logged[-1]) if logged else {}


def taken_between(wakes, start_h, end_h):
    """The seqs of the readings taken from start_h to end_h."""
    return {s for w in wakes if start_h * 3600e6 <= w.start_us < end_h * 3600e6
            for s in w.readings}


def test_a_hung_sensor_ends_in_a_watchdog_reset_and_the_node_resumes(tmp_path):
    sim = Simulation(kind="climate", board=RP2040, hours=3, seed=4, out_dir=tmp_path,
                     interval_s=900, faults=[FaultWindow("sht4x", "hang", 0.5, 1.25)])
    taken, delivered, records, wakes = run(sim)
    resets = [w for w in wakes if w.ended == "wdt"]
    assert resets, "the hung part held the node until the watchdog reset it"
    assert all(0.5 * 3600e6 <= w.start_us < 1.25 * 3600e6 for w in resets)
    # Every slot still gave a reading, and every reading arrived: no seq went missing.
    assert len(taken) >= 12
    check_nothing_lost(taken, delivered, records)
    hung = taken_between(wakes, 0.5, 1.25)
    during = [d for d in delivered if d["seq"] in hung]
    assert during and all("sht4x" in d["faults"] for d in during)
    assert all(d["temperature"] is None for d in during)
    assert all(d["pressure"] is not None for d in during), "the other parts still read"
    later = taken_between(wakes, 1.5, 3)
    after = [d for d in delivered if d["seq"] in later]
    assert after and all(d["faults"] == [] for d in after), "tried again and read"
    reported, logged = counted_resets(sim, records)
    assert reported["wdt"] == logged["wdt"] == len(resets)


def test_without_a_watchdog_the_same_hang_kills_the_node(tmp_path):
    sim = Simulation(kind="climate", board=RP2040, hours=3, seed=4, out_dir=tmp_path,
                     interval_s=900, faults=[FaultWindow("sht4x", "hang", 0.5, 1.25)])
    sim.board["watchdog_ms"] = 0            # the board file turns the watchdog off
    with pytest.raises(NodeStopped, match="no watchdog"):
        run(sim)


def test_a_hung_modem_ends_in_a_watchdog_reset_and_the_queued_readings_arrive_after(tmp_path):
    sim = Simulation(kind="climate", board=RP2040, hours=4, seed=5, out_dir=tmp_path,
                     interval_s=900)
    link = sim.node.uarts[int(sim.board["modem"]["uart"])]
    link.jam(int(0.5 * 3600e6), int(1.5 * 3600e6))   # the modem's line never ends a line
    taken, delivered, records, wakes = run(sim)
    resets = [w for w in wakes if w.ended == "wdt"]
    assert resets and all(0.5 * 3600e6 <= w.start_us < 1.5 * 3600e6 for w in resets)
    jammed = taken_between(wakes, 0.5, 1.5)
    assert jammed and jammed <= {d["seq"] for d in delivered}, \
        "readings taken while the modem hung went out after"
    check_nothing_lost(taken, delivered, records)
    reported, logged = counted_resets(sim, records)
    assert reported["wdt"] == logged["wdt"] == len(resets)


def test_a_node_that_makes_progress_through_long_duty_cycle_waits_is_not_reset(tmp_path):
    sim = Simulation(kind="climate", board=RP2040, hours=3, seed=1, out_dir=tmp_path,
                     interval_s=900)
    taken, delivered, records, wakes = run(sim)
    console = (sim.node.workdir / "console.log").read_text()
    waits = [int(ms) for ms in re.findall(r"duty cycle: waiting (\d+) ms", console)]
    assert max(waits, default=0) * 1000 > TIMEOUT_US, "the run had a wait past the timeout"
    assert [w for w in wakes if w.ended == "wdt"] == []
    check_nothing_lost(taken, delivered, records)


def test_join_back_off_waits_are_not_reset(tmp_path):
    sim = Simulation(kind="climate", board=RP2040, hours=2, seed=2, out_dir=tmp_path,
                     interval_s=900, faults=[FaultWindow("network", "nojoin", 0, 1)])
    taken, delivered, records, wakes = run(sim)
    console = (sim.node.workdir / "console.log").read_text()
    assert "join: no accept" in console
    assert [w for w in wakes if w.ended == "wdt"] == []


def test_an_rn2483_node_joins_and_sends_without_a_watchdog_reset(tmp_path):
    sim = Simulation(kind="climate", board="pico-rn2483", hours=1, seed=1, out_dir=tmp_path,
                     interval_s=900)
    taken, delivered, records, wakes = run(sim)
    assert delivered and [w for w in wakes if w.ended == "wdt"] == []


def test_a_hung_part_on_esp32_is_a_timeout_not_a_reset(tmp_path):
    # ESP-IDF ends the I2C command after its timeout (ports/esp32/machine_i2c.c).
    sim = Simulation(kind="climate", board=ESP32, hours=1.5, seed=4, out_dir=tmp_path,
                     interval_s=900, faults=[FaultWindow("sht4x", "hang", 0.5, 1.0)])
    taken, delivered, records, wakes = run(sim)
    assert [w for w in wakes if w.ended == "wdt"] == []
    hung = taken_between(wakes, 0.5, 1.0)
    during = [d for d in delivered if d["seq"] in hung]
    assert during and all("sht4x" in d["faults"] for d in during)


# --- reset causes ---------------------------------------------------------------------

RESET_NAMES = """
import json, machine, resets_case
from node.resets import name_of
print(json.dumps([name_of(c, s) for c, s in resets_case.CASES]))
"""


@pytest.mark.parametrize("port, constants, cases, expected", [
    # ports/rp2/modmachine.c: PWRON_RESET and WDT_RESET only; deepsleep ends in a
    # watchdog reboot, so a planned sleep reads as WDT_RESET (micropython#19409).
    ("rp2", {"PWRON_RESET": 1, "WDT_RESET": 3},
     [(1, False), (3, False), (3, True)], ["pwron", "wdt", None]),
    # ports/esp32/modmachine.c: five causes, 0 for the rest (brownout comes as WDT_RESET).
    ("esp32", {"PWRON_RESET": 1, "HARD_RESET": 2, "WDT_RESET": 3, "DEEPSLEEP_RESET": 4,
               "SOFT_RESET": 5},
     [(4, False), (3, True), (2, False), (5, False), (0, False)],
     [None, "wdt", "hard", "soft", "other"]),
])
def test_reset_causes_are_named_as_each_port_reports_them(tmp_path, port, constants, cases,
                                                         expected):
    (tmp_path / "machine.py").write_text("".join(f"{k} = {v}\n" for k, v in constants.items()))
    (tmp_path / "resets_case.py").write_text(f"CASES = {cases!r}\n")
    r = run_script(RESET_NAMES, path=[tmp_path, FIRMWARE])
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == expected


TOTALS = """
import json, os
from node import resets
os.mkdir("state")
with open("state/resets.json", "w") as f:
    f.write('{"wdt": 2, "pwron": 1, "junk": 7, "soft": -1}')
print("TOTALS " + json.dumps([resets.NAMES, resets.totals()]))
resets.count_reset(machine.WDT_RESET)
print("AFTER " + json.dumps(resets.totals()))
machine.deepsleep(1000)
"""


def test_reset_totals_come_in_the_node_records_order(tmp_path):
    wake = bare_node(tmp_path, ESP32, "import machine\n" + TOTALS).wake()
    names, totals = printed(wake, "TOTALS")
    assert names == ["pwron", "hard", "wdt", "soft", "brownout", "other"]
    assert totals == [1, 0, 2, 0, 0, 0]
    assert printed(wake, "AFTER") == [1, 0, 3, 0, 0, 0]


def test_every_part_and_step_of_a_board_has_its_own_record_code():
    names = {"measure", "modem"}
    for name in boards.available():
        names |= set(boards.load(name).get("parts", {}))
    r = run_script("from node.steps import code\nprint([code(n) for n in %r])" % sorted(names))
    assert r.returncode == 0, r.stderr
    codes = ast.literal_eval(r.stdout.strip())
    assert len(set(codes)) == len(codes) and all(1 <= c <= 251 for c in codes)
