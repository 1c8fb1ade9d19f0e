"""Start `nodectl board` in the background, as a test or a script needs it.

    with BoardProcess(kind="climate", workdir=tmp_path) as board:
        subprocess.run(["mpremote", "connect", board.port, "exec", "print(1)"])
        board.files()               # what is in its flash image now
        board.console()             # everything it sent on its serial port

The board runs the same command a user types, in its own process; leaving the block
stops it with SIGTERM (its clean shutdown) and waits for it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from simulators.board.image import read_files

NODECTL = Path(sys.executable).parent / "nodectl"


class BoardProcess:
    def __init__(self, kind: str = "climate", workdir: Path = Path("board-out"), *extra: str,
                 speed: float = 1.0, fresh: bool = True, timeout: float = 30.0):
        self.workdir = Path(workdir)
        args = [str(NODECTL), "board", "--kind", kind, "--dir", str(self.workdir), "--json",
                "--speed", str(speed), *extra]
        if fresh:
            args.append("--fresh")
        self.events: list[dict] = []
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.stderr_path = self.workdir / "board.stderr"
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout)
            raise RuntimeError(f"nodectl board did not start: {self.stderr_path.read_text()[-2000:]}")
        ready = json.loads(line)
        self.port: str = ready["port"]
        self.image = Path(ready["flash"])
        self.ready = ready
        # Its event lines are read as they come, so its stdout never fills up.
        self._reader = threading.Thread(target=self._read_events, daemon=True)
        self._reader.start()

    def _read_events(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.append(json.loads(line))

    def __enter__(self) -> "BoardProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode

    def console(self) -> bytes:
        return (self.workdir / "console.log").read_bytes()

    def wait_console(self, needle: bytes, timeout: float = 60.0, start: int = 0) -> bytes:
        """Wait until the console log, from byte `start`, holds `needle`."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.console()[start:]
            if needle in text:
                return text
            if time.monotonic() > deadline:
                raise TimeoutError(f"{needle!r} not on the console within {timeout} s; it ends "
                                   f"with {text[-800:]!r}")
            time.sleep(0.05)

    def files(self) -> dict[str, bytes]:
        return read_files(self.image)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None and os.path.exists(self.port)
