"""The virtual board: a simulated node of one kind, its USB serial on a pty.

    board = VirtualBoard(kind="climate", workdir=Path("board-out"))
    print(board.port.path)
    board.run()                  # until SIGINT/SIGTERM (or board.stop())

The board is a SimNode (its buses, part models, modem and flash image as in a
simulated run) whose firmware runs on the real `micropython` as on a board:

- after a reset (power-on, `machine.reset()`, the watchdog, a deep-sleep wake) the
  interpreter boots: node_runtime/board_boot.py mounts the flash and runs boot.py and
  main.py; a Ctrl-C on the console interrupts main.py into the REPL;
- one interpreter lives from one reset to the next, as on a board: the REPL's code
  runs in it (node_runtime/repl_worker.py), with the same globals and the same flash;
  a soft reset (Ctrl-D, `mpremote soft-reset`) starts a new one (MPY: soft reboot);
- the REPL's protocol on the console (friendly, raw, raw-paste) is served here, byte
  for byte as MicroPython's pyexec.c does (repl.py), because the unix port has none;
- `machine.deepsleep(ms)` ends the interpreter; the board sleeps ms/speed on the wall
  clock (pacing.py) and wakes by timer or by an armed wake pin, as in a simulated run.

While it sleeps, the USB serial stays up (the bridge of an ESP32 board is powered and
enumerated through deep sleep). A real sleeping MCU would ignore the console until
someone presses RESET; the virtual board takes the first byte it receives while
asleep as that press and comes up at the REPL without running main.py, then reads the
byte (docs/virtual-board.md says why: mpremote on a pty waits forever for an answer).
"""
from __future__ import annotations

import json
import os
import random
import select
import signal
import subprocess
import time
from pathlib import Path

from host_tools import boards
from simulators import kinds as sim_kinds
from simulators.board.pacing import PacedNode
from simulators.board.pty_port import PtyPort
from simulators.board.repl import Exec, Repl, SoftReset
from simulators.bus.i2c import Nack, Timeout
from simulators.clock import Clock
from simulators.interpreter import dies_with_parent, micropython_binary
from simulators.network import Network
from simulators.node import (DEEPSLEEP_RESET, EIO, ENODEV, ETIMEDOUT, HARD_RESET, PIN_WAKE,
                             PWRON_RESET, RUNTIME, TIMER_WAKE, WDT_RESET, NodeStopped, _WakeEnd)

MCU_NAMES = {"rp2040": "RP2040", "esp32": "ESP32"}
RAK_OUI = bytes.fromhex("AC1F09")   # RAKwireless' IEEE OUI: the RAK3172's factory DevEUIs
KBD_REPEAT_S = 0.3      # MicroPython's unix port exits on a 2nd SIGINT before the 1st is handled
CRASH_PAUSE_S = 1.0     # an interpreter that dies unexpectedly is restarted after this
PORT_RECHECK_S = 0.05   # how often a port with no client is looked at again
STDIN_LIMIT = 1 << 16   # a board's stdin buffer is finite: what overflows it is lost
CAUSE_NAMES = {PWRON_RESET: "power_on", HARD_RESET: "hard_reset", WDT_RESET: "watchdog",
               DEEPSLEEP_RESET: "deepsleep"}


def _parts(code: bytes) -> list:
    """The code as the interpreter fetches it: text in parts of 2048 characters, or hex
    in parts of 4096 digits when it is not UTF-8."""
    try:
        text = code.decode()
    except UnicodeDecodeError:
        digits = code.hex()
        return [digits[i:i + 4096] for i in range(0, len(digits), 4096)]
    return [text[i:i + 2048] for i in range(0, len(text), 2048)]


class _Stop(Exception):
    """SIGINT/SIGTERM: the board powers off."""


class _Interrupted(Exception):
    """A Ctrl-C abandoned the wait the node was in: its request gets no answer."""


