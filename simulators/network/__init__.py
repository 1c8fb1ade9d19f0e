"""The LoRaWAN network the modem models talk to: one EU868 network server behind one gateway.

One `Network` is shared by every modem of a run (and by every node of a fleet). It builds the
real LoRaWAN 1.0.x frames (`lorawan.py`) of everything on air, hears them through the link
budget and collision rules of the one gateway (`radio.py`), and answers as a network server:

    net = Network(seed=1)
    net.place(dev_eui, distance_m=1800)            # optional; unplaced = on the gateway's bench
    accept = net.join_request(dev_eui, join_eui, app_key, dev_nonce, t_us, dr=0)
    delivery = net.uplink(dev_eui, port, payload, confirmed, dr, fcnt, t_us, airtime_us,
                          channel_hz, adr=True)
    net.resolve_collisions()                       # after a fleet ran its nodes one by one

API for the modem models (positional parameters are fixed; new ones are keyword-only):
- `join_request(dev_eui, join_eui, app_key, dev_nonce, t_us=None, *, dr=None,
  airtime_us=None, channel_hz=0, tx_power_index=0)` -> `JoinAccept` or None (no answer in
  either join window). Call it when the request has left the antenna; `t_us` is when it
  started. Give `dr` (and `channel_hz`) to put the request through the link budget and the
  collision check and to count its airtime; without `dr` it always reaches the server.
  The accept carries the real session keys, the DevAddr and `phy`, the encrypted
  join-accept PHYPayload; `rx_window` says which join window (1 or 2) it comes in.
- `uplink(dev_eui, port, payload, confirmed, dr, fcnt, t_us, airtime_us, channel_hz=0, *,
  adr=False, adr_ack_req=False, fopts=b"", tx_power_index=None)` -> `Delivery`.
  `fcnt` is the device's 32-bit FCntUp (16 LSB on air); `port=None` means no FPort (an empty
  frame); `fopts` are the MAC command bytes the device piggy-backs (e.g. `03 07`, a
  LinkADRAns accepting everything); `tx_power_index` is the EU868 TXPower index the device
  used (None: what the network last asked for). `channel_hz=0` means unknown: no collision
  check for that frame.
- `Delivery`: `received` (the network got the uplink), `ack` (the device receives an ACK),
  `downlink` ((port, payload) or None), `adr` ((dr, tx_power_index, ch_mask) of a LinkADRReq
  in the downlink's FOpts, or None), `phy` (the downlink PHYPayload the device receives, or
  None), `window` (1 = RX1, 2 = RX2, 0 = nothing received), `fpending`, `rssi` and `snr` (of
  that downlink at the device; -60 / 8 when nothing came), `reason` (why the uplink or its
  answer was lost).
- Scenario side: `place`, `queue_downlink`, `fail_joins`, `available`, `resolve_collisions`,
  `airtime_us`, `write_phy_log`; records: `uplinks` (frames the application got, in order),
  `lost` (frames on air that did not make it, with `reason`), `duplicates` (retransmissions of
  an accepted FCnt), `downlinks`, `joins`, `sessions` (the last accept per DevEUI), `frames`
  (every PHYPayload, both directions, append-only).

Rules and their sources (details in docs/network.md):
- OTAA (LoRaWAN 1.0.4 section 6.2.5): a DevNonce that did not increase is ignored (recorded as
  "DevNonce not incremented"); each accept gets a fresh, increasing JoinNonce; the FCnts of
  the session start at 0.
- FCntUp (section 4.3.1.5): the server rebuilds the 32-bit counter from the 16 bits on air and
  checks the MIC with it, as ChirpStack's `get_full_f_cnt_up` does; an older counter is
  dropped ("frame counter replay"), the same counter is a retransmission (acknowledged again,
  not passed on twice).
- Class A downlinks: ACKs, queued application downlinks and MAC commands go in RX1 (uplink
  channel and DR, RECEIVE_DELAY1 after the uplink), or RX2 (869.525 MHz, DR0) when the
  gateway's duty cycle (eu868.DutyCycle, ETSI) forbids RX1; FCntDown counts every downlink.
- ADR: ChirpStack's default algorithm (adr.py) when the uplink has the ADR bit.
- Loss: link budget and collisions at the gateway (radio.py); a downlink is lost when the
  device cannot demodulate it.
Limits: one gateway; a collision found when a later-known frame arrives moves the earlier
frame to `lost`, but its `Delivery` was already given (a fleet that runs nodes one at a time
should call `resolve_collisions()` and judge by the records); no LinkCheck/DeviceTime beyond
LinkCheckAns; queued downlinks are unconfirmed.
"""
from __future__ import annotations

