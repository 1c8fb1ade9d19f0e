"""The node: one wake of boot, measure, encode, seal, queue, send and sleep."""
import sys

# MicroPython lets a file on the path stand in for some built-in modules, so each
# `import json` of each module searches the filesystem again before it settles for the
# built-in: a dozen littlefs lookups per import statement, hundreds a wake. These are
# taken once by their u-names, which search nothing, and kept in sys.modules, where every
# later import finds them. (time, machine and os stay as the path has them: the
# simulator and the tests stand in for those.)
for _name in ("json", "struct", "binascii", "cryptolib"):
    if _name not in sys.modules:
        try:
            sys.modules[_name] = __import__("u" + _name)
        except ImportError:
            pass
del _name
