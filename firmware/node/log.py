"""Log lines on the serial console: `[seconds since boot] message`.

    from node.log import log
    log("seal counter=%d len=%d", 17, 23)

Never pass a key or any other secret: the console is read by technicians and tools.
"""
import time

_start = time.ticks_ms()


def log(msg, *args):
    ms = time.ticks_diff(time.ticks_ms(), _start)
    print("[%4d.%03d] %s" % (ms // 1000, ms % 1000, (msg % args) if args else msg))