import json
import os
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from simulators.network import adr as adr_algo
from simulators.network import eu868, lorawan, radio

__all__ = ["Network", "Uplink", "Downlink", "JoinAccept", "JoinAttempt", "Delivery", "PhyRecord",
           "eu868", "lorawan", "radio"]

# TTN's NetID: DevAddrs then start with 0x26/0x27. Any value would do for the simulation.
NET_ID = 0x000013
DL_SETTINGS = 0x00          # RX1DROffset 0, RX2 DR0: the EU868 defaults
RX_DELAY = 1                # RECEIVE_DELAY1 = 1 s
CH_MASK = 0x0007            # the three default channels; the join-accept has no CFList
FCNT_GAP = 1 << 16


def _hex(eui) -> str:
    return eui.hex().upper() if isinstance(eui, (bytes, bytearray)) else str(eui).upper()


def _bytes(v, n: int, what: str) -> bytes:
    b = bytes.fromhex(v) if isinstance(v, str) else bytes(v)
    if len(b) != n:
        raise ValueError(f"{what} must be {n} bytes")
    return b


@dataclass
class Uplink:
    """One uplink as it left the device's antenna."""
    t_us: int               # start of transmission
    dev_eui: str            # hex, upper case
    port: int | None        # None for a frame without FRMPayload (no FPort on air)
    payload: bytes          # the application payload the modem was given (plain)
    fcnt: int               # the device's 32-bit FCntUp
    dr: int
    airtime_us: int
    confirmed: bool
    channel_hz: int = 0
    reason: str = ""        # why it was lost (only in Network.lost)
    phy: bytes = b""        # the PHYPayload on air (empty if the network has no session)
    dev_addr: int | None = None
    adr: bool = False
    adr_ack_req: bool = False
    fopts: bytes = b""
    tx_power_index: int = 0
    rssi: float | None = None       # at the gateway, dBm
    snr: float | None = None        # at the gateway as reported (capped), dB


@dataclass
class Downlink:
    """One downlink the gateway transmitted (a join-accept has `fcnt` None)."""
    t_us: int               # start of transmission at the gateway
    dev_eui: str
    fcnt: int | None
    ack: bool
    port: int | None = None
    payload: bytes = b""
    fopts: bytes = b""
    window: int = 1
    dr: int = 0
    channel_hz: int = 0
    airtime_us: int = 0
    phy: bytes = b""
    delivered: bool = True  # the device demodulated it
    reason: str = ""


@dataclass
class JoinAccept:
    join_nonce: int
    dev_addr: int
    net_id: int
    nwk_skey: bytes = bytes(16)
    app_skey: bytes = bytes(16)
    dev_nonce: int = 0
    phy: bytes = b""        # the encrypted join-accept PHYPayload
    rx_window: int = 1


@dataclass
class JoinAttempt:
    t_us: int | None
    dev_eui: str
    dev_nonce: int
    accepted: bool
    reason: str = ""
    phy: bytes = b""        # the join-request PHYPayload
    dr: int | None = None
    airtime_us: int = 0
    channel_hz: int = 0
    rssi: float | None = None
    snr: float | None = None


