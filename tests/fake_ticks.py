"""Driver scripts on the real MicroPython interpreter with a fake millisecond clock, for
tests that talk to a scripted UART, where no simulated time runs:

    out = run_on_fake_ticks(tmp_path, HARNESS + "print(m.joined())")

`time.ticks_ms()` starts at 0 and only `time.sleep_ms()` moves it, so a driver's
timeouts pass at once and exactly.
"""
from simulators.interpreter import FIRMWARE, run_script

FAKE_TIME = """
_now = 0
def ticks_ms(): return _now
def ticks_diff(a, b): return a - b
def ticks_add(a, b): return a + b
def sleep_ms(ms):
    global _now
    _now += ms
"""


def run_on_fake_ticks(tmp_path, code):
    """Run `code` with the firmware and the fake `time` on the path; it must exit cleanly.
    Return what it printed, one item per line."""
    (tmp_path / "time.py").write_text(FAKE_TIME)
    result = run_script(code, path=[tmp_path, FIRMWARE])
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()
