"""Key check values and the unlock tag, on MicroPython's cryptolib (AES-ECB only).

    keycheck.kcv(key)            # "1B2539": first 3 bytes of AES-128-ECB(key, 16 zero bytes)
    keycheck.cmac(key, msg)      # AES-CMAC, RFC 4493 (16 bytes)

The KCV is the check value of payment HSMs (host_tools/keys.check_value computes the
same); it shows that two parties hold the same key without showing the key.
"""
from binascii import hexlify


def _aes(key):
    from cryptolib import aes
    return aes(bytes(key), 1)


def kcv(key):
    """Key check value: first 3 bytes of AES-128-ECB(key, 16 zero bytes), hex."""
    return hexlify(_aes(key).encrypt(bytes(16))[:3]).decode().upper()


def _shift(block):
    # RFC 4493 2.3: a left shift by one bit, and Rb (0x87) in if the top bit fell out.
    out = bytearray(16)
    carry = 0
    for i in range(15, -1, -1):
        out[i] = ((block[i] << 1) | carry) & 0xFF
        carry = block[i] >> 7
    if block[0] & 0x80:
        out[15] ^= 0x87
    return out


def cmac(key, msg):
    """AES-CMAC (RFC 4493) on cryptolib's ECB mode."""
    cipher = _aes(key)
    k1 = _shift(cipher.encrypt(bytes(16)))
    k2 = _shift(k1)
    n = (len(msg) + 15) // 16 or 1
    whole = len(msg) and len(msg) % 16 == 0
    last = bytearray(16)
    tail = msg[(n - 1) * 16:]
    if whole:
        for i in range(16):
            last[i] = tail[i] ^ k1[i]
    else:
        pad = bytearray(tail) + b"\x80" + bytes(15 - len(tail))
        for i in range(16):
            last[i] = pad[i] ^ k2[i]
    x = bytearray(16)
    for j in range(n - 1):
        blk = msg[j * 16:j * 16 + 16]
        for i in range(16):
            x[i] ^= blk[i]
        x = bytearray(cipher.encrypt(bytes(x)))
    for i in range(16):
        x[i] ^= last[i]
    return cipher.encrypt(bytes(x))