@dataclass
class Delivery:
    """What reaches the device back after an uplink: an ACK and/or a downlink in RX1/RX2."""
    received: bool
    ack: bool = False
    downlink: tuple[int, bytes] | None = None
    rssi: int = radio.BENCH_RSSI_DBM
    snr: int = radio.BENCH_SNR_DB
    adr: tuple[int, int, int] | None = None     # LinkADRReq: (dr, tx_power_index, ch_mask)
    phy: bytes | None = None
    window: int = 0
    fpending: bool = False
    reason: str = ""


@dataclass
class PhyRecord:
    """One PHYPayload of the run, for the PHY log."""
    t_us: int
    uplink: bool
    kind: str               # lorawan.MTYPE_NAMES entry
    dev_eui: str
    phy: bytes
    airtime_us: int
    received: bool = True
    reason: str = ""
    fcnt: int | None = None
    port: int | None = None
    payload: bytes = b""
    session: JoinAccept | None = None
    app_key: bytes | None = None            # join frames only
    join_eui: bytes | None = None
    dev_nonce: int | None = None
    dr: int | None = None


@dataclass
class _Device:
    """What the network server keeps per DevEUI."""
    link: radio.Link = field(default_factory=radio.Link)
    app_key: bytes | None = None
    last_dev_nonce: int = -1
    fcnt_up: int | None = None      # last accepted 32-bit FCntUp of the session
    fcnt_down: int = 0              # next FCntDown
    tx_power_index: int = 0         # as far as the network knows
    pending_adr: tuple[int, int] | None = None
    history: adr_algo.AdrHistory = field(default_factory=adr_algo.AdrHistory)
    queue: deque = field(default_factory=deque)


