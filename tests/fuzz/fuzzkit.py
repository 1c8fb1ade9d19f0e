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
import struct
import subprocess
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
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

    def __init__(self, harness: str, workdir: Path, cwd: Path | None = None):
        self.workdir = Path(workdir)
        self.cwd = cwd          # the process's working directory (a scratch flash), if given
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
                                     stderr=self._stderr, env=env, cwd=self.cwd)
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


def run_batches(worker: MicroPythonWorker, one_input, name: str) -> int:
    """Send EXAMPLES inputs drawn from `one_input` through `worker` in batches of BATCH
    (failing on a crash, hang or BUG line), print what came out; the number of inputs run."""
    start = worker.inputs
    before = dict(worker.outcomes)

    @fuzz_settings(BATCH)
    @given(st.lists(one_input, min_size=BATCH, max_size=BATCH))
    def run(inputs):
        check(worker, inputs)

    run()
    ran = worker.inputs - start
    outcomes = {k: v - before.get(k, 0) for k, v in sorted(worker.outcomes.items())
                if v != before.get(k, 0)}
    print(f"\n{name}: {ran} inputs; known findings hit: {worker.known}\n  outcomes: {outcomes}")
    return ran


# --- a modem on a scripted UART (the modem drivers' targets) ------------------------------
# An input is: op, chunk, flags, then the modem's replies, each as length (2, BE) | bytes.
# The first reply is on the line before the driver writes anything; every command line the
# driver writes (a write ending in LF) brings the next one; a reply that starts with 0x00
# comes only when the line is idle (a late answer: a join's result after its RX windows).
# `chunk` > 0 hands lines out in pieces of that many bytes.
FUZZ_UART = r"""
import time

class FuzzUart:
    def __init__(self, replies, chunk, timeout=50):
        self.replies = replies
        self.chunk = chunk
        self.timeout = timeout
        self.rx = b""
        if replies:
            self.rx = replies.pop(0)

    def init(self, *args, **kw):
        pass                    # another baud rate: the script answers at any

    def flush(self):
        pass

    def sendbreak(self):
        pass

    def write(self, data):
        if data[-1:] == b"\n" and self.replies and self.replies[0][:1] != b"\x00":
            self.rx += self.replies.pop(0)
        return len(data)

    def any(self):
        return len(self.rx)

    def _take(self, n):
        if self.chunk:
            n = min(n, self.chunk)
        out = self.rx[:n]
        self.rx = self.rx[n:]
        return out

    def _idle(self):
        if not self.rx and self.replies and self.replies[0][:1] == b"\x00":
            self.rx = self.replies.pop(0)[1:]
        if self.rx:
            return False
        time.sleep_ms(self.timeout)     # virtual time: a timeout costs nothing
        return True

    def readline(self):
        if self._idle():
            return None
        i = self.rx.find(b"\n")
        return self._take(len(self.rx) if i < 0 else i + 1)

    def read(self, n=None):
        if self._idle():
            return None
        return self._take(len(self.rx) if n is None else n)

def unpack_replies(data, i):
    replies = []
    while i + 2 <= len(data):
        n = (data[i] << 8) | data[i + 1]
        replies.append(bytes(data[i + 2:i + 2 + n]))
        i += 2 + n
    return replies

def heard(stream, word):
    # How often `word` could have reached the driver: the stream cut at CR and LF, each
    # piece without its unprintable bytes (the AT reader drops them), `word` counted in it.
    n = 0
    for seg in stream.replace(b"\r", b"\n").split(b"\n"):
        n += bytes(b for b in seg if 32 <= b < 127).count(word)
    return n

def modem_error_bug(e, key_hex):
    # What any driver's ModemError must hold: a shared reason, no negative wait, no key.
    from modems import BUSY, REFUSED, RESTRICTED
    if not BUSY <= e.reason <= REFUSED:
        return "BUG ModemError reason %r" % e.reason
    if e.reason == RESTRICTED and e.wait_ms < 0:
        return "BUG negative duty-cycle wait %d ms" % e.wait_ms
    if key_hex in str(e.detail).upper():
        return "BUG the AppKey in an error: %r" % e.detail
    return None

def at_ok(at, max_events):
    # The AT reader's own bounds, after anything.
    if len(at.events) > max_events:
        return "BUG event queue %d > %d" % (len(at.events), max_events)
    if len(at._partial) > 1100:
        return "BUG partial line grew to %d" % len(at._partial)
    for e in at.events + at._lines:
        for c in e:
            if not 32 <= ord(c) < 127:
                return "BUG unprintable character kept in %r" % e
    return None
"""


