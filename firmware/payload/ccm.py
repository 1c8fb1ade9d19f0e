"""AES-CCM-16-64-128 (RFC 3610; COSE algorithm 10) on MicroPython's `cryptolib`.

    frame_tail = ccm.encrypt(key, nonce, aad, plaintext)   # ciphertext + 8-byte tag
    plaintext = ccm.decrypt(key, nonce, aad, frame_tail)   # ValueError("bad tag")

Parameters fixed here: M = 8 (tag bytes), L = 2 (length field bytes), so the
nonce is 15 - L = 13 bytes and a message is at most 65535 bytes (RFC 3610 s2).
Only the forward cipher is used (CBC-MAC and CTR both encrypt), so one
`aes(key, 1)` object per call suffices.
"""
from micropython import const
from cryptolib import aes

_MODE_ECB = const(1)
KEY_LEN = const(16)
NONCE_LEN = const(13)
TAG_LEN = const(8)
_MAX_LEN = const(0xFFFF)  # L = 2: l(m) < 2^16 (RFC 3610 s2.1)
_MAX_AAD = const(0xFEFF)  # two-byte l(a) encoding only (RFC 3610 s2.2)
# Flags octet of B_0: Adata | (M-2)/2 << 3 | L-1 (RFC 3610 s2.2).
_FLAGS_B0 = const(0x19)
_FLAGS_ADATA = const(0x40)
# Flags octet of A_i: L-1 (RFC 3610 s2.3).
_FLAGS_A = const(0x01)


def _check(key, nonce, aad, n):
    if len(key) != KEY_LEN:
        raise ValueError("key must be 16 bytes")
    if len(nonce) != NONCE_LEN:
        raise ValueError("nonce must be 13 bytes")
    if len(aad) > _MAX_AAD:
        raise ValueError("aad too long")
    if n > _MAX_LEN:
        raise ValueError("message too long")


def _absorb(cipher, x, t, data):
    # CBC-MAC over `data` zero-padded to whole blocks (RFC 3610 s2.2).
    # x holds the running MAC; t is scratch; they swap roles each block.
    n = len(data)
    i = 0
    while i < n:
        j = 0
        while j < 16 and i < n:
            x[j] ^= data[i]
            i += 1
            j += 1
        cipher.encrypt(x, t)
        x, t = t, x
    return x, t


def _mac(cipher, nonce, aad, msg, x, t):
    # Returns T (the first 16 bytes; the tag is its first TAG_LEN bytes).
    n = len(msg)
    x[0] = _FLAGS_B0 | (_FLAGS_ADATA if aad else 0)
    x[1:14] = nonce
    x[14] = n >> 8
    x[15] = n & 0xFF
    cipher.encrypt(x, t)
    x, t = t, x
    if aad:
        la = len(aad)
        x, t = _absorb(cipher, x, t, bytes((la >> 8, la & 0xFF)) + aad)
    x, t = _absorb(cipher, x, t, msg)
    return x


def _ctr(cipher, nonce, src, dst, a, s):
    # dst[i] = src[i] ^ S_1..S_k (RFC 3610 s2.3); returns S_0 in s.
    a[0] = _FLAGS_A
    a[1:14] = nonce
    a[14] = 0
    a[15] = 0
    n = len(src)
    i = 0
    block = 1
    while i < n:
        a[14] = block >> 8
        a[15] = block & 0xFF
        cipher.encrypt(a, s)
        j = 0
        while j < 16 and i < n:
            dst[i] = src[i] ^ s[j]
            i += 1
            j += 1
        block += 1
    a[14] = 0
    a[15] = 0
    cipher.encrypt(a, s)


def encrypt(key, nonce, aad, plaintext):
    """Return ciphertext || 8-byte tag (RFC 3610 s2.2-2.3)."""
    n = len(plaintext)
    _check(key, nonce, aad, n)
    cipher = aes(key, _MODE_ECB)
    a = bytearray(16)
    s = bytearray(16)
    t = _mac(cipher, nonce, aad, plaintext, bytearray(16), bytearray(16))
    out = bytearray(n + TAG_LEN)
    _ctr(cipher, nonce, plaintext, out, a, s)
    for j in range(TAG_LEN):
        out[n + j] = t[j] ^ s[j]
    return bytes(out)


def decrypt(key, nonce, aad, data):
    """Return the plaintext of ciphertext || tag; ValueError("bad tag") if it does not verify (RFC 3610 s2.5)."""
    if len(data) < TAG_LEN:
        raise ValueError("bad tag")
    n = len(data) - TAG_LEN
    _check(key, nonce, aad, n)
    cipher = aes(key, _MODE_ECB)
    a = bytearray(16)
    s = bytearray(16)
    msg = bytearray(n)
    _ctr(cipher, nonce, memoryview(data)[:n], msg, a, s)
    t = _mac(cipher, nonce, aad, msg, bytearray(16), bytearray(16))
    # Compare every byte so timing does not reveal where a forged tag first differs.
    diff = 0
    for j in range(TAG_LEN):
        diff |= data[n + j] ^ t[j] ^ s[j]
    if diff:
        raise ValueError("bad tag")
    return bytes(msg)
