"""The store-and-forward ring (firmware/node/queue.py) on the real MicroPython, against
the simulated NOR flash under littlefs: order, capacity, what gives way and why, torn
records, power cuts at every flash operation, and the wear it costs the flash."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from host_tools import boards, firmware_build
from simulators.clock import Clock
from simulators.interpreter import FIRMWARE, run_script
from simulators.network import Network
from simulators.node import RUNTIME, SimNode

PRELUDE = "import json, machine\nfrom node.queue import ReadingQueue\n"
EPILOGUE = "\nmachine.deepsleep(1000)\n"


def body(seq: int, size: int = 16) -> bytes:
    return bytes((seq + i) & 0xFF for i in range(size))


def new_node(path: Path) -> SimNode:
    node = SimNode("q", boards.load("pico-rak3172"), path, Clock(), Network(), bytes(8))
    node.install(firmware_build.build())
    return node


def run(node: SimNode, code: str, **wake) -> dict | None:
    """Install `code` as main.py and wake: the JSON it printed last (None if cut)."""
    node.install({"main.py": (PRELUDE + code + EPILOGUE).encode()}, keep=True)
    result = node.wake(**wake)
    lines = [ln for ln in result.console.splitlines() if ln.startswith("{")]
    if result.ended != "deepsleep":
        return None
    assert lines, result.console[-1500:]
    return json.loads(lines[-1])


STATE = "print(json.dumps({'seqs': q.seqs(), 'dropped': q.dropped(), 'next': q.next_seq(), " \
        "'unsent': [s for s, b in q.unsent(999)], 'ok': [b == bytes((s + i) & 255 for i in " \
        "range(len(b))) for s, b in q.unsent(999)]}))"
BODY = "def body(seq, size=16):\n    return bytes((seq + i) & 255 for i in range(size))\n"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    return new_node(tmp_path_factory.mktemp("ring"))


def fresh(node: SimNode) -> None:
    run(node, "import os\ntry:\n    names = os.listdir('q')\nexcept OSError:\n    names = []\n"
              "for n in names:\n    os.remove('q/' + n)\nprint(json.dumps({}))")


def test_readings_come_out_oldest_first_and_leave_only_when_acked(node):
    fresh(node)
    # Sizes from 1 to 60 bytes: records straddle segment boundaries.
    got = run(node, BODY + """
q = ReadingQueue(100)
for s in range(40):
    q.push(s, body(s, 1 + s * 3 % 60))
q.mark_sent(9, acked=False)      # went out, no ACK yet
""" + STATE)
    assert got["seqs"] == list(range(40)) and got["unsent"] == list(range(10, 40))
    assert all(got["ok"]) and got["dropped"] == []
    # Next wake: a new interpreter finds the same ring; no ACK came, so all goes again.
    got = run(node, "q = ReadingQueue(100)\nq.rewind()\n" + STATE)
    assert got["unsent"] == list(range(40)) and all(got["ok"])
    got = run(node, "q = ReadingQueue(100)\nq.mark_sent(24, acked=True)\n" + STATE)
    assert got["seqs"] == list(range(25, 40)) and got["unsent"] == list(range(25, 40))


def test_a_full_ring_gives_way_oldest_first_and_says_which(node):
    fresh(node)
    got = run(node, BODY + "q = ReadingQueue(10)\nfor s in range(25):\n    q.push(s, body(s))\n"
              + STATE)
    assert got["seqs"] == list(range(15, 25)) and all(got["ok"])
    assert got["dropped"] == [[0, 14, 1]]                      # reason 1: queue full
    # A record carrying the range was sent: the node forgets it, nothing else.
    got = run(node, "q = ReadingQueue(10)\nq.mark_sent(None, acked=True, reported=[[0, 9, 1]])\n"
              + STATE)
    assert got["dropped"] == [[10, 14, 1]] and got["seqs"] == list(range(15, 25))


def test_every_seq_is_queued_dropped_or_noted(node):
    fresh(node)
    got = run(node, BODY + """
q = ReadingQueue(50)
for s in range(5):
    q.push(s, body(s))
