"""LoRaWAN 1.0.x frames, both directions: build, parse, encrypt, MIC.

    phy = data_frame(nwk_skey, app_skey, dev_addr, fcnt=7, uplink=True, port=2, payload=b"hi")
    frame = open_data_frame(phy, nwk_skey, app_skey, fcnt=7)     # checks the MIC, decrypts

Follows LoRaWAN 1.0.4 (TS001-1.0.4), which keeps the 1.0.x frame and crypto unchanged:
- PHYPayload = MHDR | MACPayload | MIC; MHDR = MType (3 bits) | RFU | Major (section 4.2);
- FHDR = DevAddr (4) | FCtrl (1) | FCnt (2, the 16 LSB of the 32-bit counter) | FOpts (0..15),
  FCtrl = ADR | ADRACKReq (up) or RFU (down) | ACK | ClassB (up) or FPending (down) | FOptsLen
  (section 4.3.1); FPort only when there is an FRMPayload (4.3.2);
- FRMPayload encryption (4.3.3): S = aes128_encrypt(K, A_1) | ... | aes128_encrypt(K, A_k),
  A_i = 0x01 | 4 x 0x00 | Dir | DevAddr | FCnt (32 bits) | 0x00 | i, payload XOR S; K is the
  NwkSKey for FPort 0 and the AppSKey otherwise;
- MIC (4.4): cmac = aes128_cmac(NwkSKey, B_0 | msg), B_0 = 0x49 | 4 x 0x00 | Dir | DevAddr |
  FCnt (32 bits) | 0x00 | len(msg), MIC = cmac[0..3];
- join-request (6.2.4): MHDR | JoinEUI | DevEUI | DevNonce, MIC = aes128_cmac(AppKey, ...);
- join-accept (6.2.6): MHDR | JoinNonce (3) | NetID (3) | DevAddr | DLSettings | RxDelay |
  [CFList], MIC = aes128_cmac(AppKey, MHDR | ... | CFList)[0..3]; everything after MHDR is
  encrypted with aes128_decrypt(AppKey, ...) so that the device needs only AES encrypt;
- session keys (6.2.5 of 1.0.3, 6.2.6 of 1.0.4): NwkSKey / AppSKey = aes128_encrypt(AppKey,
  0x01 / 0x02 | JoinNonce | NetID | DevNonce | pad16).
Every multi-byte field is little-endian on air; EUIs are given here in their printed (big-endian)
order, as in the inventory, and reversed on air. Cross-checked against lora-packet 0.9.3
(`src/lib/crypto.ts`, `src/lib/mic.ts`) and its test vectors (tests/test_lorawan_frames.py).
AES and CMAC are pycryptodome's.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from Crypto.Cipher import AES
from Crypto.Hash import CMAC

# MType (MHDR bits 7..5), section 4.2.1.
JOIN_REQUEST = 0
JOIN_ACCEPT = 1
UNCONFIRMED_UP = 2
UNCONFIRMED_DOWN = 3
CONFIRMED_UP = 4
CONFIRMED_DOWN = 5
MTYPE_NAMES = ("JoinRequest", "JoinAccept", "UnconfirmedDataUp", "UnconfirmedDataDown",
               "ConfirmedDataUp", "ConfirmedDataDown", "RFU", "Proprietary")
MAJOR_R1 = 0

# FCtrl bits, section 4.3.1.
FCTRL_ADR = 0x80
FCTRL_ADRACKREQ = 0x40      # uplink only
FCTRL_ACK = 0x20
FCTRL_FPENDING = 0x10       # downlink only (ClassB on uplinks)

# MAC command identifiers used by the network model (section 5).
CID_LINK_ADR = 0x03


class FrameError(ValueError):
    """A PHYPayload that is malformed or whose MIC does not verify."""


def _key(k) -> bytes:
    k = bytes.fromhex(k) if isinstance(k, str) else bytes(k)
    if len(k) != 16:
        raise FrameError("an AES-128 key is 16 bytes")
    return k


def _eui(e) -> bytes:
    e = bytes.fromhex(e) if isinstance(e, str) else bytes(e)
    if len(e) != 8:
        raise FrameError("an EUI is 8 bytes")
    return e


def aes_encrypt(key, block: bytes) -> bytes:
    return AES.new(_key(key), AES.MODE_ECB).encrypt(block)


def aes_decrypt(key, block: bytes) -> bytes:
    return AES.new(_key(key), AES.MODE_ECB).decrypt(block)


def mic(key, msg: bytes) -> bytes:
    """The first 4 bytes of AES-CMAC (RFC 4493) of `msg`."""
    return CMAC.new(_key(key), msg=msg, ciphermod=AES).digest()[:4]


def mhdr(mtype: int) -> int:
    return (mtype & 7) << 5 | MAJOR_R1


# --- join ----------------------------------------------------------------------------
def join_request(app_key, join_eui, dev_eui, dev_nonce: int) -> bytes:
    """The 23-byte join-request PHYPayload."""
    if not 0 <= dev_nonce <= 0xFFFF:
        raise FrameError("DevNonce is 16 bits")
    msg = bytes([mhdr(JOIN_REQUEST)]) + _eui(join_eui)[::-1] + _eui(dev_eui)[::-1] \
        + struct.pack("<H", dev_nonce)
    return msg + mic(app_key, msg)


@dataclass
class JoinRequestFrame:
    join_eui: bytes     # printed order
    dev_eui: bytes
    dev_nonce: int


def parse_join_request(phy: bytes, app_key=None) -> JoinRequestFrame:
    """Fields of a join-request; with `app_key`, its MIC must verify."""
    phy = bytes(phy)
    if len(phy) != 23 or phy[0] >> 5 != JOIN_REQUEST:
        raise FrameError("not a 23-byte join-request")
    if app_key is not None and mic(app_key, phy[:-4]) != phy[-4:]:
        raise FrameError("join-request MIC does not verify")
    return JoinRequestFrame(phy[1:9][::-1], phy[9:17][::-1], struct.unpack("<H", phy[17:19])[0])


def session_keys(app_key, join_nonce: int, net_id: int, dev_nonce: int) -> tuple[bytes, bytes]:
    """(NwkSKey, AppSKey) of a LoRaWAN 1.0.x OTAA session."""
    tail = join_nonce.to_bytes(3, "little") + net_id.to_bytes(3, "little") \
        + struct.pack("<H", dev_nonce)
    pad = bytes(16 - 1 - len(tail))
    return (aes_encrypt(app_key, b"\x01" + tail + pad), aes_encrypt(app_key, b"\x02" + tail + pad))


def join_accept(app_key, join_nonce: int, net_id: int, dev_addr: int, dl_settings: int = 0,
                rx_delay: int = 1, cf_list: bytes = b"") -> bytes:
    """The encrypted join-accept PHYPayload (17 bytes, 33 with a CFList)."""
    if len(cf_list) not in (0, 16):
        raise FrameError("CFList is 16 bytes")
    plain = bytes([mhdr(JOIN_ACCEPT)]) + join_nonce.to_bytes(3, "little") \
        + net_id.to_bytes(3, "little") + struct.pack("<I", dev_addr) \
        + bytes([dl_settings & 0xFF, rx_delay & 0xFF]) + bytes(cf_list)
    body = plain[1:] + mic(app_key, plain)
    # The network "decrypts" so that the device, which only has AES encrypt, can read it.
    return plain[:1] + aes_decrypt(app_key, body)


@dataclass
class JoinAcceptFrame:
    join_nonce: int
    net_id: int
    dev_addr: int
    dl_settings: int
    rx_delay: int
    cf_list: bytes


def open_join_accept(phy: bytes, app_key) -> JoinAcceptFrame:
    """Decrypt a join-accept as the device does and verify its MIC."""
    phy = bytes(phy)
    if len(phy) not in (17, 33) or phy[0] >> 5 != JOIN_ACCEPT:
        raise FrameError("not a join-accept")
    plain = phy[:1] + aes_encrypt(app_key, phy[1:])
    if mic(app_key, plain[:-4]) != plain[-4:]:
        raise FrameError("join-accept MIC does not verify")
    return JoinAcceptFrame(int.from_bytes(plain[1:4], "little"), int.from_bytes(plain[4:7], "little"),
                           struct.unpack("<I", plain[7:11])[0], plain[11], plain[12],
                           plain[13:-4])


# --- data frames -----------------------------------------------------------------------
def _block(first: int, uplink: bool, dev_addr: int, fcnt: int, last: int) -> bytes:
    return bytes([first, 0, 0, 0, 0, 0 if uplink else 1]) + struct.pack("<II", dev_addr, fcnt) \
        + bytes([0, last])


def crypt_frm_payload(key, dev_addr: int, fcnt: int, uplink: bool, data: bytes) -> bytes:
    """Encrypt or decrypt (the same XOR) an FRMPayload with the 32-bit `fcnt`."""
    out = bytearray(data)
    cipher = AES.new(_key(key), AES.MODE_ECB)
    for i in range(0, len(out), 16):
        s = cipher.encrypt(_block(0x01, uplink, dev_addr, fcnt, i // 16 + 1))
        for j in range(min(16, len(out) - i)):
            out[i + j] ^= s[j]
    return bytes(out)


def data_mic(nwk_skey, dev_addr: int, fcnt: int, uplink: bool, msg: bytes) -> bytes:
    if len(msg) > 255:
        raise FrameError("a data frame is at most 255 bytes before its MIC")
    return mic(nwk_skey, _block(0x49, uplink, dev_addr, fcnt, len(msg)) + msg)


def data_frame(nwk_skey, app_skey, dev_addr: int, fcnt: int, uplink: bool,
               confirmed: bool = False, port: int | None = None, payload: bytes = b"",
               fopts: bytes = b"", adr: bool = False, adr_ack_req: bool = False,
               ack: bool = False, fpending: bool = False) -> bytes:
    """A data-frame PHYPayload. `fcnt` is the full 32-bit counter (its 16 LSB go on air).
    Without a payload there is no FPort (`port` must then be None)."""
    if not 0 <= fcnt <= 0xFFFFFFFF:
        raise FrameError("FCnt is 32 bits")
    if len(fopts) > 15:
        raise FrameError("FOpts is at most 15 bytes")
    if payload and port is None:
        raise FrameError("an FRMPayload needs an FPort")
    if port is not None and not 0 <= port <= 255:
        raise FrameError("FPort is one byte")
    if port == 0 and fopts:
        raise FrameError("MAC commands go in FOpts or on FPort 0, not both")
    fctrl = len(fopts) | (FCTRL_ADR if adr else 0) | (FCTRL_ACK if ack else 0)
    if uplink:
        fctrl |= FCTRL_ADRACKREQ if adr_ack_req else 0
        mtype = CONFIRMED_UP if confirmed else UNCONFIRMED_UP
    else:
        fctrl |= FCTRL_FPENDING if fpending else 0
        mtype = CONFIRMED_DOWN if confirmed else UNCONFIRMED_DOWN
    msg = bytes([mhdr(mtype)]) + struct.pack("<IBH", dev_addr, fctrl, fcnt & 0xFFFF) + bytes(fopts)
    if port is not None:
        key = nwk_skey if port == 0 else app_skey
        msg += bytes([port]) + crypt_frm_payload(key, dev_addr, fcnt, uplink, bytes(payload))
    return msg + data_mic(nwk_skey, dev_addr, fcnt, uplink, msg)


@dataclass
class DataFrame:
    mtype: int
    dev_addr: int
    fctrl: int
    fcnt16: int
    fopts: bytes
    port: int | None
    frm_payload: bytes      # as on air (encrypted) from parse_data_frame, plain from open_
    mic: bytes

    @property
    def uplink(self) -> bool:
        return self.mtype in (UNCONFIRMED_UP, CONFIRMED_UP)

    @property
    def confirmed(self) -> bool:
        return self.mtype in (CONFIRMED_UP, CONFIRMED_DOWN)

    @property
    def adr(self) -> bool:
        return bool(self.fctrl & FCTRL_ADR)

    @property
    def ack(self) -> bool:
        return bool(self.fctrl & FCTRL_ACK)

    @property
    def adr_ack_req(self) -> bool:
        return self.uplink and bool(self.fctrl & FCTRL_ADRACKREQ)

    @property
    def fpending(self) -> bool:
        return not self.uplink and bool(self.fctrl & FCTRL_FPENDING)


def parse_data_frame(phy: bytes) -> DataFrame:
    """Fields of a data frame, FRMPayload still encrypted, MIC not checked."""
    phy = bytes(phy)
    if len(phy) < 12:
        raise FrameError("a data frame is at least 12 bytes")
    mtype = phy[0] >> 5
    if mtype not in (UNCONFIRMED_UP, UNCONFIRMED_DOWN, CONFIRMED_UP, CONFIRMED_DOWN) \
            or phy[0] & 3 != MAJOR_R1:
        raise FrameError(f"not a LoRaWAN R1 data frame (MHDR 0x{phy[0]:02X})")
    dev_addr, fctrl, fcnt16 = struct.unpack("<IBH", phy[1:8])
    end = 8 + (fctrl & 0x0F)
    if end > len(phy) - 4:
        raise FrameError("FOptsLen runs past the MIC")
    body = phy[end:-4]
    port = body[0] if body else None
    return DataFrame(mtype, dev_addr, fctrl, fcnt16, phy[8:end], port, body[1:], phy[-4:])


def verify_data_frame(phy: bytes, nwk_skey, fcnt: int) -> bool:
    """Whether the MIC verifies with NwkSKey and the full 32-bit counter `fcnt`."""
    f = parse_data_frame(phy)
    if fcnt & 0xFFFF != f.fcnt16:
        return False
    return data_mic(nwk_skey, f.dev_addr, fcnt, f.uplink, bytes(phy)[:-4]) == f.mic


def open_data_frame(phy: bytes, nwk_skey, app_skey, fcnt: int) -> DataFrame:
    """Verify the MIC and decrypt the FRMPayload (in the returned frame)."""
    f = parse_data_frame(phy)
    if not verify_data_frame(phy, nwk_skey, fcnt):
        raise FrameError("data frame MIC does not verify")
    if f.port is not None:
        key = nwk_skey if f.port == 0 else app_skey
        f.frm_payload = crypt_frm_payload(key, f.dev_addr, fcnt, f.uplink, f.frm_payload)
    return f


# --- MAC commands ----------------------------------------------------------------------
def link_adr_req(dr: int, tx_power: int, ch_mask: int, nb_trans: int = 1,
                 ch_mask_cntl: int = 0) -> bytes:
    """LinkADRReq (section 5.3): CID | DataRate_TXPower | ChMask (LE) | Redundancy."""
    if not (0 <= dr <= 15 and 0 <= tx_power <= 15 and 0 <= ch_mask <= 0xFFFF
            and 0 <= nb_trans <= 15 and 0 <= ch_mask_cntl <= 7):
        raise FrameError("LinkADRReq field out of range")
    return bytes([CID_LINK_ADR, dr << 4 | tx_power]) + struct.pack("<H", ch_mask) \
        + bytes([ch_mask_cntl << 4 | nb_trans])


def parse_link_adr_req(cmd: bytes) -> tuple[int, int, int, int]:
    """(dr, tx_power, ch_mask, nb_trans) of one LinkADRReq."""
    if len(cmd) != 5 or cmd[0] != CID_LINK_ADR:
        raise FrameError("not a LinkADRReq")
    return cmd[1] >> 4, cmd[1] & 0x0F, struct.unpack("<H", cmd[2:4])[0], cmd[4] & 0x0F
