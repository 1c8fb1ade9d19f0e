"""MicroPython's REPL on a board's console, byte for byte, as a state machine.

Follows MicroPython's shared/runtime/pyexec.c (`pyexec_friendly_repl`,
`pyexec_raw_repl`, `do_reader_stdin` for raw-paste mode, `parse_compile_execute` for
what is printed around an execution), shared/readline/readline.c (line editing, the
control characters an empty line answers, auto-indent) and py/repl.c
(`mp_repl_continue_with_input`). mpremote's transport_serial.py drives exactly this.

The machine never executes anything itself: `feed()` consumes console bytes and
returns what the board prints, plus an action when the REPL would run code
(`Exec`) or soft-reset (`SoftReset`); the caller runs the code and calls `done()`.

    repl = Repl("MicroPython v1.24 on 2024-11-29; pico with RP2040")
    out = repl.begin()                       # banner and ">>> "
    out, action, rest = repl.feed(b"print(1)\\r")
    # action == Exec(code=b"print(1)", mode="single"); later: out = repl.done(None, False)

Cursor movement, history and tab completion of readline are not served (arrow keys
are swallowed); everything a tool or a typist needs to enter code is.
"""
from __future__ import annotations

from dataclasses import dataclass

CTRL_A, CTRL_B, CTRL_C, CTRL_D, CTRL_E = 1, 2, 3, 4, 5
ESC, TAB, BS, DEL = 27, 9, 8, 127
PS1, PS2 = b">>> ", b"... "
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
PASTE_BANNER = b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== "
HELP_LINE = b'Type "help()" for more information.\r\n'
# do_reader_stdin(): a flow-control window of half MICROPY_REPL_STDIN_BUFFER_MAX (256).
PASTE_WINDOW = 128
COMPOUND_KEYWORDS = ("if", "while", "for", "try", "with", "def", "class", "async")


@dataclass
class Exec:
    """Run `code`: mode "exec" (a file's worth: raw REPL, raw paste, paste mode) or
    "single" (one interactive statement: expression values are printed)."""
    code: bytes
    mode: str


class SoftReset:
    """The REPL exits for a soft reset (Ctrl-D on an empty line, or SystemExit)."""


def cooked(text: str | bytes) -> bytes:
    """Output as a board sends it: every "\\n" as "\\r\\n" (mp_hal_stdout_tx_strn_cooked)."""
    data = text.encode() if isinstance(text, str) else text
    return data.replace(b"\n", b"\r\n")


def continue_with_input(text: str) -> bool:
    """py/repl.c mp_repl_continue_with_input(): does this input need another line?"""
    if not text:
        return False
    compound = text[0] == "@" or any(
        text.startswith(w) and (len(text) == len(w) or not (text[len(w)].isalnum() or text[len(w)] == "_"))
        for w in COMPOUND_KEYWORDS)
    depth = 0
    quote = None            # None, "'", '"', "'''", '"""'
    i = 0
    while i < len(text):
        c = text[i]
        if c in "'\"":
            if quote is None:
                if text.startswith(c * 3, i):
                    quote = c * 3
                    i += 2
                else:
                    quote = c
            elif quote == c:
                quote = None
            elif quote == c * 3 and text.startswith(quote, i):
                quote = None
                i += 2
        elif c == "\\" and i + 1 < len(text):
            i += 1
        elif quote is None and c in "([{":
            depth += 1
        elif quote is None and c in ")]}":
            depth -= 1
        i += 1
    if quote in ("'''", '"""'):
        return True
    if depth > 0 and quote is None:
        return True
    if text.endswith("\\"):
        return True
    return compound and not text.endswith("\n")


