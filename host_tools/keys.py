"""Key material: fresh random keys and their check values.

A key is never shown; its key check value (KCV) is, so two parties can confirm they
hold the same key: the first 3 bytes of AES-128-ECB(key, 16 zero bytes), the usual
KCV of payment and HSM practice.
"""
from __future__ import annotations

import secrets

from Crypto.Cipher import AES


def new_key() -> bytes:
    return secrets.token_bytes(16)


def check_value(key: bytes) -> str:
    return AES.new(key, AES.MODE_ECB).encrypt(bytes(16))[:3].hex().upper()


def parse_hex(value: str, n: int, what: str) -> bytes:
    """Hex string to exactly n bytes; the error names the field, never echoes a key."""
    try:
        b = bytes.fromhex(value.replace(":", "").replace(" ", ""))
    except ValueError:
        raise ValueError(f"{what}: not hexadecimal") from None
    if len(b) != n:
        raise ValueError(f"{what}: {len(b)} bytes, expected {n}")
    return b
