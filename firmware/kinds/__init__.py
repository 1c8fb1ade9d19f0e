"""Node kinds: which parts a kind reads, which channels it reports, how they are scaled.

A kind module (`kinds/<kind>.py`) has `SCHEMA` (the body's schema id,
docs/payload.md), `measure(board, settings) -> (values, faults)`,
`encode(seq, values, faults) -> bytes`, and `worst_case() -> (values, faults)`, the
reading with the longest body (tests prove it fits EU868 DR0).
"""


import gc
import sys


def load(name):
    try:
        if "kinds." + name not in sys.modules:
            gc.collect()
        return __import__("kinds." + name, None, None, ["SCHEMA"])
    except ImportError:
        raise ValueError("unknown node kind %r" % name)