class Repl:
    def __init__(self, banner: str):
        self.banner = banner          # "MicroPython vX on DATE; BOARD with MCU"
        self.raw = False              # pyexec_mode_kind: survives a soft reset
        self._line = bytearray()      # raw REPL line, or the friendly input so far
        self._orig = 0                # readline: where the line being edited starts
        self._cont = False            # friendly: a compound statement continues
        self._paste = False           # friendly paste mode (Ctrl-E)
        self._raw_paste = False       # raw-paste mode (Ctrl-E A Ctrl-A)
        self._window_left = 0
        self._esc = 0                 # readline escape sequence: 0 none, 1 ESC, 2 ESC [ / ESC O
        self._last_nl = 0
        self._auto_indent = 0         # bit 0 enabled, bit 1 just added
        self._running: Exec | None = None

    # --- what the board prints when the REPL starts or code ends ---------------------
    def friendly_banner(self) -> bytes:
        return self.banner.encode() + b"\r\n" + HELP_LINE

    def begin(self) -> bytes:
        """The REPL starts (after boot and main.py): the banner and prompt of its mode."""
        self._line.clear()
        self._raw_paste = False
        if self.raw:
            return RAW_BANNER + b">"
        return self.friendly_banner() + self._readline_init()

    def done(self, exc: str | None, exit_requested: bool) -> tuple[bytes, SoftReset | None]:
        """The code from the last `Exec` ended; `exc` is its exception text, if any."""
        job, self._running = self._running, None
        if self.raw:
            # parse_compile_execute with EXEC_FLAG_PRINT_EOF: EOF after the normal
            # output, the exception, EOF; then the raw prompt (unless exiting).
            out = b"\x04" + (cooked(exc) if exc else b"") + b"\x04"
            if exit_requested:
                return out, SoftReset()
            return out + b">", None
        out = cooked(exc) if exc else b""
        if exit_requested:
            return out, SoftReset()
        return out + self._restart(), None

    # --- input -----------------------------------------------------------------------
    def feed(self, data: bytes):
        """Consume console bytes until the REPL runs code or resets.

        Returns (output, action or None, the bytes not consumed)."""
        out = bytearray()
        for i, c in enumerate(data):
            action = self._raw_char(c, out) if self.raw else self._friendly_char(c, out)
            if action is not None:
                if isinstance(action, Exec):
                    self._running = action
                return bytes(out), action, data[i + 1:]
        return bytes(out), None, b""

    # --- raw REPL (pyexec_raw_repl, do_reader_stdin) -----------------------------------
    def _raw_char(self, c: int, out: bytearray):
        if self._raw_paste:
            if c in (CTRL_C, CTRL_D):
                self._raw_paste = False
                out += b"\x04"              # end of data, to the host
                code, self._line = bytes(self._line), bytearray()
                if c == CTRL_C:
                    # The reader raises KeyboardInterrupt while the code is compiled.
                    out += b"\x04" + cooked("KeyboardInterrupt: \n") + b"\x04>"
                    return None
                return Exec(code, "exec")
            self._line.append(c)
            self._window_left -= 1
            if self._window_left == 0:
                out += b"\x01"              # another window is free
                self._window_left = PASTE_WINDOW
            return None
        if c == CTRL_A:
            if len(self._line) == 2 and self._line[0] == CTRL_E:
                command, self._line = self._line[1], bytearray()
                if command != ord("A"):
                    out += b"R\x00>"        # raw-paste command not supported
                    return None
                out += b"R\x01" + PASTE_WINDOW.to_bytes(2, "little") + b"\x01"
                self._raw_paste = True
                self._window_left = PASTE_WINDOW
                return None
            self._line.clear()
            out += RAW_BANNER + b">"
        elif c == CTRL_B:
            self._line.clear()
            self.raw = False
            out += b"\r\n" + self.friendly_banner() + self._readline_init()
        elif c == CTRL_C:
            self._line.clear()
        elif c == CTRL_D:
            out += b"OK"
            code, self._line = bytes(self._line), bytearray()
            if not code:
                out += b"\r\n"
                return SoftReset()
            return Exec(code, "exec")
        else:
            self._line.append(c)
        return None

    # --- friendly REPL (pyexec_friendly_repl over readline) ----------------------------
    def _friendly_char(self, c: int, out: bytearray):
        if self._paste:
            if c == CTRL_C:
                out += b"\r\n" + self._restart()
            elif c == CTRL_D:
                out += b"\r\n"
                code = bytes(self._line)
                self._line.clear()
                self._paste = False
                return Exec(code, "exec")
            else:
                self._line.append(c)
                out += b"\r\n=== " if c == ord("\r") else bytes([c])
            return None
        ret = self._readline_char(c, out)
        if ret is None:
            return None
        text = bytes(self._line)
        if not self._cont:
            if ret == CTRL_A:
                self.raw = True
                self._line.clear()
                out += b"\r\n" + RAW_BANNER + b">"
            elif ret == CTRL_B:
                out += b"\r\n" + self.friendly_banner() + self._restart()
            elif ret == CTRL_C:
                out += b"\r\n" + self._restart()
            elif ret == CTRL_D:
                out += b"\r\n"
                self._line.clear()
                return SoftReset()
            elif ret == CTRL_E:
                out += PASTE_BANNER
                self._line.clear()
                self._paste = True
            elif not text:
                out += self._restart()
            elif continue_with_input(text.decode(errors="replace")):
                self._cont = True
                self._line += b"\n"
                out += self._note_newline()
            else:
                return self._exec_line()
            return None
        if ret == CTRL_C:
            out += b"\r\n" + self._restart()
            return None
        if ret == CTRL_D:
            return self._exec_line()
        if continue_with_input(text.decode(errors="replace")):
            self._line += b"\n"
            out += self._note_newline()
            return None
        return self._exec_line()

    def _exec_line(self) -> Exec:
        code = bytes(self._line)
        self._line.clear()
        self._cont = False
        return Exec(code, "single")

    def _restart(self) -> bytes:
        self._line.clear()
        self._cont = False
        self._paste = False
        return self._readline_init()

    # --- readline ------------------------------------------------------------------------
    def _readline_init(self) -> bytes:
        self._orig = len(self._line)
        self._esc = 0
        if not self._line:
            self._auto_indent = 1
        return PS1 + self._indent()

    def _note_newline(self) -> bytes:
        self._orig = len(self._line)
        return PS2 + self._indent()

    def _indent(self) -> bytes:
        """readline_auto_indent(): indent a continuation line like the one before it,
        one level more after a ':'; not after two blank lines."""
        line = self._line
        if not self._auto_indent & 1 or len(line) < 2 or line[-1] != ord("\n"):
            return b""
        start = line.rfind(b"\n", 0, len(line) - 1) + 1
        first = start
        while first < len(line) and line[first] == ord(" "):
            first += 1
        if start > 0 and first + 1 == len(line):
            # the previous line is all spaces: no indent if the one before is too
            before = line.rfind(b"\n", 0, start - 1) + 1
            if not line[before:start - 1].strip(b" "):
                return b""
        n = (first - start) // 4 + (1 if line[-2] == ord(":") else 0)
        if n:
            self._line += b"    " * n
            self._auto_indent |= 2
        return b"    " * n

    def _readline_char(self, c: int, out: bytearray) -> int | None:
        """readline_process_char(): None while editing, else 0 (a newline) or the
        control character an empty line returns."""
        just_indented = self._auto_indent & 2
        self._auto_indent &= ~2
        if self._esc == 1:
            self._esc = 2 if c in (ord("["), ord("O")) else 0
            return None
        if self._esc == 2:
            if not ord("0") <= c <= ord("9"):
                self._esc = 0           # final byte of an arrow/home/end key
            return None
        empty = len(self._line) == self._orig
        if CTRL_A <= c <= CTRL_E and empty:
            return c
        if c == CTRL_C:
            return c
        if c in (ord("\r"), ord("\n")):
            if self._last_nl in (0, c):
                self._last_nl = c
                out += b"\r\n"
                return 0
            self._last_nl = 0           # the second byte of a "\r\n" pair
            return None
        self._last_nl = 0
        if c == ESC:
            self._esc = 1
        elif c in (BS, DEL):
            if not empty:
                typed = self._line[self._orig:]
                n = 4 if len(typed) >= 4 and not typed.strip(b" ") else 1
                del self._line[-n:]
                out += b"\b" * n + b"\x1b[K"
        elif just_indented and c in (TAB, ord(" ")):
            # tab/space right after an auto-indent: keep the indent (tab) or take
            # three of its spaces back (space), as readline.c does
            self._auto_indent = 0
            if c == ord(" "):
                del self._line[-3:]
                out += b"\b\b\b"
        elif c == TAB:
            if self._line and self._line[-1:] in (b" ", b"\t", b"\n"):
                self._line += b"    "
                out += b"    "
        elif c >= 32:
            self._line.append(c)
            out.append(c)
        return None
