"""The node's configuration on the flash, kept as two copies with a CRC.

    cfg = config_store.load()        # the newest whole copy, or None
    config_store.save(cfg)           # writes the other copy; the old one stays

Each copy is `CF1` ‖ generation (u32 BE) ‖ length (u16 BE) ‖ JSON ‖ CRC-32 (BE) over all
before it. `save` overwrites the copy that does not hold the newest generation, so a
write torn by a power cut leaves the previous configuration whole; `load` takes the
valid copy with the highest generation. host_tools/config_image.py writes the same
format at provisioning.
"""
from micropython import const
import json
import struct
from binascii import crc32

FILES = ("config.a", "config.b")
_MAGIC = b"CF1"
_HEAD = const(9)          # magic 3 + generation 4 + length 2
_MAX_JSON = const(4096)


def pack(cfg, generation):
    body = json.dumps(cfg).encode()
    if len(body) > _MAX_JSON:
        raise ValueError("configuration of %d bytes is larger than %d" % (len(body), _MAX_JSON))
    data = _MAGIC + struct.pack(">IH", generation, len(body)) + body
    return data + struct.pack(">I", crc32(data))


def unpack(data):
    """(generation, cfg), or None if the copy is not whole."""
    if len(data) < _HEAD + 4 or data[:3] != _MAGIC:
        return None
    generation, n = struct.unpack(">IH", data[3:_HEAD])
    if len(data) != _HEAD + n + 4:
        return None
    if struct.unpack(">I", data[-4:])[0] != crc32(data[:-4]):
        return None
    try:
        cfg = json.loads(data[_HEAD:_HEAD + n])
    except ValueError:
        return None
    return (generation, cfg) if isinstance(cfg, dict) else None


def _copies():
    found = []
    for i, path in enumerate(FILES):
        try:
            with open(path, "rb") as f:
                got = unpack(f.read())
        except OSError:
            got = None
        if got is not None:
            found.append((got[0], i, got[1]))
    return found


def load():
    copies = _copies()
    if not copies:
        return None
    return max(copies)[2]


def save(cfg):
    copies = _copies()
    if copies:
        generation, index, _ = max(copies)
        target = 1 - index
    else:
        generation, target = 0, 0
    with open(FILES[target], "wb") as f:
        f.write(pack(cfg, generation + 1))