q.push(7, body(7))               # 5 and 6 were taken, then a power cut took them
q.note(8)                        # the node record's own seq: not a loss
q.push(9, body(9))
big = q.push(10, bytes(230))     # no EU868 data rate carries it
q.push(11, body(11))
try:
    q.push(11, body(11))         # the same seq again is refused and changes nothing
except ValueError as e:
    print("refused", e)
print(json.dumps({'big': big, 'seqs': q.seqs(), 'dropped': q.dropped(), 'next': q.next_seq()}))
""")
    assert got["seqs"] == [0, 1, 2, 3, 4, 7, 9, 11] and got["next"] == 12
    assert got["big"] is False
    assert got["dropped"] == [[5, 6, 2], [10, 10, 3]]


def corrupt(node: SimNode, segment_index: int, offset: int) -> None:
    """Flip bits of one byte of a segment file on the flash, as failing flash would."""
    run(node, f"""
import os
names = sorted(n for n in os.listdir('q') if len(n) == 8)
path = 'q/' + names[{segment_index}]
with open(path, 'rb') as f:
    data = bytearray(f.read())
data[{offset}] ^= 0x5A
with open(path, 'wb') as f:
    f.write(data)
print(json.dumps({{}}))
""")


def test_a_torn_record_is_cut_off_and_what_it_held_is_reported(node):
    fresh(node)
    # 16-byte bodies: 25-byte records, 7 to a segment (0-6, 7-13, 14-20, 21-24).
    run(node, BODY + "q = ReadingQueue(100)\nfor s in range(25):\n    q.push(s, body(s))\n" + STATE)
    corrupt(node, 1, 3 * 25 + 10)            # inside seq 10's record
    got = run(node, "q = ReadingQueue(100)\n" + STATE)
    assert got["seqs"] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] + list(range(14, 25))
    assert got["dropped"] == [[10, 13, 2]] and all(got["ok"])     # reason 2: power cut
    # The newest segment cut short: the next reading's seq shows what went missing.
    corrupt(node, -1, 2 * 25 + 4)            # seq 23's record
    got = run(node, BODY + "q = ReadingQueue(100)\nq.push(25, body(25))\n" + STATE)
    assert got["seqs"][-3:] == [21, 22, 25] and all(got["ok"])
    assert got["dropped"] == [[10, 13, 2], [23, 24, 2]]


# --- power cuts ---------------------------------------------------------------------------

CHECK = """
import os, sys, vfs, json
sys.path.insert(0, %r)
from _simflash import FlashBlockDevice, PROG_SIZE
vfs.mount(vfs.VfsLfs2(FlashBlockDevice(%r), progsize=PROG_SIZE), "/fs")
os.chdir("/fs")
from node.queue import ReadingQueue
q = ReadingQueue(6)
q.push(13, bytes((13 + i) & 255 for i in range(16)))
""" + STATE


def test_a_power_cut_at_any_flash_operation_loses_and_repeats_nothing(tmp_path):
    """A wake that pushes (with give-way), sends, is ACKed and pushes again, cut at each
    of its flash operations in turn: afterwards every seq is still queued, or reported
    dropped, or was ACKed, exactly once, and every body reads back whole."""
    base = tmp_path / "base"
    node = new_node(base)
    run(node, BODY + "q = ReadingQueue(6)\nfor s in range(10):\n    q.push(s, body(s))\n"
        "    if s == 4:\n        q.mark_sent(4, acked=True)\nprint(json.dumps({'seqs': q.seqs()}))")
    node.install({"main.py": (PRELUDE + BODY + """
