"""Small helpers for the node's littlefs flash.

    ensure_dir("state")   # before writing state/...
    forget("q")           # after removing the directory q
"""
import os

_made = set()       # directories known to exist in this run: each mkdir is a littlefs lookup


def ensure_dir(path):
    """Create `path` unless it exists (mkdir's EEXIST is the common case)."""
    if path in _made:
        return
    try:
        os.mkdir(path)
    except OSError:
        pass
    _made.add(path)


def forget(path):
    """`path` was removed: the next ensure_dir() creates it again."""
    _made.discard(path)