def pack_input(op: int, chunk: int, flags: int, replies: list[bytes]) -> bytes:
    return bytes([op, chunk, flags]) + b"".join(struct.pack(">H", len(r)) + r for r in replies)


EOL = st.sampled_from([b"\r\n", b"\r\n", b"\n", b"\r", b"", b"\r\r\n"])


# What a garbled value may turn into: digits, hex, signs, separators, a few letters.
VALUE = st.one_of(st.integers(-300, 2 ** 33).map(str), st.integers(0, 300).map(str),
                  st.text("0123456789ABCDEFabcdef:-+_., ()\";xDRLNOK", max_size=16)).map(str.encode)


@st.composite
def revalue(draw, reply: bytes) -> bytes:
    """`reply` with one line's value replaced from some point on: `+DR: DR5` may become
    `+DR: DR99` or `+DR: D-1`, `5` may become `12` (what comes after `: ` is the value)."""
    lines = reply.split(b"\r\n")
    i = draw(st.integers(0, len(lines) - 1))
    line = lines[i]
    head = line.find(b": ") + 2 if b": " in line else 0
    keep = head + draw(st.integers(0, len(line) - head))
    lines[i] = line[:keep] + draw(VALUE)
    return b"\r\n".join(lines)


@st.composite
def damaged(draw, script: list[bytes], vocabulary: list[bytes]) -> list[bytes]:
    """The replies of `script` with up to four of them damaged: a value garbled, mutated,
    replaced by another line the modem says, by random bytes or by nothing, delayed, a line
    slipped in before them, or the rest of the conversation lost."""
    replies = list(script)
    for _ in range(draw(st.integers(0, 4))):
        if not replies:
            break
        i = draw(st.integers(0, len(replies) - 1))
        how = draw(st.integers(-2, 7))
        if how < 0:
            replies[i] = draw(revalue(replies[i]))
        elif how == 0:
            replies[i] = draw(mutate(replies[i]))
        elif how == 1:
            replies[i] = draw(st.sampled_from(vocabulary)) + draw(EOL)
        elif how == 2:
            replies[i] = draw(st.binary(max_size=40))
        elif how == 3:
            replies[i] = b""
        elif how == 4:
            replies[i] = b"\x00" + replies[i].lstrip(b"\x00")
        elif how == 5:
            replies[i] = draw(st.sampled_from(vocabulary)) + draw(EOL) + replies[i]
        elif how == 6:
            replies.insert(i, draw(st.sampled_from(vocabulary)) + b"\r\n")
        else:
            del replies[i:]
    return replies


def modem_inputs(scripts: list, vocabulary: list[bytes], n_ops: int):
    """Inputs for a modem driver's harness: the conversations of `scripts` ((op, flags,
    replies, expected) each), damaged, in any chunking; and any op over any replies."""
    line = st.one_of(
        st.sampled_from(vocabulary),
        st.sampled_from(vocabulary).flatmap(mutate),
        st.binary(max_size=40))
    reply = st.one_of(
        st.lists(st.tuples(line, EOL).map(b"".join), max_size=4).map(b"".join),
        st.lists(st.tuples(line, EOL).map(b"".join), min_size=1, max_size=2).map(
            lambda ls: b"\x00" + b"".join(ls)),
        st.binary(max_size=120))
    chunk = st.one_of(st.just(0), st.just(0), st.integers(1, 80))
    return st.one_of(
        st.sampled_from(scripts).flatmap(lambda s: st.builds(
            pack_input, st.just(s[0]), chunk, st.just(s[1]), damaged(s[2], vocabulary))),
        st.sampled_from(scripts).flatmap(lambda s: st.builds(
            pack_input, st.just(s[0]), chunk, st.just(s[1]), damaged(s[2], vocabulary))),
        st.builds(pack_input, st.integers(0, n_ops - 1), chunk, st.integers(0, 255),
                  st.lists(reply, max_size=12)),
    )