q = ReadingQueue(6)
q.push(10, body(10))
q.push(11, body(11))             # the ring is full: seq 5 gives way
sent = q.unsent(3)
q.mark_sent(sent[-1][0], acked=True)
q.push(12, body(12))
print(json.dumps({}))
""" + EPILOGUE).encode()}, keep=True)
    outcomes = []
    for op in range(200):
        work = tmp_path / f"cut{op}"
        shutil.copytree(base, work)
        n = SimNode("q", node.board, work, Clock(), Network(), bytes(8))
        end = n.wake(cut_at_flash_op=op).ended
        r = run_script(CHECK % (str(RUNTIME), str(work / "flash.img")), path=[FIRMWARE])
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout.strip().splitlines()[-1])
        seqs, dropped = got["seqs"], [s for a, b, _ in got["dropped"] for s in range(a, b + 1)]
        assert seqs == sorted(set(seqs)) and all(got["ok"]), (op, got)
        assert not set(seqs) & set(dropped), (op, got)
        # ACKed: 0-4 before the wake, 6-8 if the wake's ACK landed (else still queued).
        acked = set(range(5)) | (set(range(6, 9)) - set(seqs))
        assert acked <= set(range(9)) - set(dropped), (op, got)
        for s in range(14):
            assert (s in acked) + (s in seqs) + (s in dropped) == 1, (op, s, got)
        outcomes.append(end)
        shutil.rmtree(work)
        if end == "deepsleep":
            break
    # Cut at each operation until the wake ran through (it has a handful: littlefs commits
    # a small file in one program of its metadata block, now and then an erase).
    assert outcomes[:-1] == ["power_cut"] * (len(outcomes) - 1) and len(outcomes) > 5, outcomes
    assert outcomes[-1] == "deepsleep", outcomes


# --- wear -----------------------------------------------------------------------------------

# The one-file-per-reading queue this ring replaced (git history: node/queue.py before the
# ring), reduced to its flash operations: a file per reading, a listing to find the oldest,
# a delete when it is sent or gives way.
OLD = """
import os, struct
from binascii import crc32
try:
    os.mkdir('q')
except OSError:
    pass
def push(seq, b, limit):
    names = sorted(os.listdir('q'))
    while len(names) >= limit:
        os.remove('q/' + names.pop(0))
    with open('q/%08x' % seq, 'wb') as f:
        f.write(b)
        f.write(struct.pack('>I', crc32(b)))
def send_all():
    for name in sorted(os.listdir('q')):
        with open('q/' + name, 'rb') as f:
            f.read()
        os.remove('q/' + name)
"""
# As node/delivery.py drains it: a frame of up to 23 readings at a time, an ACK asked
# for every 16th frame.
NEW = """
q = ReadingQueue(LIMIT)
frames = [0]
def push(seq, b, limit):
    q.push(seq, b)
def send_all():
    while True:
        sent = q.unsent(23)
        if not sent:
            return
        frames[0] += 1
        q.mark_sent(sent[-1][0], acked=frames[0] % 16 == 0)
"""
# A node's life in readings: the network up (each reading sent in its wake) and, every
# PERIOD readings, an outage of a third of them that fills the ring.
LIFE = BODY + """
for seq in range(N):
    push(seq, body(seq, 28), LIMIT)
    if seq % PERIOD < PERIOD * 2 // 3:
        send_all()
print(json.dumps({}))
"""


def wear(tmp_path: Path, layout: str, n: int, limit: int, period: int) -> tuple[int, float, int]:
    node = new_node(tmp_path)
    assert run(node, f"N = {n}\nLIMIT = {limit}\nPERIOD = {period}\n" + layout + LIFE) == {}
    most, mean = node.flash.wear()
    return most, mean, sum(node.flash.erases)


def check_wear(tmp_path, n, limit, period):
    old_max, old_mean, old_total = wear(tmp_path / "old", OLD, n, limit, period)
    new_max, new_mean, new_total = wear(tmp_path / "new", NEW, n, limit, period)
    print(f"\n{n} readings: one file per reading: {old_total} erases, most on one block "
          f"{old_max}, mean {old_mean:.2f}; ring: {new_total} erases, most {new_max}, "
          f"mean {new_mean:.2f}")
    # littlefs moves a metadata pair after block_cycles (100 in MicroPython) erases, so no
    # block runs far ahead of the rest; the ring costs fewer erases per reading.
    assert new_max <= 101 + new_mean and new_max <= old_max
    assert new_total <= 0.8 * old_total


def test_the_ring_wears_the_flash_less_than_a_file_per_reading(tmp_path):
    check_wear(tmp_path, 1200, 64, 400)


@pytest.mark.slow
def test_ten_thousand_readings_keep_the_wear_bounded_and_below_the_old_layout(tmp_path):
    check_wear(tmp_path, 10000, 288, 1000)
