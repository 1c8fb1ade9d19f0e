"""One simulated node: a virtual board built from its board file, running the real
firmware on the real MicroPython interpreter.

Each wake is a fresh `micropython` process, as a board coming out of deep sleep is a
fresh interpreter: it boots from the flash image, runs main.py, and ends in
`machine.deepsleep()`, a watchdog reset, or a power cut. The flash image, the modem and
the RTC memory (on boards that keep it) outlive the process, as they do on a board.

The node's `machine` and `time` modules (simulators/node_runtime) send each hardware
access here as a request line; this side answers from the part models and moves the
one virtual clock only while the node waits.
"""
from __future__ import annotations

import json
import os
import random
import re
import select
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from simulators.bus.i2c import Hang, I2CBus, Nack, Timeout
from simulators.bus.uart import UartLink
from simulators.clock import Clock
from simulators.flash import Flash, PowerCut
from simulators.interpreter import dies_with_parent, micropython_binary
from simulators import romfs
from simulators.power.battery import Battery, BatteryADC

RUNTIME = Path(__file__).resolve().parent / "node_runtime"

# machine.reset_cause() and wake_reason() values (MicroPython, ESP32 numbering)
PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET = 1, 2, 3, 4
PIN_WAKE, TIMER_WAKE = 2, 4
EIO, ENODEV, ETIMEDOUT = 5, 19, 110
RTC_EPOCH = 946684800          # MicroPython boards count from 2000-01-01
WALL_GUARD_S = 30.0            # a node silent this long on the wall clock is hung
READLINE_HANG_US = 3600 * 10**6   # a readline() this long, no watchdog: the node is dead
# RP2040 watchdog registers (RP2040 datasheet, watchdog): CTRL (bit 31 TRIGGER resets at
# once, bit 30 ENABLE: "when not enabled the watchdog timer is paused", bits 0..23 TIME)
# and SCRATCH0..3, kept through a watchdog reset and lost at power-on (pico-sdk keeps
# SCRATCH4..7 for itself).
RP2040_WDT_CTRL = 0x40058000
RP2040_SCRATCH = tuple(0x4005800C + 4 * i for i in range(4))
READING_LINE = re.compile(r"reading seq=(\d+)")
ARRIVALS_MAX = 64              # deliveries to the node's UARTs told ahead in one reply


class NodeStopped(RuntimeError):
    """The firmware left main.py without sleeping and no watchdog will reset it."""


class WireMismatch(AssertionError):
    """The batched wire answered a request on the node otherwise than the simulator
    does (a bug of node_runtime/_simbatch.py; checked with SIM_BATCH=2)."""


_UNTOLD = object()


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_DECODE = json.JSONDecoder().decode


def frame(reply) -> bytes:
    """A reply on the wire: eight ASCII digits of length, then the JSON (_simlink.py)."""
    data = _ENCODE(reply).encode()
    return b"%08d" % len(data) + data


class _WakeEnd(Exception):
    def __init__(self, how: str, sleep_ms: int | None = None):
        self.how, self.sleep_ms = how, sleep_ms
        self.console: str | None = None     # the wake's console, when not in wake.log


@dataclass
class WakeResult:
    index: int
    start_us: int
    end_us: int
    ended: str                    # deepsleep | power_cut | wdt | reset
    sleep_ms: int | None
    console: str
    readings: list[int] = field(default_factory=list)   # seq of the readings taken
    measurements: dict = field(default_factory=dict)    # part -> truth records this wake


