"""The node's configuration files as the firmware keeps them (firmware/node/config_store.py):
two copies, `CF1` ‖ generation ‖ length ‖ JSON ‖ CRC-32. Provisioning writes both, so
the node starts with two whole copies."""
from __future__ import annotations

import json
import struct
import zlib

FILES = ("config.a", "config.b")


def pack(cfg: dict, generation: int) -> bytes:
    body = json.dumps(cfg, separators=(",", ":")).encode()
    data = b"CF1" + struct.pack(">IH", generation, len(body)) + body
    return data + struct.pack(">I", zlib.crc32(data))


def files(cfg: dict) -> dict[str, bytes]:
    """Both copies, generations 1 and 2 of the same configuration."""
    return {FILES[0]: pack(cfg, 1), FILES[1]: pack(cfg, 2)}
