"""Shared pieces of the fuzz targets: how many inputs to run, the hypothesis settings, and a
long-lived MicroPython worker that runs a harness script over inputs sent as hex lines.

FUZZ_EXAMPLES (environment) is the number of inputs per target: `make fuzz` sets 100000;
`make test` runs the default below, a quick version. Firmware targets run on the real
`micropython`; hypothesis generates the inputs in CPython and sends them in batches of
BATCH; the harness answers one line per input: "ok ...", "rej ..." (the input was
rejected with the documented exception) or "BUG ..." (another exception, or an invariant
broken). A worker that dies or stops answering is a crash or a hang: a finding.
"""
from __future__ import annotations

import os
import select
import subprocess
import time
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from simulators.interpreter import FIRMWARE, micropython_binary

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "600"))
BATCH = 50
HANG_S = 30.0


def fuzz_settings(per_example: int = 1):
    """Settings for a target whose every example carries `per_example` inputs."""
    return settings(
        max_examples=max(1, -(-EXAMPLES // per_example)),
        deadline=None,
        database=None,      # reproducible runs; a finding is printed with its input
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )


# A millisecond/microsecond clock that only moves when the code sleeps: timeouts are
# virtual, so a fuzz input never costs wall time waiting.
FAKE_TIME = """
_now = 0
def ticks_ms(): return _now // 1000
def ticks_us(): return _now
def ticks_diff(a, b): return a - b
def ticks_add(a, b): return a + b
def sleep_ms(ms):
    global _now
    _now += ms * 1000
def sleep_us(us):
    global _now
    _now += us
def sleep(s):
    sleep_ms(int(s * 1000))
def time(): return _now // 1000000
"""

MAIN_LOOP = """
import sys
from binascii import unhexlify
while True:
    _l = sys.stdin.readline()
    if not _l:
        break
    try:
        _r = fuzz_one(unhexlify(_l.strip()))
    except Exception as _e:
        _r = "BUG %s %r" % (type(_e).__name__, _e)
    print(str(_r).replace("\\n", " "))
"""


class WorkerDied(Exception):
    pass


class MicroPythonWorker:
    """One `micropython` process running `harness` (which defines fuzz_one(data) -> str)."""

    def __init__(self, harness: str, workdir: Path):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "time.py").write_text(FAKE_TIME)
        self.script = self.workdir / "fuzz_harness.py"
        self.script.write_text(harness + MAIN_LOOP)
        self.inputs = 0
        self.known: dict[str, int] = {}
        self.outcomes: dict[str, int] = {}
        self.proc = None
        self._buf = b""
        self._start()

    def _start(self):
        env = dict(os.environ)
        env["MICROPYPATH"] = f"{self.workdir}:{FIRMWARE}:.frozen"
        # stderr to a file: MicroPython warns there ("Comparison between bytes and str"), and
        # a pipe nobody reads would fill and stall the worker.
        self._stderr = open(self.workdir / "stderr.log", "wb")
        self.proc = subprocess.Popen([micropython_binary(), "-X", "heapsize=8M", str(self.script)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env)
        self._buf = b""

    def close(self):
        self._stderr.close()
        if self.proc and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _readline(self, deadline: float) -> bytes | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def run(self, inputs: list[bytes]) -> list[str]:
        """One result line per input. Raises WorkerDied (naming the input) on a crash or hang;
        the worker is restarted for the next call."""
        payload = b"".join(bytes(x).hex().encode() + b"\n" for x in inputs)
        results = []
        try:
            self.proc.stdin.write(payload)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        for x in inputs:
            line = self._readline(time.monotonic() + HANG_S)
            if line is None:
                hung = self.proc.poll() is None
                if hung:
                    self.proc.kill()
                self.proc.wait()
                self._stderr.close()
                err = (self.workdir / "stderr.log").read_bytes()[-2000:].decode(errors="replace")
                self._start()
                raise WorkerDied(f"micropython {'hung' if hung else 'died'} on input "
                                 f"{bytes(x).hex()} (after {len(results)} of this batch):\n{err}")
            results.append(line.decode(errors="replace"))
            self.inputs += 1
        return results


def check(worker: MicroPythonWorker, inputs: list[bytes]) -> list[str]:
    """Run inputs; fail on a crash, a hang or a BUG line, naming the input."""
    for x, r in zip(inputs, worker.run(inputs)):
        assert not r.startswith("BUG"), f"input {bytes(x).hex()}: {r}"
        key = " ".join(r.split()[:2])
        worker.outcomes[key] = worker.outcomes.get(key, 0) + 1
        if r.startswith("known"):
            # A finding already reported (tests/fuzz/test_fuzz_findings.py), counted.
            key = " ".join(r.split()[:3])
            worker.known[key] = worker.known.get(key, 0) + 1
        assert r.startswith(("ok", "rej", "known")), f"input {bytes(x).hex()}: unexpected answer {r!r}"
    return inputs


@st.composite
def mutate(draw, data: bytes) -> bytes:
    """`data` with a few bytes flipped, cut, inserted or deleted (never `data` itself)."""
    data = bytearray(data)
    orig = bytes(data)
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.integers(0, 3))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if how == 0 and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif how == 1:
            del data[pos:]
        elif how == 2:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif data:
            del data[pos]
    if bytes(data) == orig:
        data.append(0)
    return bytes(data)
