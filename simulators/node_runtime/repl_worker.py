# MicroPython, inside a virtual board's interpreter: the executing half of the REPL.
#
# MicroPython's unix port has no raw REPL, so the host (simulators/board/repl.py) runs
# the REPL's state machine on the serial line, as shared/runtime/pyexec.c does on a
# board, and hands each piece of code here. This side compiles and runs it in the same
# globals main.py ran in (the board's __main__), so what it prints goes out on the
# console, and reports how it ended: the exception text, or SystemExit (a soft reset).
#
# Bytes that came in on the console while code ran went to this process's stdin, as a
# board's stdin ring buffer holds them; whatever the code did not read goes back to the
# host's REPL when the code ends, in order, so nothing typed is lost.
import builtins
import io
import micropython
import select
import sys
from binascii import hexlify, unhexlify

from board_link import call

_poll = select.poll()
_poll.register(sys.stdin, select.POLLIN)

# A board cooks text on its console: print() sends every "\n" as "\r\n"
# (mp_hal_stdout_tx_strn_cooked), while sys.stdout.buffer writes bytes as they are
# (shared/runtime/sys_stdio_mphal.c). The unix port cooks nothing, and its sys.stdout
# cannot be replaced, so print and the REPL's echo of a value are: binary output (a
# provisioning frame, mpremote's mount protocol) then crosses the console unchanged.
_print = print


def write_cooked(text):
    sys.stdout.write(text.replace("\n", "\r\n"))


def _cooked_print(*args, sep=" ", end="\n", file=None):
    if file is not None and file is not sys.stdout and file is not sys.stderr:
        return _print(*args, sep=sep, end=end, file=file)
    buf = io.StringIO()
    _print(*args, sep=sep, end=end, file=buf)
    write_cooked(buf.getvalue())


def _repl_print(value):
    if value is not None:
        write_cooked(repr(value) + "\n")


builtins.print = _cooked_print
builtins.__repl_print__ = _repl_print


_HERE = '  File "' + __file__.rsplit("/", 1)[0] + "/"


def exception_text(e):
    """The traceback as the board prints it: the simulator's own frames (this worker,
    machine.py, time.py: C code on a board) are left out."""
    buf = io.StringIO()
    sys.print_exception(e, buf)
    return "".join(line + "\n" for line in buf.getvalue().split("\n")[:-1]
                   if not line.startswith(_HERE))


def _unread_stdin(into):
    while _poll.poll(0):
        b = sys.stdin.buffer.read(1)
        if not b:
            break
        into.extend(b)


def _source(job):
    # The code comes in parts of a few KB, so no answer line is ever large: a script
    # too big for the heap ends in MemoryError here, reported as the board reports it.
    parts = [call("repl_code", job["job"], i) for i in range(job["parts"])]
    if job["utf8"]:
        return "".join(parts)
    return unhexlify("".join(parts)).decode()


def _run(job, g):
    try:
        # As parse_compile_execute does: Ctrl-C interrupts the code, whatever an
        # earlier piece of code set with micropython.kbd_intr().
        micropython.kbd_intr(3)
        code = compile(_source(job), "<stdin>", job["mode"])
        exec(code, g)
    except SystemExit:
        return None, True
    except BaseException as e:  # noqa: BLE001 - the REPL reports whatever ended the code
        return exception_text(e), False
    return None, False


def serve(g, job_id, exit_requested):
    """Report that job `job_id` ended, then run what the host sends, forever."""
    result = [job_id, None, exit_requested]
    unread = bytearray()
    job = None
    while True:
        try:
            if job is not None:
                exc, exit_requested = _run(job, g)
                result = [job["job"], exc, exit_requested]
                job = None
            # A late Ctrl-C may hit any step below; the host ignores a repeated report
            # and takes a job's unread bytes once, so the loop just says it again.
            call("repl_done", result[0], result[1], result[2])
            _unread_stdin(unread)
            job = call("repl_wait", result[0], hexlify(unread).decode())
            unread = bytearray()
        except BaseException as e:  # noqa: BLE001 - KeyboardInterrupt, MemoryError
            if job is not None:
                # The job had arrived (the host has the unread bytes): the Ctrl-C
                # ends it, as one that comes as code starts or ends does on a board.
                result = [job["job"], exception_text(e), False]
                job = None
                unread = bytearray()