class SimNode:
    def __init__(self, name: str, board: dict, workdir: Path, clock: Clock, network,
                 dev_eui: bytes, seed: int = 0, heapsize: str = "192K"):
        self.name = name
        self.board = board
        self.workdir = Path(workdir).resolve()   # the node process runs elsewhere
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.network = network
        self.dev_eui = dev_eui
        self.seed = seed
        self.heapsize = heapsize
        self.flash = Flash(self.workdir / "flash.img", blocks=board.get("flash_blocks", 256))
        (self.workdir / "console.log").write_text("")
        self.unique_id = bytes.fromhex(f"{seed & 0xFFFFFFFF:08x}") + dev_eui[-4:]
        self.i2c: dict[int, I2CBus] = {int(k): I2CBus(f"i2c{k}") for k in board.get("i2c", {})}
        self.uarts: dict[int, UartLink] = {}
        self.pins: dict = {}
        self.pin_parts: dict = {}      # pin -> model driving it (attach_pin_part)
        self.adc: dict = {}
        self.parts: dict = {}
        self.rtc_memory = b""
        self.scratch: dict[int, int] = {}     # RP2040 watchdog scratch registers
        self.reset_cause = PWRON_RESET
        self.wake_reason = 0           # machine.wake_reason() of the next wake
        self.wake_pins: dict = {}      # pin -> trigger, armed with Pin.irq(wake=DEEPSLEEP)
        self.wakes = 0
        # Instruments for measuring a node (bench/): a command the interpreter runs
        # under (e.g. valgrind), and observer(op, args, t0_us, t1_us) after each request.
        self.launcher: list[str] = []
        self.observer = None
        # Fleet runs (simulators/fleet): `runner` runs the wake instead of a new
        # `micropython` process (runner.run_wake(node, env, console_path) -> _WakeEnd,
        # serving the node with node._serve; the console in `console_path`, or as the
        # _WakeEnd's `console`); `batched` speaks the batched wire
        # (node_runtime/_simbatch.py); `rom` is the board's ROMFS at /rom: an image
        # mapped outside the heap (simulators/romfs.py), or a folder of the compiled
        # firmware mounted read-only.
        self.runner = None
        self.hw_rng = random.Random(f"hwrng:{seed}:{dev_eui.hex()}")
        self.batched = False
        self.rom: Path | None = None
        self._wdt_timeout_us: int | None = None
        self._wdt_deadline: int | None = None
        self._wdt_paused_left: int | None = None
        self._cut_at_us: int | None = None
        self._build_modem()
        self._build_battery()

    # --- building the virtual board --------------------------------------------
    def _build_modem(self) -> None:
        spec = self.board["modem"]
        from simulators import modems
        self.modem = modems.build(spec["type"], self.clock, self.network, self.dev_eui)
        link = UartLink(self.clock, spec.get("baudrate", 115200))
        link.attach(self.modem)
        self.uarts[int(spec["uart"])] = link

    def _build_battery(self) -> None:
        spec = self.board.get("battery")
        if spec:
            self.battery = Battery(self.seed)
            adc = BatteryADC(self.clock, self.battery, spec["divider"], spec.get("vref", 3.3))
            self.adc[spec["adc_pin"]] = adc
            self.parts["battery"] = adc

    def attach_uart_device(self, uart_id: int, device, baudrate: int, bits: int = 8,
                           parity=None, stop: int = 1) -> UartLink:
        """Wire a device model (or a multi-drop bus model) to one of the board's UARTs."""
        if str(uart_id) not in self.board.get("uart", {}):
            raise ValueError(f"board {self.board['name']} has no UART {uart_id}")
        link = UartLink(self.clock, baudrate, bits, parity, stop)
        link.attach(device)
        self.uarts[int(uart_id)] = link
        return link

    def attach_pin_part(self, part: str, pin, model) -> None:
        """A part that drives an input pin: `model.level()` is the pin's level now."""
        self.pin_parts[pin] = model
        self.parts[part] = model

    def attach_i2c_part(self, part: str, model) -> None:
        spec = self.board["parts"][part]
        self.i2c[int(spec["id"])].attach(spec["address"], model)
        self.parts[part] = model

    # --- flash ------------------------------------------------------------------
    def install(self, files: dict[str, bytes], keep: bool = False) -> None:
        """Write files into the flash image as `mpremote fs cp` would (formats first
        unless `keep`)."""
        with tempfile.TemporaryDirectory() as staging:
            for rel, data in files.items():
                p = Path(staging, rel)
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_bytes(data)
            cmd = [micropython_binary(), str(RUNTIME / "sim_image.py"), str(self.flash.path), staging]
            if keep:
                cmd.append("--keep")
            env = dict(os.environ, MICROPYPATH=str(RUNTIME))
            r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
            if r.returncode != 0:
                raise RuntimeError(f"building the flash image failed: {r.stdout}{r.stderr}")

    # --- power ------------------------------------------------------------------
    def power_cut(self) -> None:
        """The supply fails: RAM and RTC memory go, the modem loses its session."""
        self.rtc_memory = b""
        self.scratch = {}
        self.reset_cause = PWRON_RESET
        self.modem.power_cut()

    # --- one wake ---------------------------------------------------------------
    def wake_by_pin(self) -> None:
        """The next wake comes from an armed wake pin, not the timer."""
        self.wake_reason = PIN_WAKE

    def wake(self, cut_at_us: int | None = None, cut_at_flash_op: int | None = None) -> WakeResult:
        """Run the firmware from reset until it sleeps or the board resets.

        `cut_at_us` cuts the power at that virtual instant; `cut_at_flash_op` inside the
        n-th flash program/erase of this wake (a torn write).
        """
        self.wakes += 1
        index = self.wakes
        start = self.clock.now_us
        self._cut_at_us = cut_at_us
        self.flash.cut_at_op = None if cut_at_flash_op is None else self.flash.ops + cut_at_flash_op
        # Every reset stops the watchdog; the firmware starts it again if it wants one.
        self._wdt_timeout_us = None
        self._wdt_deadline = None
        self._wdt_paused_left = None
        for link in self.uarts.values():
            link.node_reset()          # the UARTs' receive buffers were in RAM
        self.wake_pins = {}            # re-armed by the firmware on each wake
        marks = {p: len(getattr(m, "measurements", ())) for p, m in self.parts.items()}
        console_path = self.workdir / "wake.log"
        if self.runner is not None:
            env = {"SIM_FLASH": str(self.flash.path)}
            if self.rom is not None:
                env["SIM_ROM"] = str(self.rom)
            try:
                end = self.runner.run_wake(self, env, console_path)
            finally:
                self.flash.cut_at_op = None
            return self._finish_wake(index, start, end, marks)
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        env = dict(os.environ, MICROPYPATH=str(RUNTIME), SIM_RX_FD=str(rep_r),
                   SIM_TX_FD=str(req_w), SIM_FLASH=str(self.flash.path))
        if self.batched:
            env["SIM_BATCH"] = "1"
        if self.rom is not None:
            env["SIM_ROM"] = str(self.rom)
        with open(console_path, "wb") as console:
            proc = subprocess.Popen(
                [*self.launcher, romfs.launcher() if romfs.is_image(self.rom) else micropython_binary(),
                 "-X", f"heapsize={self.heapsize}",
                 str(RUNTIME / "sim_boot.py")],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                pass_fds=(rep_r, req_w), env=env, cwd=self.workdir,
                preexec_fn=dies_with_parent())
        os.close(rep_r)
        os.close(req_w)
        requests = os.fdopen(req_r, "rb")
        replies = os.fdopen(rep_w, "wb", buffering=0)
        try:
            end = self._serve(proc, requests, replies)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait()
            requests.close()
            try:
                replies.close()
            except BrokenPipeError:
                pass
            self.flash.cut_at_op = None
        return self._finish_wake(index, start, end, marks)

    def _finish_wake(self, index: int, start: int, end: _WakeEnd, marks: dict) -> WakeResult:
        console_text = end.console
        if console_text is None:
            console_text = (self.workdir / "wake.log").read_text(errors="replace")
        with open(self.workdir / "console.log", "a") as log:   # the whole serial console
            log.write(console_text)
        if end.how == "deepsleep":
            self.reset_cause = DEEPSLEEP_RESET
            self.wake_reason = TIMER_WAKE
        elif end.how == "wdt":
            self.reset_cause = WDT_RESET
        elif end.how == "reset":
            self.reset_cause = HARD_RESET
        elif end.how == "power_cut":
            self.power_cut()
        result = WakeResult(index, start, self.clock.now_us, end.how, end.sleep_ms, console_text,
                            [int(m) for m in READING_LINE.findall(console_text)])
        for part, model in self.parts.items():
            result.measurements[part] = list(getattr(model, "measurements", ())[marks[part]:])
        return result

    def _serve(self, proc, requests, replies) -> _WakeEnd:
        while True:
            ready, _, _ = select.select([requests], [], [], WALL_GUARD_S)
            if not ready:
                return self._hung()
            line = requests.readline()
            if not line:
                proc.wait()
                raise NodeStopped(f"{self.name}: the interpreter exited (code {proc.returncode}) "
                                  f"without sleeping; console:\n"
                                  f"{(self.workdir / 'wake.log').read_text(errors='replace')[-2000:]}")
            req = _DECODE(line.decode())
            # The batched wire sends kept requests in front of the one it needs answered.
            for req in (req if req and isinstance(req[0], list) else (req,)):
                told = req[1] if req[0] == "=" else _UNTOLD
                if told is not _UNTOLD:
                    req = req[2:]      # answered on the node: checked here (SIM_BATCH=2)
                t0 = self.clock.now_us
                try:
                    reply = self._handle(req[0], req[1:])
                except _WakeEnd as end:
                    return end
                except PowerCut:
                    return _WakeEnd("power_cut")
                except Nack:
                    reply = {"err": EIO if self.board["mcu"] == "rp2040" else ENODEV}
                except Timeout:
                    reply = {"err": ETIMEDOUT}
                if self.observer is not None:
                    self.observer(req[0], req[1:], t0, self.clock.now_us)
                if told is not _UNTOLD and told != reply:
                    raise WireMismatch(f"{self.name}: the batched wire answered {req} with "
                                       f"{told!r} on the node; the simulator answers {reply!r}")
            if self.batched:
                reply = self._batched(reply)
            replies.write(frame(reply))

    def _pointer_acks(self) -> list:
        """[bus, address] of the I2C parts that acknowledge a one-byte (register
        pointer) write in this wake whatever their state: their model says in which
        faults they would not (POINTER_WRITE_FAULTS), and a part's fault stays for the
        wake (Simulation._apply_faults)."""
        acks = []
        for bus_id, bus in self.i2c.items():
            for address, dev in bus.devices.items():
                fails = getattr(dev, "POINTER_WRITE_FAULTS", None)
                if (fails is not None and getattr(dev, "present", True)
                        and getattr(dev, "fault", None) not in (*fails, "absent", "hang")):
                    acks.append([bus_id, address])
        return acks

    def _batched(self, value) -> list:
        """A reply on the batched wire (node_runtime/_simbatch.py): [value, now, horizon]
        and, when there are any, [UART, bytes] waiting in the node's receive buffers and
        [instant, UART, bytes] of the deliveries to them due before the horizon.

        The horizon is the first instant at which something can change on this side
        that the node cannot foresee: the clock's next event other than a delivery of
        bytes to the node's UART (which only appends them to its buffer), a planned power
        cut, the watchdog."""
        now = self.clock.now_us
        stop = self._cut_at_us
        if self._wdt_deadline is not None and (stop is None or self._wdt_deadline < stop):
            stop = self._wdt_deadline
        buffers = {id(link._rx): u for u, link in self.uarts.items()}
        horizon, arrivals = stop, []
        for ev in self.clock.upcoming(ARRIVALS_MAX + 1):
            if stop is not None and ev.at_us >= stop:
                break
            u = buffers.get(id(getattr(ev.fn, "__self__", None)))
            if (u is None or getattr(ev.fn, "__name__", "") != "extend" or ev.at_us <= now
                    or len(arrivals) == ARRIVALS_MAX):
                horizon = ev.at_us
                break
            arrivals.append([ev.at_us, u, bytes(ev.args[0]).hex()])
        reply = [value, now, horizon]
        waiting = [[u, bytes(link._rx).hex()] for u, link in self.uarts.items() if link._rx]
        if waiting or arrivals:
            reply += [waiting, arrivals]
        return reply

    def _hung(self) -> _WakeEnd:
        if self._wdt_deadline is not None:
            self.clock.advance_to(self._wdt_deadline)
            return _WakeEnd("wdt")
        raise NodeStopped(f"{self.name}: the firmware hung with no watchdog running")

    # --- waiting on the virtual clock ----------------------------------------------
    def _wait(self, timeout_us: int, ready=None) -> bool:
        target = self.clock.now_us + max(0, timeout_us)
        limit = target
        for stop in (self._cut_at_us, self._wdt_deadline):
            if stop is not None:
                limit = min(limit, stop)
        if ready is None:
            self.clock.advance_to(limit)
            ok = False
        else:
            ok = self.clock.advance_until(ready, limit)
        if ok:
            return True
        if self._cut_at_us is not None and self.clock.now_us >= self._cut_at_us:
            raise PowerCut(f"power cut at {self.clock.now_us} µs")
        if self._wdt_deadline is not None and self.clock.now_us >= self._wdt_deadline:
            raise _WakeEnd("wdt")
        return False

    # --- the requests of machine.py and time.py -------------------------------------
    def _handle(self, op: str, a: list):
        if op == "now":
            return self.clock.now_us
        if op == "sleep":
            self._wait(int(a[0]))
            return None
        if op == "rtc":
            return int((self.clock.unix_time() - RTC_EPOCH) * 1e6)
        if op == "board":
            info = {"unique_id": self.unique_id.hex(), "freq": self.board.get("freq", 125_000_000),
                    "rtc_memory": bool(self.board.get("rtc_memory")), "mcu": self.board["mcu"]}
            if self.batched:
                # What the batched wire answers on the node for the whole wake.
                if float(self.clock.epoch_s).is_integer():
                    info["epoch_s"] = int(self.clock.epoch_s)
                info["reset_cause"] = self.reset_cause
                info["wake_reason"] = self._handle("wake_reason", [])
                info["uarts"] = sorted(self.uarts)
                if self.board["mcu"] == "rp2040":
                    info["scratch"] = [self.scratch.get(a, 0) for a in RP2040_SCRATCH]
                if self.board.get("rtc_memory"):
                    info["rtc_memory_now"] = self.rtc_memory.hex()
                info["acks"] = self._pointer_acks()
                info["flash_cut"] = self.flash.cut_at_op is not None
            return info
        if op == "reset_cause":
            return self.reset_cause
        if op == "urandom":
            # The board's hardware RNG (os.urandom), seeded per node: reproducible runs.
            if not 0 <= int(a[0]) <= 4096:
                return {"err": 22}
            return self.hw_rng.randbytes(int(a[0])).hex()
        if op == "wake_reason":
            return self.wake_reason if self.reset_cause == DEEPSLEEP_RESET else 0
        if op.startswith("i2c_"):
            return self._i2c(op, a)
        if op.startswith("uart_"):
            return self._uart(op, a)
        if op == "adc":
            adc = self.adc.get(a[0])
            return adc.read_u16() if adc else 0
        if op.startswith("pin_"):
            if op == "pin_get":
                if a[0] in self.pin_parts:
                    return self.pin_parts[a[0]].level()
                return self.pins.get(a[0], 0)
            if op == "pin_set":
                self.pins[a[0]] = a[1]
            if op == "pin_irq" and len(a) > 2 and a[2]:
                self.wake_pins[a[0]] = a[1]
            return None
        if op == "rtc_memory_get":
            return self.rtc_memory.hex()
        if op == "rtc_memory_set":
            data = bytes.fromhex(a[0])
            if len(data) > 2048:  # ESP32 RTC user memory
                return {"err": 22}
            self.rtc_memory = data
            return None
        if op == "wdt_start":
            # machine.py checked the port's limits; 0 on RP2040 is watchdog_enable(0),
            # which triggers the reset at once (pico-sdk hardware_watchdog).
            self._wdt_timeout_us = int(a[0]) * 1000
            self._wdt_deadline = self.clock.now_us + self._wdt_timeout_us
            if self._wdt_timeout_us == 0:
                raise _WakeEnd("wdt")
            return None
        if op == "lightsleep":
            self._lightsleep(int(a[0]))
            return None
        if op in ("mem32_get", "mem32_set"):
            addr = int(a[0])
            if self.board["mcu"] != "rp2040" or addr not in RP2040_SCRATCH + (RP2040_WDT_CTRL,):
                return {"err": f"mem32[0x{addr:08x}] is not modelled on {self.board['mcu']}"}
            if addr == RP2040_WDT_CTRL:
                return self._wdt_ctrl(None if op == "mem32_get" else int(a[1]))
            if op == "mem32_get":
                return self.scratch.get(addr, 0)
            self.scratch[addr] = int(a[1]) & 0xFFFFFFFF
            return None
        if op == "wdt_feed":
            if self._wdt_timeout_us is not None:
                self._wdt_deadline = self.clock.now_us + self._wdt_timeout_us
            return None
        if op == "flash_prog":
            self._cut_check()
            self.flash.program(int(a[0]), int(a[1]), bytes.fromhex(a[2]))
            return None
        if op == "flash_erase":
            self._cut_check()
            self.flash.erase(int(a[0]))
            return None
        if op == "deepsleep":
            ms = int(a[0])
            if (self.board["mcu"] == "rp2040" and self._wdt_deadline is not None
                    and self._wdt_deadline < self.clock.now_us + ms * 1000):
                # rp2's deepsleep is lightsleep, then a reset (ports/rp2/modmachine.c), and
                # the watchdog counts through a light sleep: it ends the sleep early.
                self._wait(ms * 1000)
            raise _WakeEnd("deepsleep", ms)
        if op == "reset":
            raise _WakeEnd("reset")
        if op == "repl":
            # main.py ended without sleeping: the board idles at the REPL until its
            # watchdog (if one runs) resets it.
            if self._wdt_deadline is not None:
                self._wait(self._wdt_deadline - self.clock.now_us + 1)
            raise NodeStopped(f"{self.name}: main.py returned without deep sleep and no watchdog "
                              f"runs; console:\n"
                              f"{(self.workdir / 'wake.log').read_text(errors='replace')[-2000:]}")
        return {"err": f"unknown request {op!r}"}

    def _wdt_ctrl(self, value: int | None):
        """The RP2040 watchdog's CTRL register through machine.mem32 (pico-sdk's
        watchdog_disable clears ENABLE; the count pauses until it is set again)."""
        if value is None:
            if self._wdt_deadline is not None:
                return 1 << 30 | min(0xFFFFFF, self._wdt_deadline - self.clock.now_us)
            return min(0xFFFFFF, self._wdt_paused_left or 0)
        if value & 1 << 31:
            raise _WakeEnd("wdt")
        if not value & 1 << 30 and self._wdt_deadline is not None:
            self._wdt_paused_left = self._wdt_deadline - self.clock.now_us
            self._wdt_deadline = None
        elif value & 1 << 30 and self._wdt_deadline is None and self._wdt_paused_left:
            self._wdt_deadline = self.clock.now_us + self._wdt_paused_left
            self._wdt_paused_left = None
        return None

    def _lightsleep(self, us: int) -> None:
        """machine.lightsleep: the watchdog counts through it on RP2040 (micropython#17228:
        a WDT(3000) resets a lightsleep(5000)); on ESP32 its timer group is clock-gated
        in light sleep (ESP-IDF Sleep Modes: digital peripherals are clock-gated and keep
        their state), so it pauses and goes on counting from where it was."""
        if self.board["mcu"] == "rp2040" or self._wdt_deadline is None:
            self._wait(us)
            return
        left = self._wdt_deadline - self.clock.now_us
        self._wdt_deadline = None
        try:
            self._wait(us)
        finally:
            self._wdt_deadline = self.clock.now_us + left

    def _bus_hang(self, hang: Hang):
        """An I2C transaction that does not end (fault mode `hang`), as the port has it."""
        if self.board["mcu"] == "rp2040":
            # The call does not return: only the watchdog (or a power cut) ends it.
            if self._wdt_deadline is None and self._cut_at_us is None:
                raise NodeStopped(f"{self.name}: hung in an I2C transaction ({hang}) and no "
                                  f"watchdog runs: the node is dead until its power is cycled")
            self._wait(1 << 62)     # stops at the watchdog's deadline or the cut
        # ESP32: ESP-IDF's command timeout, 100 ms per byte plus one (ports/esp32/machine_i2c.c).
        self._wait(100_000 * (1 + hang.nbytes))
        raise Timeout(str(hang))

    def _cut_check(self) -> None:
        if self._cut_at_us is not None and self.clock.now_us >= self._cut_at_us:
            raise PowerCut("power cut before a flash operation")

    def _i2c(self, op: str, a: list):
        if op == "i2c_init":
            if int(a[0]) not in self.i2c:
                return {"err": 19}
            return None
        bus = self.i2c.get(int(a[0]))
        if bus is None:
            return {"err": 19}
        try:
            if op == "i2c_scan":
                return bus.scan()
            if op == "i2c_write":
                return bus.write(int(a[1]), bytes.fromhex(a[2]), bool(a[3]))
            if op == "i2c_read":
                return bus.read(int(a[1]), int(a[2]), bool(a[3])).hex()
        except Hang as hang:
            self._bus_hang(hang)
        return {"err": f"unknown request {op!r}"}

    def _uart(self, op: str, a: list):
        link = self.uarts.get(int(a[0]))
        if link is None:
            return {"err": 19}
        if op == "uart_init":
            link.set_node_format(int(a[1]), int(a[2]), a[3], int(a[4]))
            return None
        if op == "uart_write":
            data = bytes.fromhex(a[1])
            link.node_write(data)
            return len(data)
        if op == "uart_any":
            return link.node_available()
        if op == "uart_read":
            n, timeout_ms, _timeout_char_ms, line = int(a[1]), int(a[2]), int(a[3]), bool(a[4])
            if line:
                return self._readline(link, timeout_ms * 1000)
            if n > 0:
                ready = lambda: link.node_available() >= n  # noqa: E731
            else:
                ready = lambda: link.node_available() > 0  # noqa: E731
            self._wait(timeout_ms * 1000, ready)
            if not link.node_available():
                return None
            return link.node_read(n if n > 0 else link.node_available()).hex()
        if op == "uart_break":
            link.node_break()
            return None
        return {"err": f"unknown request {op!r}"}

    def _readline(self, link: UartLink, timeout_us: int):
        """UART.readline() as MicroPython does it (py/stream.c stream_unbuffered_readline):
        one byte at a time until a newline, each read waiting up to the UART's timeout, no
        limit on the whole. Bytes that keep coming without a newline keep it reading."""
        out = bytearray()
        start = self.clock.now_us
        while True:
            if not self._wait(timeout_us, link.node_available) and not link.node_available():
                break
            chunk = link.node_read_line()
            out += chunk
            if chunk.endswith(b"\n"):
                break
            if (self._wdt_deadline is None and self._cut_at_us is None
                    and self.clock.now_us - start > READLINE_HANG_US):
                raise NodeStopped(f"{self.name}: UART.readline() has been reading for an hour "
                                  f"(a line that never ends) and no watchdog runs")
        return out.hex() if out else None