class Network:
    def __init__(self, seed: int = 0, check_dev_nonce: bool = True,
                 installation_margin_db: float = adr_algo.INSTALLATION_MARGIN_DB):
        self.rng = random.Random(seed)
        self.radio_rng = random.Random(f"radio:{seed}")
        self.available = True
        self.join_fail_windows: list[tuple[int, int]] = []   # [start_us, end_us) of refusals
        # A LoRaWAN 1.0.4 join server ignores a DevNonce that did not increase (section 6.2.5).
        self.check_dev_nonce = check_dev_nonce
        self.installation_margin_db = installation_margin_db
        self.uplinks: list[Uplink] = []
        self.lost: list[Uplink] = []
        self.duplicates: list[Uplink] = []
        self.downlinks: list[Downlink] = []
        self.joins: list[JoinAttempt] = []
        self.sessions: dict[str, JoinAccept] = {}
        self.frames: list[PhyRecord] = []
        # Increasing JoinNonce, starting at a seeded random point: fresh on every accept.
        self._join_nonce = self.rng.randrange(0x1000)
        self._devices: dict[str, _Device] = {}
        self._air = radio.Air()
        self._gateway_duty = eu868.DutyCycle(random.Random(seed))
        self._phy_of: dict[int, PhyRecord] = {}     # id(record) -> its PHY log entry

    # --- scenario controls ------------------------------------------------------
    def place(self, dev_eui, distance_m: float | None = None, path_loss_db: float | None = None,
              shadowing_db: float = radio.SHADOWING_SIGMA_DB) -> radio.Link:
        """Put a device `distance_m` from the gateway (Okumura-Hata urban) or behind a given
        median path loss; with neither it goes back on the bench (fixed, lossless link)."""
        if distance_m is not None and path_loss_db is not None:
            raise ValueError("give distance_m or path_loss_db, not both")
        if distance_m is not None:
            link = radio.Link.at_distance(distance_m, shadowing_db=shadowing_db)
        elif path_loss_db is not None:
            link = radio.Link(path_loss_db=float(path_loss_db), shadowing_db=shadowing_db)
        else:
            link = radio.Link()
        self._device(_hex(dev_eui)).link = link
        return link

    def fail_joins(self, start_us: int, end_us: int) -> None:
        """Refuse every join request that starts in [start_us, end_us)."""
        self.join_fail_windows.append((start_us, end_us))

    def queue_downlink(self, dev_eui, port: int, payload: bytes) -> None:
        """Send `payload` on `port` after the device's next received uplink (RX1, else RX2)."""
        if not isinstance(port, int) or not 1 <= port <= 223:
            raise ValueError("a downlink's FPort is 1..223 (0 is for MAC commands)")
        if len(payload) > eu868.MAX_PAYLOAD[5]:
            raise ValueError(f"a downlink payload is at most {eu868.MAX_PAYLOAD[5]} bytes")
        self._device(_hex(dev_eui)).queue.append((port, bytes(payload)))

    def pending_downlinks(self, dev_eui) -> list[tuple[int, bytes]]:
        return list(self._device(_hex(dev_eui)).queue)

    # --- what the modems call ---------------------------------------------------
    def join_request(self, dev_eui, join_eui, app_key, dev_nonce: int,
                     t_us: int | None = None, *, dr: int | None = None,
                     airtime_us: int | None = None, channel_hz: int = 0,
                     tx_power_index: int = 0) -> JoinAccept | None:
        """A join request on air: the accept to deliver, or None (no answer in RX1/RX2)."""
        eui = _hex(dev_eui)
        key = _bytes(app_key, 16, "AppKey")
        join_eui_b = _bytes(join_eui, 8, "JoinEUI")
        phy = lorawan.join_request(key, join_eui_b, _bytes(dev_eui, 8, "DevEUI"), dev_nonce)
        if dr is not None and airtime_us is None:
            airtime_us = eu868.airtime_us(dr, len(phy))
        dev = self._device(eui)
        attempt = JoinAttempt(t_us, eui, dev_nonce, False, phy=phy, dr=dr,
                              airtime_us=airtime_us or 0, channel_hz=channel_hz)
        log = self._log(attempt, PhyRecord(t_us or 0, True, "JoinRequest", eui, phy,
                                           airtime_us or 0, app_key=key, join_eui=join_eui_b,
                                           dev_nonce=dev_nonce, dr=dr))
        reason = ""
        if not self.available:
            reason = "network unavailable"
        elif dr is not None and t_us is not None:
            reason, _, _ = self._hear(dev, attempt, dr, channel_hz, t_us, airtime_us,
                                      tx_power_index)
        if not reason:
            if t_us is not None and any(a <= t_us < b for a, b in self.join_fail_windows):
                reason = "join failure window"
            elif self.check_dev_nonce and dev_nonce <= dev.last_dev_nonce:
                reason = "DevNonce not incremented"
            # The join server saw the request, so its DevNonce is used up.
            dev.last_dev_nonce = max(dev.last_dev_nonce, dev_nonce)
        if reason:
            attempt.reason = log.reason = reason
            log.received = False
            self.joins.append(attempt)
            return None
        self._join_nonce = (self._join_nonce + 1) & 0xFFFFFF
        dev_addr = self._new_dev_addr()
        nwk_skey, app_skey = lorawan.session_keys(key, self._join_nonce, NET_ID, dev_nonce)
        accept = JoinAccept(self._join_nonce, dev_addr, NET_ID, nwk_skey, app_skey, dev_nonce,
                            lorawan.join_accept(key, self._join_nonce, NET_ID, dev_addr,
                                                DL_SETTINGS, RX_DELAY))
        # A new session: counters from 0, default radio settings, fresh ADR history.
        self.sessions[eui] = accept
        dev.app_key = key
        dev.fcnt_up, dev.fcnt_down = None, 0
        dev.tx_power_index, dev.pending_adr = 0, None
        dev.history = adr_algo.AdrHistory()
        end = (t_us or 0) + (airtime_us or 0)
        window, lost = self._send_down(dev, eui, accept.phy, end, dr, channel_hz,
                                       eu868.JOIN_ACCEPT_DELAY1_US, eu868.JOIN_ACCEPT_DELAY2_US,
                                       PhyRecord(0, False, "JoinAccept", eui, accept.phy, 0,
                                                 session=accept, app_key=key,
                                                 join_eui=join_eui_b, dev_nonce=dev_nonce))
        if lost:
            attempt.reason = f"join-accept lost ({lost})"
            self.joins.append(attempt)
            return None
        accept.rx_window = window
        attempt.accepted = True
        self.joins.append(attempt)
        return accept

    def uplink(self, dev_eui, port: int | None, payload: bytes, confirmed: bool, dr: int,
               fcnt: int, t_us: int, airtime_us: int, channel_hz: int = 0, *,
               adr: bool = False, adr_ack_req: bool = False, fopts: bytes = b"",
               tx_power_index: int | None = None) -> Delivery:
        """An uplink on air: record it, and say what comes back in the receive windows."""
        eui = _hex(dev_eui)
        dev = self._device(eui)
        session = self.sessions.get(eui)
        txp = tx_power_index
        if txp is None:
            txp = dev.tx_power_index
            if dev.pending_adr and dev.pending_adr[0] == dr:
                # The device is at the DR the network asked for: it applied the LinkADRReq
                # (its TX power with it), whether or not the modem models the LinkADRAns.
                txp = dev.pending_adr[1]
        radio.tx_eirp_dbm(txp)                  # validates the index
        rec = Uplink(t_us, eui, port, bytes(payload), fcnt, dr, airtime_us, confirmed,
                     channel_hz, adr=adr, adr_ack_req=adr_ack_req, fopts=bytes(fopts),
                     tx_power_index=txp)
        if session is not None:
            # Built first: a frame that cannot exist raises before any state changes.
            rec.dev_addr = session.dev_addr
            rec.phy = lorawan.data_frame(session.nwk_skey, session.app_skey, session.dev_addr,
                                         fcnt, True, confirmed, port, rec.payload, rec.fopts,
                                         adr, adr_ack_req)
        self._log(rec, PhyRecord(t_us, True, lorawan.MTYPE_NAMES[
            lorawan.CONFIRMED_UP if confirmed else lorawan.UNCONFIRMED_UP], eui, rec.phy,
            airtime_us, fcnt=fcnt, port=port, payload=rec.payload, session=session, dr=dr))
        if not self.available:
            return self._drop(rec, "network unavailable")
        reason, _, _ = self._hear(dev, rec, dr, channel_hz, t_us, airtime_us, txp)
        if reason:
            return self._drop(rec, reason)
        if session is None:
            return self._drop(rec, "unknown device (no session)")
        status, fcnt32 = self._check_fcnt(dev, session, rec.phy)
        if status in ("frame counter replay", "MIC mismatch"):
            return self._drop(rec, status)
        # What the server learns from a frame it received: the device's TX power, and
        # whether it took the last LinkADRReq.
        dev.tx_power_index = txp
        if dev.pending_adr and dev.pending_adr[0] == dr:
            dev.pending_adr = None
        mac = self._read_fopts(dev, rec, dr)
        if rec.snr is not None:
            dev.history.add(fcnt32, rec.snr, txp)
        if status == "retransmission":
            rec.reason = "retransmission"
            self.duplicates.append(rec)
        else:
            dev.fcnt_up = fcnt32
            self.uplinks.append(rec)
        return self._answer(dev, rec, mac)

    def resolve_collisions(self) -> list:
        """Check every pair of frames again (for runs that handed the network its uplinks
        out of time order); move newly collided ones to `lost`. Returns their records."""
        moved = []
        for tx in self._air.resolve():
            moved.append(tx.record)
            self._collided(tx.record)
        return moved

    # --- records ---------------------------------------------------------------------
    def airtime_us(self, dev_eui=None, since_us: int | None = None,
                   until_us: int | None = None) -> int:
        """Time on air of what the device (or every device) sent, received or not: join
        requests (when their DR was given) and uplinks, retransmissions included, that
        started in [since_us, until_us)."""
        eui = None if dev_eui is None else _hex(dev_eui)
        return sum(f.airtime_us for f in self.frames
                   if f.uplink and (eui is None or f.dev_eui == eui)
                   and (since_us is None or f.t_us >= since_us)
                   and (until_us is None or f.t_us < until_us))

    def airtime_by_device(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.frames:
            if f.uplink:
                out[f.dev_eui] = out.get(f.dev_eui, 0) + f.airtime_us
        return out

    def write_phy_log(self, path) -> int:
        """Every PHYPayload of the run as JSON lines with the keys to check it (owner-only
        file: it holds session keys and AppKeys). Returns the number of lines."""
        path = Path(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            for rec in self.frames:
                f.write(json.dumps(phy_log_line(rec), separators=(",", ":")) + "\n")
        return len(self.frames)

    # --- inside the server -------------------------------------------------------------
    def _device(self, eui: str) -> _Device:
        dev = self._devices.get(eui)
        if dev is None:
            dev = self._devices[eui] = _Device()
        return dev

    def _log(self, record, entry: PhyRecord) -> PhyRecord:
        self.frames.append(entry)
        self._phy_of[id(record)] = entry
        return entry

    def _new_dev_addr(self) -> int:
        used = {s.dev_addr for s in self.sessions.values()}
        while True:
            # Type-0 NetID: DevAddr = 0 | NwkID (6 bits) | NwkAddr (25 bits).
            dev_addr = (NET_ID & 0x3F) << 25 | self.rng.getrandbits(25)
            if dev_addr not in used:
                return dev_addr

    def _drop(self, rec: Uplink, reason: str) -> Delivery:
        rec.reason = reason
        self.lost.append(rec)
        entry = self._phy_of.get(id(rec))
        if entry is not None:
            entry.received, entry.reason = False, reason
        return Delivery(received=False, reason=reason)

    def _hear(self, dev: _Device, rec, dr: int, channel_hz: int, t_us: int,
              airtime_us: int | None, tx_power_index: int):
        """Link budget and collisions at the gateway: (reason or "", rssi, snr)."""
        if dr not in eu868.DATA_RATES:
            return "", None, None            # FSK (DR7) is outside the LoRa radio model
        sf, bw = eu868.DATA_RATES[dr]
        rssi, snr = dev.link.measure(radio.tx_eirp_dbm(tx_power_index), bw, self.radio_rng)
        rec.rssi, rec.snr = round(rssi, 1), round(radio.reported_snr(snr), 1)
        if not radio.demodulates(snr, sf):
            return "link budget", rssi, snr
        if channel_hz and airtime_us:
            tx = radio.Transmission(t_us, airtime_us, channel_hz, sf, bw, rssi, rec)
            for loser in self._air.add(tx):
                if loser is not tx:
                    self._collided(loser.record)
            if tx.collided:
                return "collision", rssi, snr
        return "", rssi, snr

    def _collided(self, record) -> None:
        """A frame found collided after it was handled: move it to `lost`. (The device was
        answered already; see the module's limits.)"""
        moved = False
        if isinstance(record, Uplink):
            for bucket in (self.uplinks, self.duplicates):
                if any(r is record for r in bucket):
                    bucket[:] = [r for r in bucket if r is not record]
                    record.reason = "collision"
                    self.lost.append(record)
                    moved = True
        elif isinstance(record, JoinAttempt) and record.accepted:
            record.accepted, record.reason = False, "collision"
            moved = True
        entry = self._phy_of.get(id(record))
        if moved and entry is not None:
            entry.received, entry.reason = False, "collision"

    def _check_fcnt(self, dev: _Device, session: JoinAccept, phy: bytes) -> tuple[str, int]:
        """Rebuild the 32-bit FCntUp from the 16 bits on air and check the MIC with it."""
        fcnt16 = lorawan.parse_data_frame(phy).fcnt16
        last = dev.fcnt_up
        if last is None:
            candidates = [fcnt16]
        else:
            base = (last & ~0xFFFF) | fcnt16
            candidates = [base, base + FCNT_GAP] if base <= last else [base]
        for c in candidates:
            if c <= 0xFFFFFFFF and lorawan.verify_data_frame(phy, session.nwk_skey, c):
                if last is not None and c < last:
                    return "frame counter replay", c
                return ("retransmission" if c == last else "ok"), c
        return "MIC mismatch", -1

    def _read_fopts(self, dev: _Device, rec: Uplink, dr: int) -> list[bytes]:
        """MAC commands from the device: the answers they call for (LinkCheckAns)."""
        answers = []
        cmds, i = rec.fopts, 0
        lengths = {0x02: 0, 0x03: 1, 0x04: 0, 0x05: 1, 0x06: 2, 0x07: 1, 0x08: 0, 0x09: 0,
                   0x0A: 1, 0x0D: 0}
        while i < len(cmds) and cmds[i] in lengths:
            cid, arg = cmds[i], cmds[i + 1:i + 1 + lengths[cmds[i]]]
            i += 1 + lengths[cid]
            if cid == 0x02 and rec.snr is not None:       # LinkCheckReq -> LinkCheckAns
                sf, _ = eu868.DATA_RATES[dr]
                margin = max(0, min(254, int(rec.snr - radio.required_snr_db(sf))))
                answers.append(bytes([0x02, margin, 1]))
            elif cid == 0x03 and len(arg) == 1 and arg[0] & 0x07 == 0x07 and dev.pending_adr:
                dev.tx_power_index = dev.pending_adr[1]   # LinkADRAns: all bits ACK
                dev.pending_adr = None
        return answers

    def _adr_decision(self, dev: _Device, rec: Uplink) -> tuple[int, int, int] | None:
        if not rec.adr or not dev.history.entries or rec.dr not in eu868.DATA_RATES:
            return None
        want = adr_algo.decide(dev.history, rec.dr, dev.tx_power_index,
                               self.installation_margin_db)
        if want == (rec.dr, dev.tx_power_index):
            return None
        return (want[0], want[1], CH_MASK)

    def _answer(self, dev: _Device, rec: Uplink, mac: list[bytes]) -> Delivery:
        """Class A: what the network sends back in RX1 (or RX2) after a received uplink."""
        eui = rec.dev_eui
        session = self.sessions[eui]
        adr_cmd = self._adr_decision(dev, rec)
        fopts = b"".join(mac)
        if adr_cmd:
            fopts += lorawan.link_adr_req(adr_cmd[0], adr_cmd[1], adr_cmd[2])
        if not (rec.confirmed or dev.queue or fopts or rec.adr_ack_req):
            return Delivery(received=True)
        end = rec.t_us + rec.airtime_us
        rx1_dr = rec.dr if rec.dr in eu868.DATA_RATES else None
        # The queued payload rides along only if it fits the window's data rate.
        window, chosen = self._pick_window(end, rx1_dr, rec.channel_hz,
                                           eu868.RECEIVE_DELAY1_US, eu868.RECEIVE_DELAY2_US)
        if window == 0:
            return Delivery(received=True, reason="gateway duty cycle")
        dl_dr = chosen[1]
        item = None
        if dev.queue and (dl_dr is None or len(dev.queue[0][1])
                          <= eu868.max_payload(dl_dr, len(fopts))):
            item = dev.queue.popleft()
        fcnt_down = dev.fcnt_down
        dev.fcnt_down += 1
        phy = lorawan.data_frame(session.nwk_skey, session.app_skey, session.dev_addr,
                                 fcnt_down, False, False, item[0] if item else None,
                                 item[1] if item else b"", fopts, adr=rec.adr,
                                 ack=rec.confirmed, fpending=bool(dev.queue))
        dl = Downlink(chosen[0], eui, fcnt_down, rec.confirmed, item[0] if item else None,
                      item[1] if item else b"", fopts, window, dl_dr or 0, chosen[2], 0, phy)
        entry = PhyRecord(0, False, lorawan.MTYPE_NAMES[lorawan.UNCONFIRMED_DOWN], eui, phy, 0,
                          fcnt=fcnt_down, port=dl.port, payload=dl.payload, session=session)
        lost, rssi, snr = self._transmit_down(dev, dl, entry, chosen)
        if adr_cmd:
            dev.pending_adr = adr_cmd[:2]       # sent; the device may not have heard it
        if lost:
            return Delivery(received=True, reason=f"downlink lost ({lost})")
        return Delivery(received=True, ack=rec.confirmed, downlink=item, adr=adr_cmd, phy=phy,
                        window=window, fpending=bool(dev.queue), rssi=rssi, snr=snr)

    def _pick_window(self, end_us: int, rx1_dr, channel_hz: int, delay1: int, delay2: int):
        """(window, (t_us, dr, channel, power)): RX1 unless the gateway's duty cycle forbids
        it, then RX2; (0, None) if neither is free."""
        rx1_ch = channel_hz or eu868.DEFAULT_CHANNELS[0]
        options = [(1, (end_us + delay1, rx1_dr, rx1_ch, radio.GATEWAY_RX1_DBM)),
                   (2, (end_us + delay2, eu868.RX2_DR, eu868.RX2_FREQUENCY,
                        radio.GATEWAY_RX2_DBM))]
        for window, (t, dr, ch, power) in options:
            if self._gateway_duty.wait_us(t, ch) == 0:
                return window, (t, dr, ch, power)
        return 0, None

    def _transmit_down(self, dev: _Device, dl: Downlink, entry: PhyRecord, chosen):
        """The gateway sends `dl`; (reason lost or "", rssi, snr) at the device."""
        t, dr, ch, power = chosen
        rssi, snr = radio.BENCH_RSSI_DBM, radio.BENCH_SNR_DB
        lost = ""
        if dr is not None:
            dl.airtime_us = eu868.airtime_us(dr, len(dl.phy), uplink=False)
            self._gateway_duty.record(t, ch, dl.airtime_us)
            sf, bw = eu868.DATA_RATES[dr]
            rssi, true_snr = dev.link.measure(power, bw, self.radio_rng)
            snr = radio.reported_snr(true_snr)
            if not radio.demodulates(true_snr, sf):
                lost = "link budget"
        entry.t_us, entry.airtime_us, entry.dr = t, dl.airtime_us, dr
        if lost:
            dl.delivered, dl.reason = False, lost
            entry.received, entry.reason = False, lost
        self.downlinks.append(dl)
        self.frames.append(entry)
        return lost, int(round(rssi)), int(round(snr))

    def _send_down(self, dev: _Device, eui: str, phy: bytes, end_us: int, dr, channel_hz: int,
                   delay1: int, delay2: int, entry: PhyRecord) -> tuple[int, str]:
        """A join-accept: (window, reason lost or "")."""
        window, chosen = self._pick_window(end_us, dr, channel_hz, delay1, delay2)
        if window == 0:
            entry.received, entry.reason = False, "gateway duty cycle"
            self.frames.append(entry)
            return 0, "gateway duty cycle"
        dl = Downlink(chosen[0], eui, None, False, window=window, dr=chosen[1] or 0,
                      channel_hz=chosen[2], phy=phy)
        lost, _, _ = self._transmit_down(dev, dl, entry, chosen)
        return window, lost


def phy_log_line(rec: PhyRecord) -> dict:
    """One JSON line of the PHY log."""
    line = {"t_us": rec.t_us, "direction": "up" if rec.uplink else "down", "type": rec.kind,
            "dev_eui": rec.dev_eui, "phy": rec.phy.hex(), "dr": rec.dr,
            "airtime_us": rec.airtime_us, "received": rec.received}
    if rec.reason:
        line["reason"] = rec.reason
    if rec.kind in ("JoinRequest", "JoinAccept"):
        line.update(join_eui=rec.join_eui.hex().upper(), dev_nonce=rec.dev_nonce,
                    app_key=rec.app_key.hex())
    s = rec.session
    if s is not None:
        line.update(dev_addr=f"{s.dev_addr:08X}", nwk_skey=s.nwk_skey.hex(),
                    app_skey=s.app_skey.hex())
        if rec.kind == "JoinAccept":
            line.update(join_nonce=s.join_nonce, net_id=f"{s.net_id:06X}")
    if rec.kind not in ("JoinRequest", "JoinAccept"):
        line.update(fcnt=rec.fcnt, port=rec.port, payload=rec.payload.hex())
    return line
