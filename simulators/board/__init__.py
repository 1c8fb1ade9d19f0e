"""A virtual board: a simulated node whose USB serial is a pseudo-terminal.

`nodectl board` starts one (docs/virtual-board.md). Over the pty it behaves like
MicroPython on a board: it runs main.py after a reset, Ctrl-C interrupts it, and it
serves the friendly REPL, the raw REPL and raw-paste mode, so the real `mpremote` and
`nodectl flash` work against it as against a board on USB.

- `repl.py`: the REPL's protocol state machine (MicroPython's shared/runtime/pyexec.c).
- `pty_port.py`: the pseudo-terminal, as a USB-UART bridge that stays up.
- `pacing.py`: virtual time against the wall clock (`--speed`).
- `board.py`: the board itself: the node's interpreter, resets, deep sleep, the REPL.
- `image.py`: read the files in a flash image from the host.
"""
