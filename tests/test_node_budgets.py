"""The node's own radio budgets, computed on MicroPython: time on air (for the join
back-off and the fair-use account), the join back-off series and the daily budget."""
from __future__ import annotations

import json

import pytest

from simulators.interpreter import FIRMWARE, run_script
from simulators.network import eu868


def micropython(code: str):
    r = run_script("import sys\nsys.path.insert(0, %r)\n" % str(FIRMWARE) + code)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_firmware_time_on_air_is_the_semtech_formula_at_every_data_rate():
    cases = [(n, dr) for n in (12, 13, 23, 25, 30, 43, 64, 128, 255) for dr in range(7)]
    got = micropython("from node import airtime\nimport json\n"
                      "print(json.dumps([airtime.toa_us(n, dr) for n, dr in %r]))" % cases)
    for (n, dr), us in zip(cases, got):
        assert abs(us - eu868.airtime_us(dr, n)) <= 1, (n, dr)


@pytest.mark.parametrize("app_len, per_day", [(10, [486, 265, 145, 80, 36, 20]),
                                              (51, [254, 139, 76, 42, 19, 10])])
def test_uplinks_per_day_in_30_s_match_the_fair_use_table(app_len, per_day):
    # lorawan-modems.md §2.4: uplinks per day within TTN's 30 s, SF7..SF12.
    got = micropython("from node import airtime\nimport json\n"
                      "print(json.dumps([30000000 // airtime.uplink_us(dr, %d) "
                      "for dr in (5, 4, 3, 2, 1, 0)]))" % app_len)
    assert got == per_day


def test_join_back_off_books_each_request_and_grows_with_the_age_of_the_series(tmp_path):
    got = micropython(f"""
import os, json
os.chdir({str(tmp_path)!r})
from node.join_backoff import JoinBackoff
b = JoinBackoff()
out = [b.wait_s(1000)]
b.attempt(1000, 3)
out.append(b.wait_s(1000))
b2 = JoinBackoff()                      # what a reset finds on the flash
out.append(b2.wait_s(1000))
b2.attempt(1000 + 5 * 3600, 3)          # hours into the series: 1/1000
out.append(b2.wait_s(1000 + 5 * 3600))
before = b2.attempt(1000 + 12 * 3600, 3)   # past 11 h: 1/10000
out.append(b2.wait_s(1000 + 12 * 3600))
b2.undo(before)                          # the modem refused to send it
out.append(b2.wait_s(1000 + 12 * 3600))
b2.wait_s(10)                            # the clock went back to 10 s
out.append(b2.wait_s(10))
b2.joined()
out.append(JoinBackoff().wait_s(10))
print(json.dumps(out))
""")
    toa = eu868.airtime_us(3, 23) / 1e6
    first, after_first, after_reset, hours, late, undone, went_back, joined = got
    assert first == 0
    assert toa * 100 <= after_first <= toa * 120 + 1
    assert after_reset == after_first, "a reset must not restart the back-off"
    assert toa * 1000 <= hours <= toa * 1200 + 1
    assert toa * 10000 <= late <= toa * 12000 + 1
    assert undone < hours
    # Not knowing how long it was off, the node waits the whole off-time of its last request.
    assert went_back == hours, "a clock set back must not shorten the back-off"
    assert joined == 0


def test_fair_use_keeps_two_downlinks_back_and_starts_afresh_each_day(tmp_path):
    got = micropython(f"""
import os, json
os.chdir({str(tmp_path)!r})
from node.fair_use import FairUse
day = 86400 * 100
b = FairUse(airtime_s=30, downlinks=10)
n = 0
while b.may_confirm(day + n):
    b.spend(day + n, 400000, confirmed=True)
    n += 1
left = FairUse().airtime_left_us(day + n)
print(json.dumps([n, left, FairUse().may_confirm(day + 86400)]))
""")
    confirmed, left, next_day = got
    assert confirmed == 8
    assert left == 30_000_000 - 8 * 400_000
    assert next_day is True
