"""Fuzz: the firmware's CBOR decoder (firmware/payload/cbor.py `loads`) and envelope `unseal`
(firmware/payload/envelope.py) on the real MicroPython: arbitrary bytes give a value or a
ValueError, never another exception; a decoded value encodes again and decodes to itself;
a sealed frame with any change is refused."""
from __future__ import annotations

import json
from pathlib import Path

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fuzzkit import BATCH, EXAMPLES, MicroPythonWorker, check, fuzz_settings, mutate

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
KEY = bytes(range(16))
DEV_EUI = bytes.fromhex("0011223344556677")

HARNESS = r"""
from payload import cbor, envelope
KEY = bytes(range(16))
DEV_EUI = b"\x00\x11\x22\x33\x44\x55\x66\x77"

def fuzz_one(data):
    op = data[0] & 1
    data = data[1:]
    if op == 0:
        try:
            v = cbor.loads(data)
        except ValueError:
            return "rej cbor"
        # Whatever it accepts, it can send again: encode and decode back to the same value.
        again = cbor.loads(cbor.dumps(v))
        if again != v:
            return "BUG loads(dumps(%r)) == %r" % (v, again)
        return "ok cbor"
    try:
        counter, body = envelope.unseal(KEY, DEV_EUI, data, envelope.UPLINK)
    except ValueError:
        return "rej unseal"
    if envelope.seal(KEY, DEV_EUI, counter, body) != bytes(data):
        return "BUG unseal accepted a frame seal() does not give back"
    return "ok unseal"
"""


def _vector_frames() -> list[bytes]:
    frames = []
    for p in sorted(VECTORS.glob("*.json")):
        v = json.loads(p.read_text())
        f = v.get("expected", {}).get("frame")
        if f and v["inputs"]["key"] == KEY.hex() and v["inputs"]["dev_eui"] == DEV_EUI.hex() \
                and v["inputs"].get("direction", 0) == 0:
            frames.append(bytes.fromhex(f))
    return frames


FRAMES = _vector_frames()


def mutated(seeds):
    """A seed with a few bytes flipped, cut, inserted or deleted (never the seed itself)."""
    return st.sampled_from(seeds).flatmap(mutate)


cbor_seeds = [cbor2.dumps(x) for x in (
    [1, 21, 0, 2137, 552, 3310], [2, 0, 3, None, None, 3300], {"a": [1, b"x"]}, "text", -1,
    2 ** 64 - 1, -2 ** 64, [[[[[[[[1]]]]]]]], {1: 2, "k": False}, b"\xff" * 30, True, None)]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 64, 2 ** 64 - 1),
                    st.binary(max_size=8), st.text(max_size=8))
values = st.recursive(scalars, lambda c: st.one_of(
    st.lists(c, max_size=4), st.dictionaries(scalars, c, max_size=4)), max_leaves=12)
cbor_input = st.one_of(st.binary(max_size=64), mutated(cbor_seeds),
                       values.map(cbor2.dumps), values.map(cbor2.dumps).map(lambda b: [b]).flatmap(mutated)).map(lambda b: b"\x00" + b)
frame_input = st.one_of(st.binary(max_size=40), mutated(FRAMES)).map(lambda b: b"\x01" + b)


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = MicroPythonWorker(HARNESS, tmp_path_factory.mktemp("fuzz-payload"))
    yield w
    w.close()


def test_vector_frames_open_in_the_harness(worker):
    # The mutation seeds are real frames: unaltered, the firmware opens them.
    assert FRAMES
    assert worker.run([b"\x01" + f for f in FRAMES]) == ["ok unseal"] * len(FRAMES)


def test_firmware_cbor_loads_gives_a_value_or_value_error(worker):
    start = worker.inputs

    @fuzz_settings(BATCH)
    @given(st.lists(cbor_input, min_size=BATCH, max_size=BATCH))
    def run(inputs):
        check(worker, inputs)

    run()
    ran = worker.inputs - start
    print(f"\nfirmware cbor.loads: {ran} inputs\n  outcomes: {dict(sorted(worker.outcomes.items()))}")
    assert ran >= EXAMPLES


def test_firmware_unseal_refuses_every_altered_frame(worker):
    start = worker.inputs
    before = dict(worker.outcomes)

    @fuzz_settings(BATCH)
    @given(st.lists(frame_input, min_size=BATCH, max_size=BATCH))
    def run(inputs):
        check(worker, inputs)

    run()
    ran = worker.inputs - start
    accepted = worker.outcomes.get("ok unseal", 0) - before.get("ok unseal", 0)
    print(f"\nfirmware envelope.unseal: {ran} inputs, {accepted} accepted")
    assert accepted == 0, "an altered or random frame was accepted"
    assert ran >= EXAMPLES
