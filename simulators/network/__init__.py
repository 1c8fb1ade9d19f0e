"""The LoRaWAN network as the modem models see it (minimal: the full model is a later issue).

One `Network` is shared by every modem of a run. It decides whether a join is accepted,
hands out a fresh JoinNonce per accept (RUI3 rejects a repeated one), and captures every
uplink so the host side can decode it; during an outage (`available = False`) uplinks are
sent but recorded in `lost` instead of `uplinks`.

    net = Network(seed=1)
    accept = net.join_request(dev_eui, join_eui, app_key, dev_nonce=1, t_us=clock.now_us)
"""
from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from simulators.network import eu868

__all__ = ["Network", "Uplink", "JoinAccept", "JoinAttempt", "Delivery", "eu868"]

# TTN's NetID: DevAddrs then start with 0x26/0x27. Any value would do for the simulation.
NET_ID = 0x000013


def _hex(eui) -> str:
    return eui.hex().upper() if isinstance(eui, (bytes, bytearray)) else str(eui).upper()


@dataclass
class Uplink:
    """One uplink as it left the device's antenna."""
    t_us: int               # start of transmission
    dev_eui: str            # hex, upper case
    port: int | None        # None for a frame without FRMPayload (no FPort on air)
    payload: bytes
    fcnt: int
    dr: int
    airtime_us: int
    confirmed: bool
    channel_hz: int = 0
    reason: str = ""        # why it was lost (only in Network.lost)


@dataclass
class JoinAccept:
    join_nonce: int
    dev_addr: int
    net_id: int
    # Placeholders until the network model derives real session keys (later issue).
    nwk_skey: bytes = bytes(16)
    app_skey: bytes = bytes(16)


@dataclass
class JoinAttempt:
    t_us: int | None
    dev_eui: str
    dev_nonce: int
    accepted: bool
    reason: str = ""


@dataclass
class Delivery:
    """What reaches the device back after an uplink: an ACK and/or a downlink in RX1."""
    received: bool
    ack: bool = False
    downlink: tuple[int, bytes] | None = None
    rssi: int = -60
    snr: int = 8


class Network:
    def __init__(self, seed: int = 0, check_dev_nonce: bool = True):
        self.rng = random.Random(seed)
        self.available = True
        self.join_fail_windows: list[tuple[int, int]] = []   # [start_us, end_us) of refusals
        # A LoRaWAN 1.0.4 join server ignores a DevNonce that did not increase (section 6.2.5).
        self.check_dev_nonce = check_dev_nonce
        self.uplinks: list[Uplink] = []
        self.lost: list[Uplink] = []
        self.joins: list[JoinAttempt] = []
        self.sessions: dict[str, JoinAccept] = {}
        # Increasing JoinNonce, starting at a seeded random point: fresh on every accept.
        self._join_nonce = self.rng.randrange(0x1000)
        self._last_dev_nonce: dict[str, int] = {}
        self._downlinks: dict[str, deque] = {}

    # --- scenario controls ------------------------------------------------------
    def fail_joins(self, start_us: int, end_us: int) -> None:
        """Refuse every join request that starts in [start_us, end_us)."""
        self.join_fail_windows.append((start_us, end_us))

    def queue_downlink(self, dev_eui, port: int, payload: bytes) -> None:
        """Send `payload` on `port` in RX1 after the device's next received uplink."""
        self._downlinks.setdefault(_hex(dev_eui), deque()).append((port, bytes(payload)))

    # --- what the modems call ---------------------------------------------------
    def join_request(self, dev_eui, join_eui, app_key, dev_nonce: int,
                     t_us: int | None = None) -> JoinAccept | None:
        """A join request on air: the accept to deliver, or None (no answer in RX1/RX2)."""
        eui = _hex(dev_eui)
        reason = ""
        if not self.available:
            reason = "network unavailable"
        elif t_us is not None and any(a <= t_us < b for a, b in self.join_fail_windows):
            reason = "join failure window"
        elif self.check_dev_nonce and dev_nonce <= self._last_dev_nonce.get(eui, -1):
            reason = "DevNonce not incremented"
        if reason != "network unavailable":
            # The join server saw the request, so its DevNonce is used up.
            last = self._last_dev_nonce.get(eui, -1)
            self._last_dev_nonce[eui] = max(last, dev_nonce)
        if reason:
            self.joins.append(JoinAttempt(t_us, eui, dev_nonce, False, reason))
            return None
        self._join_nonce = (self._join_nonce + 1) & 0xFFFFFF
        # Type-0 NetID: DevAddr = 0 | NwkID (6 bits) | NwkAddr (25 bits).
        dev_addr = (NET_ID & 0x3F) << 25 | self.rng.getrandbits(25)
        accept = JoinAccept(join_nonce=self._join_nonce, dev_addr=dev_addr, net_id=NET_ID)
        self.sessions[eui] = accept
        self.joins.append(JoinAttempt(t_us, eui, dev_nonce, True))
        return accept

    def uplink(self, dev_eui, port: int | None, payload: bytes, confirmed: bool, dr: int,
               fcnt: int, t_us: int, airtime_us: int, channel_hz: int = 0) -> Delivery:
        """An uplink on air: record it, and say what comes back in the receive windows."""
        eui = _hex(dev_eui)
        rec = Uplink(t_us, eui, port, bytes(payload), fcnt, dr, airtime_us, confirmed,
                     channel_hz)
        if not self.available:
            rec.reason = "network unavailable"
            self.lost.append(rec)
            return Delivery(received=False)
        self.uplinks.append(rec)
        queue = self._downlinks.get(eui)
        downlink = queue.popleft() if queue else None
        return Delivery(received=True, ack=confirmed, downlink=downlink)
