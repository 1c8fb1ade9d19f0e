"""The node: one wake of boot, measure, encode, seal, queue, send and sleep."""
import sys

# MicroPython lets a file on the path stand in for some built-in modules (time, machine,
# os, json, struct, binascii, cryptolib), so each `import time` of each module searches
# the filesystem again before it settles for the built-in: a dozen littlefs lookups per
# import statement, hundreds a wake. Looked up once here (a file that overrides one still
# wins) and kept in sys.modules, every later import finds them there at once.
for _name in ("time", "machine", "os", "json", "struct", "binascii", "cryptolib"):
    if _name not in sys.modules:
        try:
            sys.modules[_name] = __import__(_name)
        except ImportError:
            pass
del _name
