"""What the fuzz targets found, one input each, kept as regression tests (the first five
fixed in 7920cd3). Each test's docstring gives the input's failure before the fix and the
fix."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import cbor2
import pytest

from fuzzkit import MicroPythonWorker, pack_input
from host_tools import schemas
from host_tools.schemas import SchemaError
from test_fuzz_at_modem import HARNESS as AT_HARNESS, encode
from test_fuzz_rn2483_replies import HARNESS as RN2483_HARNESS
from test_fuzz_wioe5_replies import HARNESS as WIOE5_HARNESS


@pytest.fixture(scope="module")
def strict_at(tmp_path_factory):
    # The AT/RAK3172 harness with every "known" answer turned back into a BUG.
    w = MicroPythonWorker(AT_HARNESS.replace('return "known ', 'return "BUG '),
                          tmp_path_factory.mktemp("fuzz-findings-at"))
    yield w
    w.close()


SEND, DATA_RATE, SCAN = 3, 4, 7


@pytest.mark.parametrize("dr", [b"9", b"x", b""])
def test_rak3172_garbled_data_rate_is_a_modem_error(strict_at, dr):
    """send()/data_rate() with `AT+DR=9` (IndexError from max_payload) or `AT+DR=x` (ValueError
    from int()): every failure of the modem is a ModemError (rak3172.py docstring).
    Fix, firmware/modems/rak3172.py data_rate(): `v = self._get("AT+DR")`;
    `if not v.isdigit() or int(v) >= len(_MAX_PAYLOAD): raise ModemError(REFUSED, "AT+DR=" + v)`."""
    for op in (SEND, DATA_RATE):
        [r] = strict_at.run([encode(op, 0, [b"", b"AT+DR=" + dr + b"\r\nOK\r\n"])])
        assert not r.startswith("BUG"), r


def test_rak3172_negative_duty_cycle_wait_is_not_passed_on(strict_at):
    """`Restricted_Wait_-5_ms` gives ModemError(RESTRICTED, wait_ms=-5), which delivery.py hands
    to machine.lightsleep(-45). Fix, rak3172.py _wait_ms(): take the digits only:
    `s = line[len(_RESTRICTED):].split("_")[0]; return int(s) if s.isdigit() else 0`."""
    [r] = strict_at.run([encode(SEND, 0, [b"", b"AT+DR=0\r\nOK\r\n", b"OK\r\n",
                                          b"Restricted_Wait_-5_ms\r\nAT_BUSY_ERROR\r\n"])])
    assert not r.startswith("BUG"), r


@pytest.mark.parametrize("port", [b"-1", b"999"])
def test_rak3172_downlink_port_outside_0_255_is_a_bad_event(strict_at, port):
    """`+EVT:RX_1:-70:7:UNICAST:-1:0A0B` is taken as a downlink on port -1 (int() accepts a
    sign, spaces, any size). Fix, rak3172.py _downlink(): `if not parts[5].isdigit() or
    int(parts[5]) > 255: raise ValueError(line)` (counted in bad_events)."""
    [r] = strict_at.run([encode(SCAN, 0, [b"+EVT:RX_1:-70:7:UNICAST:" + port + b":0A0B\r\n"])])
    assert not r.startswith("BUG"), r


def test_decode_body_channel_beyond_a_double_is_a_schema_error():
    """An authentic body whose channel is a CBOR bignum (tag 2) of 2**1030 raises OverflowError
    out of decode_items (`raw / channel.divisor`), which `nodectl decode` does not catch (it
    catches ValueError): a traceback instead of "cannot decode". Fix, host_tools/schemas.py
    decode_items(): a channel must fit the wire's 64 bits, `if not -2**64 <= raw < 2**64:
    raise SchemaError(f"channel {channel.name} value {raw} is beyond 64 bits")` (the firmware
    never sends tags; rejecting CBOR tags in decode_body would do as well)."""
    body = cbor2.dumps([1, 0, 0, 2 ** 1030, 0, 0])
    with pytest.raises(SchemaError):
        schemas.decode_body(body)


def test_ledger_a_seq_far_ahead_does_not_exhaust_the_decoder(tmp_path):
    """Ledger.accept lists every lost reading number: a reading numbered 2**32-1 after 0 builds
    a list of 4 billion ints (tens of GB). Run under a 1 GB address-space limit, it dies with
    MemoryError. Fix, host_tools/ledger.py accept(): bound the list, e.g. report
    `Verdict.lost` as the first..last range (or `lost_count` plus at most the first 1000
    numbers), and count `dev["lost"] += seq - last_seq - 1` without building the list."""
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        from host_tools.ledger import Ledger
        with Ledger({str(tmp_path / 's.json')!r}) as led:
            led.accept("AA", 1, 0)
            led.accept("AA", 2, 2 ** 32 - 1)
        print("done")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "done" in r.stdout, r.stderr[-500:]


@pytest.fixture(scope="module")
def wioe5(tmp_path_factory):
    w = MicroPythonWorker(WIOE5_HARNESS, tmp_path_factory.mktemp("fuzz-findings-wioe5"))
    yield w
    w.close()


@pytest.fixture(scope="module")
def rn2483(tmp_path_factory):
    w = MicroPythonWorker(RN2483_HARNESS, tmp_path_factory.mktemp("fuzz-findings-rn2483"))
    yield w
    w.close()


@pytest.mark.parametrize("first", [b"+DR: DR99", b"+DR: DR8", b"+DR: DR0 (ADR DR12)"])
def test_wioe5_data_rate_beyond_dr7_is_a_modem_error(wioe5, first):
    """`+DR: DR8` (or `DR99`, or ADR's `(ADR DR12)`) to AT+DR: data_rate() returned 8, outside
    the 0..7 modems/__init__.py promises (the node computes airtime and payload room from it).
    Fix, firmware/modems/wioe5.py data_rate(): the number goes through `_dr`, which refuses
    one above 7 (ValueError, so ModemError(REFUSED, "AT+DR=DR8"))."""
    [r] = wioe5.run([pack_input(4, 0, 0, [b"", first + b"\r\n+DR: EU868 DR5  SF7 BW125K\r\n"])])
    assert r == "rej ModemError 8"


@pytest.mark.parametrize("op", [3, 4, 5])
def test_rn2483_data_rate_8_or_9_is_no_data_rate(rn2483, op):
    """`8` (or `9`) to `mac get dr`: data_rate() returned 8; send() and max_payload() raised
    IndexError from `_MAX_PAYLOAD[dr]` (found in send, input 03000000000003380d0a).
    Fix, firmware/modems/rn2483.py _VALUES: the "dr" answer is one digit 0..7; anything else
    is noise on the line, and no answer ends in ModemError(TIMEOUT, "mac get dr")."""
    [r] = rn2483.run([pack_input(op, 0, 0, [b"", b"8\r\n"])])
    assert r == "rej ModemError 6"
