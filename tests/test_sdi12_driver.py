"""The firmware's SDI-12 recorder and SMT100 driver (firmware/drivers/sdi12.py, smt100.py)
on the real MicroPython interpreter, through the simulator's machine.UART, against the
SDI-12 line model with SMT100 probes: timing the sensors accept, CRC, retries, faults."""
from __future__ import annotations

import json

import pytest

from host_tools import boards
from simulators.bus.sdi12 import SDI12Bus
from simulators.clock import Clock
from simulators.environment.soil import Soil
from simulators.interpreter import FIRMWARE
from simulators.network import Network
from simulators.node import SimNode
from simulators.sensors.smt100 import SMT100SDI12

BOARD = "pico-rak3172-soil"

MAIN = r"""
import machine, time
from drivers import SensorError
from drivers.sdi12 import SDI12, crc16, crc_ascii
from drivers.smt100 import SMT100SDI12
uart = machine.UART(1, baudrate=1200, bits=7, parity=0, stop=1, tx=machine.Pin(4),
                    rx=machine.Pin(5), timeout=100, timeout_char=100)
bus = SDI12(uart, echo=ECHO)
def attempt(fn, *a):
    try:
        return fn(*a)
    except SensorError as e:
        return ["error", e.part, e.reason]
out = {}
out["crc"] = crc_ascii(crc16(b"0+3.14")).decode()
out["ack"] = [bus.acknowledge("0"), bus.acknowledge("7")]
out["query"] = attempt(bus.query_address)
out["ident"] = attempt(bus.identify, "1")
probes = [SMT100SDI12(bus, "0", True, "smt100_1"), SMT100SDI12(bus, "1", False, "smt100_2")]
t0 = time.ticks_ms()
out["first"] = attempt(probes[0].measure)
out["first_ms"] = time.ticks_diff(time.ticks_ms(), t0)
out["second"] = attempt(probes[1].measure)
out["raw"] = probes[1].raw().decode()
out["first_again"] = attempt(probes[0].measure)
print("RESULT " + json.dumps(out))
machine.deepsleep(1000)
"""


def run(tmp_path, probes=("0", "1"), fault=None, echo=True):
    board = boards.load(BOARD)
    clock = Clock()
    node = SimNode("n", board, tmp_path / "n", clock, Network(seed=0), bytes(8))
    node.flash.erase_all()
    soil = Soil(seed=5, start_unix=clock.unix_time())
    bus = SDI12Bus(clock, echo=echo)
    models = [SMT100SDI12(clock, soil, i, address=a, seed=5) for i, a in enumerate(probes)]
    for m in models:
        bus.add(m)
    models[0].fault = fault
    node.attach_uart_device(1, bus, 1200, 7, 0, 1)
    main = MAIN.replace("import machine, time", "import machine, time, json\nECHO = %s" % echo)
    files = {"main.py": main.encode(),
             "board.json": json.dumps(board).encode()}
    for name in ("__init__.py", "sdi12.py", "smt100.py"):
        files[f"drivers/{name}"] = (FIRMWARE / "drivers" / name).read_bytes()
    node.install(files)
    wake = node.wake()
    lines = [line for line in wake.console.splitlines() if line.startswith("RESULT ")]
    assert lines, wake.console
    return json.loads(lines[0][7:]), bus, models


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    return run(tmp_path_factory.mktemp("sdi12"))


def test_recorder_keeps_the_timing_the_sensors_need(healthy):
    _, bus, _ = healthy
    assert bus.violations == []
    # one break-command sequence per command: no retries on a healthy line
    # (no sensor at 7: the command and 3 quick retries, in three break sequences, §7.2)
    assert bus.commands == ["0!"] + ["7!"] * 12 + ["?!", "1I!",
                            "0MC!", "0D0!", "1M!", "1D0!", "0MC!", "0D0!"]


def test_driver_reads_both_probes_within_their_accuracy(healthy):
    out, _, models = healthy
    assert out["crc"] == "OqZ"
    assert out["ack"] == [True, False]
    for key, model in (("first", models[0]), ("second", models[1])):
        vwc, t = out[key]
        truth = model.measurements[-1] if key == "second" else model.measurements[0]
        assert abs(vwc / 100 - truth.vwc) <= 3.0 + 0.005
        assert abs(t / 100 - truth.temperature) <= 0.2 + 0.005
    assert out["raw"].count("+") + out["raw"].count("-") == 5


def test_a_measurement_waits_for_the_service_request_not_the_whole_ttt(healthy):
    out, _, _ = healthy
    # break 0 ms (simulated sendbreak returns at once) + marking + aMC! + its reply +
    # 50 ms measuring + the service request + aD0! and its ~36-character reply
    assert 300 <= out["first_ms"] <= 700


def test_address_query_with_two_probes_is_a_collision_and_with_one_an_address(tmp_path, healthy):
    out, _, _ = healthy
    assert out["query"][0] == "error"
    single, _, _ = run(tmp_path, probes=("0",))
    assert single["query"] == "0"


def test_identification(healthy):
    out, _, _ = healthy
    assert out["ident"].startswith("13TRUEBNERSMT100")


def test_an_adapter_that_suppresses_the_echo_works_too(tmp_path):
    out, bus, _ = run(tmp_path, echo=False)
    assert bus.violations == [] and out["first"][0] != "error" and out["second"][0] != "error"


@pytest.mark.parametrize("mode, reason", [
    ("absent", "no answer to 0MC!"),
    ("nack", "no answer to 0D0!"),
    ("timeout", "no answer to 0MC!"),
    ("crc", "CRC mismatch"),
    ("range", "water content 150.00 % out of range"),
])
def test_probe_faults_are_errors_naming_the_probe_and_the_line_recovers(tmp_path, mode, reason):
    out, bus, _ = run(tmp_path, fault=mode)
    assert out["first"][:2] == ["error", "smt100_1"]
    assert reason in out["first"][2]
    assert out["second"][0] != "error"          # the other probe on the line still reads
    assert bus.violations == []
    # §7.2: an unanswered command is repeated 3 times, in three break sequences: 12
    # times per measurement (the script measures probe 0 twice); a reply with a bad CRC
    # is asked for again, 3 times
    expected = {"absent": ("0MC!", 24), "timeout": ("0MC!", 24), "nack": ("0D0!", 24),
                "crc": ("0D0!", 6), "range": ("0D0!", 2)}
    cmd, times = expected[mode]
    assert bus.commands.count(cmd) == times


def test_retries_come_between_16_67_and_87_ms_after_the_command(healthy):
    _, bus, _ = healthy
    sevens = [(start, end) for start, end, text in bus.timeline if text == "7!"]
    gaps = [(b[0] - a[1]) / 1000 for a, b in zip(sevens, sevens[1:])]
    quick = [g for i, g in enumerate(gaps) if i % 4 != 3]       # within a sequence
    assert len(quick) == 9 and all(16.67 <= g <= 87 for g in quick), gaps
