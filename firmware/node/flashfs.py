"""Small helpers for the node's littlefs flash.

    ensure_dir("state")   # before writing state/...
"""
import os


def ensure_dir(path):
    """Create `path` unless it exists (mkdir's EEXIST is the common case)."""
    try:
        os.mkdir(path)
    except OSError:
        pass
