"""Drivers for the real parts: one module per chip, the bus passed in."""


class SensorError(Exception):
    """A part failed: `part` names it, `reason` says how (no answer, CRC, range...)."""

    def __init__(self, part, reason):
        super().__init__(part, reason)
        self.part = part
        self.reason = reason

    def __str__(self):
        return "%s: %s" % (self.part, self.reason)