def choose_board(kind: str, board: str | None = None) -> str:
    """The board file for a node of `kind`: `board` if given, else the kind's usual
    board, else the only board that can be one."""
    rig = sim_kinds.rig_class(kind)          # raises for an unknown kind
    if board:
        spec = boards.load(board)
        if kind not in spec["kinds"]:
            raise ValueError(f"board {board} cannot be a {kind} node (it supports "
                             f"{', '.join(spec['kinds'])})")
        return board
    candidates = [b for b in boards.available() if kind in boards.load(b)["kinds"]]
    if rig.DEFAULT_BOARD in candidates:
        return rig.DEFAULT_BOARD
    if len(candidates) == 1:
        return candidates[0]
    raise ValueError(f"several boards can be a {kind} node ({', '.join(candidates)}): "
                     f"choose one with --board")


class _Interpreter:
    """One interpreter's life on the board: from a reset to the next."""

    def __init__(self, node, workdir: Path, heapsize: str, run_main: bool):
        self.run_main = run_main
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        env = dict(os.environ, MICROPYPATH=str(RUNTIME), SIM_RX_FD=str(rep_r),
                   SIM_TX_FD=str(req_w), SIM_FLASH=str(node.flash.path),
                   SIM_BOARD_MAIN="1" if run_main else "0")
        self.proc = subprocess.Popen(
            [micropython_binary(), "-X", f"heapsize={heapsize}", str(RUNTIME / "board_boot.py")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            pass_fds=(rep_r, req_w), env=env, cwd=workdir, preexec_fn=dies_with_parent())
        os.close(rep_r)
        os.close(req_w)
        self.requests = req_r
        self.replies = rep_w
        self.stdout = self.proc.stdout.fileno()
        self.stdin = self.proc.stdin.fileno()
        for fd in (self.requests, self.stdout, self.stdin):
            os.set_blocking(fd, False)
        self._lines = bytearray()
        self.stdin_pending = bytearray()
        self.last_kbd = -KBD_REPEAT_S
        self.started = time.monotonic()

    def read_requests(self) -> list[list] | None:
        """The complete request lines available now; None once the interpreter is gone."""
        try:
            data = os.read(self.requests, 65536)
        except BlockingIOError:
            data = None
        if data == b"":
            return None
        if data:
            self._lines += data
        out = []
        while b"\n" in self._lines:
            line, _, rest = bytes(self._lines).partition(b"\n")
            self._lines = bytearray(rest)
            out.append(json.loads(line))
        return out

    def read_output(self) -> bytes:
        chunks = []
        while True:
            try:
                data = os.read(self.stdout, 65536)
            except (BlockingIOError, OSError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)

    def reply(self, seq: int, value) -> None:
        data = json.dumps([seq, value]).encode() + b"\n"
        os.set_blocking(self.replies, True)     # the interpreter is reading: it drains
        try:
            os.write(self.replies, data)
        except BrokenPipeError:
            pass

    def feed_stdin(self, data: bytes) -> None:
        room = STDIN_LIMIT - len(self.stdin_pending)
        self.stdin_pending += data[:max(0, room)]
        self.flush_stdin()

    def flush_stdin(self) -> None:
        while self.stdin_pending:
            try:
                n = os.write(self.stdin, self.stdin_pending)
            except BlockingIOError:
                return
            except OSError:
                self.stdin_pending.clear()
                return
            del self.stdin_pending[:n]

    def catches_ctrl_c(self) -> bool:
        """Whether Ctrl-C is the interrupt character now. MicroPython's unix port
        catches SIGINT while it is, and restores the default when the code calls
        micropython.kbd_intr(-1): the process's caught-signal mask says which."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("SigCgt:"):
                        return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
        except OSError:
            pass
        return True

    def interrupt(self) -> bool:
        now = time.monotonic()
        if now - self.last_kbd < KBD_REPEAT_S:
            return False
        self.last_kbd = now
        try:
            self.proc.send_signal(signal.SIGINT)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for fd in (self.requests, self.replies):
            try:
                os.close(fd)
            except OSError:
                pass
        self.proc.stdout.close()
        try:
            self.proc.stdin.close()
        except OSError:
            pass


class VirtualBoard:
    def __init__(self, kind: str = "climate", board: str | None = None, modem: str | None = None,
                 workdir: Path = Path("board-out"), speed: float = 1.0, seed: int = 1,
                 fresh: bool = False, heapsize: str = "192K", on_event=None):
        self.kind = kind
        self.board_name = choose_board(kind, board)
        self.board = boards.load(self.board_name)
        if modem:
            self.board = boards.with_modem(self.board, modem)   # another modem on its UART
        self.seed = seed
        self.workdir = Path(workdir).resolve()
        self.heapsize = heapsize
        self.on_event = on_event or (lambda event, **fields: None)
        self.clock = Clock()
        self.network = Network(seed=seed)
        rng = random.Random(f"ids:{seed}:board")
        self.dev_eui = RAK_OUI + b"\xff\xfe" + rng.randbytes(3)
        image = self.workdir / "flash.img"
        if fresh and image.exists():
            image.unlink()
        self.node = PacedNode("board", self.board, self.workdir, self.clock, self.network,
                              self.dev_eui, seed=seed, heapsize=heapsize, speed=speed,
                              pump=self._pump_until)
        self.rig = sim_kinds.rig_class(kind)(self)    # parts wired as the board file says
        # The flash will hold the node's keys once it is provisioned, and the console
        # may show what a technician types: both owner-only, like an inventory.
        os.chmod(self.node.flash.path, 0o600)
        self.console_log = open(self.workdir / "console.log", "ab")
        os.chmod(self.workdir / "console.log", 0o600)
        self.port = PtyPort()
        mcu = MCU_NAMES.get(self.board["mcu"], self.board["mcu"].upper())
        self.machine_name = f"{self.board_name} (virtual) with {mcu}"
        self.repl = Repl(f"MicroPython; {self.machine_name}")
        self.interp: _Interpreter | None = None
        self.state = "off"           # booting, running, draining, repl, executing, asleep
        self._input = bytearray()    # console bytes waiting for the REPL
        self._kbd_pending = False    # a Ctrl-C that came while the interpreter booted
        self._job = 0                # the code the interpreter runs: 0 = boot and main.py
        self._result = None          # (exception text, exit requested) of the ended job
        self._sent_job = None        # the reply of the job in progress (to resend)
        self._code_parts: list = []  # its code, fetched part by part
        self._wait_seq = None        # the request the REPL's next job answers
        self._unread_done: set = set()
        self._sleep_until = None     # virtual µs of the timer/pin wake while asleep
        self._sleep_by_pin = False
        self._restart_at = None      # wall time to restart a crashed interpreter
        self._serving = None         # the request whose wait the board is pacing
        self._backlog: list = []     # requests read while a wait was being paced
        self._stopping = False

    # --- the board's life --------------------------------------------------------------
    def run(self, ready=None) -> None:
        """Power on and serve the console until SIGINT/SIGTERM or `stop()`. `ready()` is
        called once those signals stop the board cleanly (announce the port there)."""
        def stop(signum, frame):
            raise _Stop()
        old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            if ready:
                ready()
            self._boot(PWRON_RESET, run_main=True)
            while not self._stopping:
                if self._backlog and self.interp:
                    self._requests()
                self._pump_until(self._next_timer(), nested=False)
                self._timers()
        except _Stop:
            pass
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            self.close()

    def stop(self) -> None:
        self._stopping = True

    def close(self) -> None:
        if self.interp:
            self.interp.kill()
            self.interp = None
        self.port.close()
        self.console_log.close()
        self.on_event("off")

    def _boot(self, cause: int, run_main: bool, hard: bool = True) -> None:
        """A reset: a new interpreter. main.py runs unless the REPL was raw before a
        soft reset, or the reset is the virtual RESET press that brings the board to
        the REPL. A hard reset clears RAM, so the REPL starts friendly."""
        if hard:
            # RAM is gone: the REPL starts friendly, the watchdog is stopped. A soft
            # reset keeps both: it restarts the interpreter, not the chip, and the
            # watchdog is hardware that goes on counting (rp2: machine.WDT cannot be
            # stopped, docs/library/machine.WDT.rst).
            self.repl.raw = False
            self.node._wdt_timeout_us = None
            self.node._wdt_deadline = None
        if self.interp:
            self.interp.kill()
        self.node.reset_cause = cause
        self.node.wake_pins = {}
        self.node._cut_at_us = None
        self.node.wakes += 1
        self.interp = _Interpreter(self.node, self.workdir, self.heapsize, run_main and not self.repl.raw)
        self.state = "booting"
        self._job = 0
        self._sent_job = None
        self._wait_seq = None
        self._unread_done = set()
        self._backlog = []
        self._kbd_pending = False
        self._sleep_until = None
        if self._input:   # typed ahead: it waits in the new interpreter's stdin buffer
            self.interp.feed_stdin(bytes(self._input))
            self._input.clear()
        self.on_event("boot", cause=CAUSE_NAMES.get(cause, cause),
                      main=self.interp.run_main, t=round(self.clock.now_s, 3))

    def _soft_reset(self) -> None:
        self._console(b"MPY: soft reboot\r\n")
        self._boot(self.node.reset_cause, run_main=True, hard=False)

    def _end(self, end: _WakeEnd) -> None:
        """The interpreter stopped the board: deep sleep, machine.reset(), watchdog."""
        self._console(self.interp.read_output())
        if end.how == "deepsleep":
            self.interp.kill()
            self.interp = None
            self.node.reset_cause = DEEPSLEEP_RESET
            self.state = "asleep"
            wake_at = self.clock.now_us + end.sleep_ms * 1000
            edge = None
            if self.node.wake_pins and hasattr(self.rig, "next_pin_wake"):
                edge = self.rig.next_pin_wake(dict(self.node.wake_pins), self.clock.now_us, wake_at)
            self._sleep_by_pin = edge is not None and edge < wake_at
            self._sleep_until = edge if self._sleep_by_pin else wake_at
            self.node.pacer.anchor(self.clock.now_us)
            self.on_event("sleep", ms=end.sleep_ms, t=round(self.clock.now_s, 3))
        elif end.how == "reset":
            self._boot(HARD_RESET, run_main=True)
        elif end.how == "wdt":
            self._boot(WDT_RESET, run_main=True)

    # --- timers: the end of a deep sleep, the watchdog at the REPL, a crash restart -----
    def _next_timer(self) -> float | None:
        if self.state == "asleep" and self._sleep_until is not None:
            return self.node.pacer.wall_at(self._sleep_until)
        if self.state == "repl" and self.node._wdt_deadline is not None:
            return self.node.pacer.wall_at(self.node._wdt_deadline)
        if self._restart_at is not None:
            return self._restart_at
        return None

    def _timers(self) -> None:
        now = time.monotonic()
        if self.state == "asleep" and self._sleep_until is not None:
            if now >= self.node.pacer.wall_at(self._sleep_until):
                self.clock.advance_to(self._sleep_until)
                self.node.wake_reason = PIN_WAKE if self._sleep_by_pin else TIMER_WAKE
                self._boot(DEEPSLEEP_RESET, run_main=True)
        elif self.state == "repl" and self.node._wdt_deadline is not None:
            self._idle_clock()
            if self.clock.now_us >= self.node._wdt_deadline:
                self._boot(WDT_RESET, run_main=True)
        elif self._restart_at is not None and now >= self._restart_at:
            self._restart_at = None
            self._boot(HARD_RESET, run_main=True)

    def _idle_clock(self) -> None:
        """Time passes at the REPL (and in deep sleep) as on the wall clock × speed."""
        target = self.node.pacer.virtual_now()
        if self._sleep_until is not None:
            target = min(target, self._sleep_until)
        if target > self.clock.now_us:
            self.clock.advance_to(target)

    # --- the event loop ------------------------------------------------------------------
    def _pump_until(self, deadline: float | None, nested: bool = True) -> None:
        """Serve the console and the interpreter's output until `deadline` (monotonic)
        (not nested: after one round of events). `nested`: inside a wait of the node,
        whose request is the one outstanding: other requests are kept for later."""
        while True:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._poll_once(timeout, nested)
            if self._stopping or not nested or deadline is None or time.monotonic() >= deadline:
                return

    def _poll_once(self, timeout: float | None, nested: bool) -> None:
        poller = select.poll()
        # No client: the port is not polled (it would report POLLHUP at once, a busy
        # loop), so it is looked at again every 50 ms. Decided here, on the same check
        # that leaves it out: a client that closed just before must not leave the
        # board waiting on its interpreter alone, deaf to the next one.
        port_ok = self.port.connected()
        if not port_ok:
            timeout = PORT_RECHECK_S if timeout is None else min(timeout, PORT_RECHECK_S)
        if port_ok:
            poller.register(self.port.fd, select.POLLIN | (select.POLLOUT if self.port.pending() else 0))
        it = self.interp
        if it:
            poller.register(it.stdout, select.POLLIN)
            if it.stdin_pending:
                poller.register(it.stdin, select.POLLOUT)
            poller.register(it.requests, select.POLLIN)
        events = poller.poll(None if timeout is None else int(timeout * 1000) + 1)
        for fd, ev in events:
            if self.interp is not it:
                break                  # the board reset while handling an earlier event
            if fd == self.port.fd:
                if ev & select.POLLOUT:
                    self.port.flush()
                if ev & select.POLLIN:
                    data = self.port.read()
                    if data:
                        self._console_input(data)
            elif it and fd == it.stdout:
                self._console(it.read_output())
            elif it and fd == it.stdin:
                it.flush_stdin()
            elif it and fd == it.requests:
                if nested:
                    self._notices()
                else:
                    self._requests()

    # --- the console -----------------------------------------------------------------------
    def _console(self, data: bytes) -> None:
        if data:
            self.port.write(data)
            self.console_log.write(data)
            self.console_log.flush()

    def _console_input(self, data: bytes) -> None:
        state = self.state
        if state == "asleep":
            # The virtual RESET press: the board comes up at the REPL, then reads this.
            self._idle_clock()
            self._input += data
            self._boot(HARD_RESET, run_main=False)
            return
        if state in ("repl", "draining"):
            self._input += data
            if state == "repl":
                self._repl_input()
            return
        if state in ("booting", "running", "executing") and self.interp:
            interrupted = False
            while data:
                i = data.find(b"\x03")
                if i < 0:
                    self.interp.feed_stdin(data)
                    break
                # Ctrl-C is the interrupt character: it interrupts, it is not stored,
                # unless the code turned that off (micropython.kbd_intr(-1)): then it
                # is data like any other byte, as a binary protocol needs.
                self.interp.feed_stdin(data[:i])
                data = data[i + 1:]
                if state == "booting":
                    self._kbd_pending = True      # main.py has not started yet
                elif not self.interp.catches_ctrl_c():
                    self.interp.feed_stdin(b"\x03")
                elif self.interp.interrupt():
                    interrupted = True
            if interrupted and self._serving is not None:
                raise _Interrupted()

    def _repl_input(self) -> None:
        while self.state == "repl" and self._input:
            data = bytes(self._input)
            self._input.clear()
            out, action, rest = self.repl.feed(data)
            self._console(out)
            if isinstance(action, Exec):
                self._idle_clock()
                self._job += 1
                self._code_parts = _parts(action.code)
                self._sent_job = {"job": self._job, "mode": action.mode,
                                  "parts": len(self._code_parts),
                                  "utf8": not self._code_parts or isinstance(self._code_parts[0], str)}
                self.state = "executing"
                if rest:   # what came with it waits in the stdin buffer, as on a board
                    self.interp.feed_stdin(rest)
                self.interp.reply(self._wait_seq, self._sent_job)
                self._wait_seq = None
            elif isinstance(action, SoftReset):
                self._input[:0] = rest
                self._idle_clock()
                self._soft_reset()
            else:
                self._input[:0] = rest

    # --- the interpreter's requests ------------------------------------------------------
    def _requests(self) -> None:
        it = self.interp
        reqs = it.read_requests()
        if reqs is None:
            self._crashed()
            return
        reqs[:0] = self._backlog
        self._backlog = []
        for req in reqs:
            if self.interp is not it:
                return
            self._request(req[0], req[1], req[2:])

    def _notices(self) -> None:
        """Inside a wait: the only request that can come is the interpreter's notice
        that it gave up the request being served (a Ctrl-C reached it first)."""
        reqs = self.interp.read_requests()
        if reqs is None:
            raise _Interrupted()
        given_up = False
        for req in reqs:
            if req[1] == "kbd" and req[2] == self._serving:
                given_up = True
            else:
                self._backlog.append(req)   # what it asked next: served after this
        if given_up:
            raise _Interrupted()

    def _request(self, seq: int, op: str, a: list) -> None:
        it = self.interp
        if op == "kbd":
            return                  # a request given up that was already answered
        if op == "hello":
            self.repl.banner = f"MicroPython {a[0].split('; MicroPython ', 1)[-1]}; {self.machine_name}"
            it.reply(seq, None)
            return
        if op == "main":
            self.state = "running"
            it.reply(seq, None)
            if self._kbd_pending:
                self._kbd_pending = False
                it.interrupt()
            return
        if op == "repl_done":
            job, exc, exit_requested = a
            if job == self._job and self.state in ("booting", "running", "executing"):
                self.state = "draining"
                self._result = (exc, exit_requested)
            it.reply(seq, None)
            return
        if op == "repl_wait":
            self._repl_wait(seq, a[0], bytes.fromhex(a[1]))
            return
        if op == "repl_code":
            job, i = a
            ok = job == self._job and self.state == "executing" and 0 <= i < len(self._code_parts)
            it.reply(seq, self._code_parts[i] if ok else {"err": "no such part of the code"})
            return
        self._serving = seq
        try:
            reply = self.node._handle(op, a)
        except _WakeEnd as end:
            self._end(end)
            return
        except _Interrupted:
            return              # Ctrl-C: the interpreter raises KeyboardInterrupt instead
        except NodeStopped as e:
            # The MCU hangs (e.g. in an I2C transaction, no watchdog): the request is
            # never answered; a Ctrl-C or a reset of the board is the way out.
            self.on_event("hung", reason=str(e))
            return
        except Nack:
            reply = {"err": EIO if self.board["mcu"] == "rp2040" else ENODEV}
        except Timeout:
            reply = {"err": ETIMEDOUT}
        finally:
            self._serving = None
        if self.interp is it:
            it.reply(seq, reply)

    def _repl_wait(self, seq: int, job: int, unread: bytes) -> None:
        it = self.interp
        if job not in self._unread_done:
            self._unread_done.add(job)
            self._input[:0] = unread       # the code did not read them: the REPL does
        if self.state == "draining" and job == self._job:
            self._console(it.read_output())
            self._kbd_pending = False
            exc, exit_requested = self._result
            if job == 0:
                out, action = (b"", SoftReset()) if exit_requested else (self.repl.begin(), None)
            else:
                out, action = self.repl.done(exc, exit_requested)
            self._console(out)
            if isinstance(action, SoftReset):
                self._soft_reset()
                return
            self.state = "repl"
            self.node.pacer.anchor(self.clock.now_us)
            self._wait_seq = seq
            self._repl_input()
        elif self.state == "executing" and self._sent_job is not None:
            it.reply(seq, self._sent_job)   # the job's answer was lost to a late Ctrl-C
        else:
            self._wait_seq = seq

    def _crashed(self) -> None:
        """The interpreter died without a reset (a fatal error): the board restarts."""
        it = self.interp
        self._console(it.read_output())
        it.kill()
        self.interp = None
        self.state = "off"
        self._restart_at = time.monotonic() + CRASH_PAUSE_S
        self.on_event("crash", code=it.proc.returncode)
