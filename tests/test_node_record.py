"""The node record (schema 6): built by the firmware on MicroPython from its ring and
reset counts, decoded by the host byte for byte, and turned by the ledger into
"dropped by the node" with the reason for exactly the readings it names."""
from __future__ import annotations

import json

import cbor2
import pytest

from conftest import nodectl
from host_tools import envelope, schemas
from host_tools.ledger import Ledger
from simulators.interpreter import FIRMWARE, run_script

EUI = "AC1F09FFFE000001"

RECORD = """
import json, os
os.chdir(%r)
os.mkdir("state")
with open("state/resets.json", "w") as f:
    json.dump({"pwron": 2, "wdt": 1}, f)
from node.queue import ReadingQueue
from node.record import NodeRecord
class Seqs:                             # node/counter.py's take(), without the RTC
    n = -1
    def take(self):
        self.n += 1
        return self.n
seqs = Seqs()
q = ReadingQueue(5)
rec = NodeRecord(q, seqs, 900000)       # installed now: the reset counts are the baseline
out = {"due_at_install": rec.due()}
for _ in range(10):                     # 0..4 give way to 5..9 (queue full)
    s = seqs.take()
    q.push(s, bytes([0x83, 2, s, 0]))
seqs.take(); seqs.take()                # 10 and 11: taken, then lost to a power cut
s = seqs.take()
q.push(s, bytes([0x83, 2, s, 0]))       # 12: and 5 gives way
out["due"] = rec.due()
out["seq"] = rec.prepare()
body, ranges = rec.body(229)
out["body"] = body.hex()
out["tight"] = [None if b is None else [b[0].hex(), b[1]] for b in (rec.body(18), rec.body(11))]
q.mark_sent(None, acked=True, reported=ranges)
rec.sent(ranges)
out["after"] = [rec.due(), q.dropped(), rec.pending()]
with open("state/resets.json", "w") as f:
    json.dump({"pwron": 3, "wdt": 1}, f)
out["after_reset"] = rec.due()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def firmware_record(tmp_path_factory):
    r = run_script(RECORD % str(tmp_path_factory.mktemp("node")), path=[FIRMWARE])
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_the_firmware_builds_the_record_the_host_reads(firmware_record):
    got = firmware_record
    assert got["due_at_install"] is False, "a node just installed has nothing to report"
    assert got["due"] is True and got["seq"] == 13      # a fresh seq after the readings
    body = bytes.fromhex(got["body"])
    # Byte for byte what the host's own encoder makes of the same record.
    assert body == schemas.encode_reading("node", {
        "resets": {"pwron": 2, "wdt": 1},
        "dropped": [(0, 5, "queue full"), (10, 11, "power cut")]}, seq=13)
    assert schemas.decode_body(body) == {
        "schema": 6, "kind": "node", "seq": 13, "status": 0,
        "resets": {"pwron": 2, "hard": 0, "wdt": 1, "soft": 0, "brownout": 0, "other": 0},
        "dropped": [{"first": 0, "last": 5, "reason": "queue full"},
                    {"first": 10, "last": 11, "reason": "power cut"}]}


def test_a_record_that_must_fit_a_small_frame_carries_fewer_ranges_never_a_cut_one(firmware_record):
    fewer, none = firmware_record["tight"]
    body, ranges = bytes.fromhex(fewer[0]), fewer[1]
    assert len(body) <= 18 and ranges == [[0, 5, 1]]
    assert schemas.decode_body(body)["dropped"] == [{"first": 0, "last": 5, "reason": "queue full"}]
    assert none is None          # not even the reset counts fit 11 bytes


def test_once_sent_the_ranges_leave_the_node_and_a_reset_makes_a_record_due(firmware_record):
    due, dropped, pending = firmware_record["after"]
    assert (due, dropped, pending) == (False, [], None)
    assert firmware_record["after_reset"] is True


def record(seq, *ranges):
    return {"seq": seq, "kind": "node", "dropped": [
        {"first": a, "last": b, "reason": reason} for a, b, reason in ranges]}


def test_the_ledger_turns_a_gap_into_dropped_with_the_reason_once_a_record_names_it(tmp_path):
    with Ledger(tmp_path / "s.json") as led:
        led.accept(EUI, 1, 0)
        led.accept(EUI, 2, 1)
        gap = led.accept(EUI, 3, 5)
        assert gap.lost == [2, 3, 4] and led.account(EUI)["lost"] == 3
        (v,) = led.accept_frame(EUI, 4, [record(6, (2, 3, "queue full"))])
        assert v.dropped == [[2, 3, "queue full"]]
        acc = led.account(EUI)
        assert acc["lost"] == 1 and acc["gaps"] == [[4, 4]]     # 4: not received
        assert acc["dropped"] == {"queue full": 2}
        # The same record again (sent anew after no ACK) changes nothing.
        led.accept_frame(EUI, 5, [record(6, (2, 3, "queue full"))])
        assert led.account(EUI)["dropped"] == {"queue full": 2}


def test_a_record_naming_readings_not_yet_missed_marks_them_when_the_gap_comes(tmp_path):
    with Ledger(tmp_path / "s.json") as led:
        led.accept(EUI, 1, 0)
        # The record (seq 1) names 2..4 as given way; the node's next reading is 5.
        led.accept_frame(EUI, 2, [record(1, (2, 4, "power cut"))])
        v = led.accept(EUI, 3, 5)
        assert v.lost == [] and v.dropped == [[2, 4, "power cut"]]
        acc = led.account(EUI)
        assert acc["lost"] == 0 and acc["dropped"] == {"power cut": 3}


def test_a_delivered_reading_stays_delivered_and_a_late_one_fills_its_gap(tmp_path):
    with Ledger(tmp_path / "s.json") as led:
        led.accept(EUI, 1, 0)
        led.accept(EUI, 2, 3)                        # 1, 2 not received (yet)
        late = led.accept(EUI, 3, 1)                 # sent again: no ACK had come
        assert late.late and not late.duplicate
        led.accept_frame(EUI, 4, [record(4, (0, 2, "queue full"))])
        acc = led.account(EUI)
        # 0 and 1 were delivered: only 2 counts as dropped; nothing is lost.
        assert acc["dropped"] == {"queue full": 1} and acc["lost"] == 0
        assert led.accept(EUI, 5, 1).duplicate


def test_nodectl_decodes_a_frame_of_several_readings_and_marks_the_dropped(tmp_path):
    key, dev_eui = bytes(range(16)), bytes.fromhex(EUI)
    reading = schemas.encode_items("climate", {"temperature": 21.5, "battery": 3.3}, seq=7)
    node = schemas.encode_items("node", {"dropped": [(5, 6, "queue full")]}, seq=8)
    state = tmp_path / "state.json"
    args = ("--dev-eui", EUI, "--key", key.hex(), "--state", state)
    first = envelope.seal(key, dev_eui, 1, cbor2.dumps(schemas.encode_items("climate", {}, seq=4)))
    nodectl("decode", first.hex(), *args)
    frame = envelope.seal(key, dev_eui, 2, cbor2.dumps([node, reading]))
    out = json.loads(nodectl("decode", frame.hex(), *args).stdout)
    assert out["counter"] == 2 and [r["seq"] for r in out["readings"]] == [8, 7]
    rec, climate = out["readings"]
    assert rec["kind"] == "node" and rec["dropped_by_node"] == [[5, 6, "queue full"]]
    assert climate["temperature"] == 21.5
    # Readings 5 and 6 are accounted as dropped by the node; nothing is left lost.
    with Ledger(state) as led:
        acc = led.account(EUI)
    assert acc["lost"] == 0 and acc["dropped"] == {"queue full": 2}


@pytest.mark.parametrize("body, why", [
    ([6, 1, 0, [1, 0], [[3, 2, 1]]], "first <= last"),
    ([6, 1, 0, [1, 0], [[1, 2, 9]]], "drop reason 9"),
    ([6, 1, 0, "x", []], "resets must be"),
    ([6, 1, 0, [1]], "body has 4 items"),
    ([[6, 1, 0, [1], []], [[2, 1]]], "reading 1 of the frame"),
])
def test_a_malformed_record_or_frame_is_refused_with_the_reason(body, why):
    with pytest.raises(schemas.SchemaError, match=why):
        schemas.decode_readings(cbor2.dumps(body))
