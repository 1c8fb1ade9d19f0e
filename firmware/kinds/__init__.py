"""Node kinds: which parts a kind reads, which channels it reports, how they are scaled.

A kind module has `SCHEMA` (the body's schema id, docs/payload.md) and
`measure(board, settings) -> (values, faults)` and `encode(seq, values, faults) -> bytes`.
"""


def load(name):
    if name == "climate":
        from kinds import climate
        return climate
    raise ValueError("unknown node kind %r" % name)
