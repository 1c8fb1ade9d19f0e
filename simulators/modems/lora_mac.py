"""The LoRaWAN class-A end-device MAC that every modem model shares (EU868, OTAA).

A dialect model (RAK3172 RUI3, Wio-E5, RN2483) keeps its command parser, its replies, its
events and its quirks; what happens on air and in the MAC is here, once:

- the session (DevAddr, FCntUp) and what survives a reset: `MacNvm` holds what the module
  keeps in flash (EUIs, AppKey, DR setting, ADR switch, DevNonce, last JoinNonce, receive
  delays); the duty-cycle record is regulatory and survives too; the session, the current
  DR and everything in flight are RAM and go with `reset()`;
- OTAA joins: DevNonce as a counter persisted before use (LoRaWAN 1.0.4 section 6.2.5), the
  join-accept in RX1 after JOIN_ACCEPT_DELAY1, no answer by the end of RX2; optionally the
  LoRaMac-node rule that rejects a JoinNonce equal to the stored one;
- channel choice and the sub-band duty cycle (`eu868.DutyCycle`): a blocked join or uplink
  transmits nothing and reports the wait;
- uplinks: FCntUp advances per new frame, retransmissions of a confirmed frame reuse it
  (LoRaWAN 1.0.x section 18.4) after RX2 plus a dialect-chosen ACK timeout;
- receive windows: an answer lands in the window the network chose (`Delivery.window`,
  `JoinAccept.rx_window`): RX1 at RECEIVE_DELAY1 (JOIN_ACCEPT_DELAY1) plus its time on air
  at the uplink's DR, RX2 at RECEIVE_DELAY2 (JOIN_ACCEPT_DELAY2) at DR0; silence ends with
  RX2 plus a short preamble search;
- ADR (LoRaWAN 1.0.4 section 4.3.1.1 and 5.3): uplinks carry the ADR bit when ADR is on;
  a LinkADRReq (`Delivery.adr` = (dr, tx_power_index, ch_mask)) is applied whole or not at
  all and answered by a LinkADRAns in the next uplink's FOpts (which count against the
  payload room: `max_payload()`); without any downlink for ADR_ACK_LIMIT uplinks the
  device sets ADRACKReq, and after ADR_ACK_DELAY more it steps back to full power, then
  one DR down per ADR_ACK_DELAY.

How a dialect model uses it (composition: the model owns one `LoraMac`):

    @dataclass
    class Nvm(MacNvm):                        # the module's flash: MAC fields + dialect ones
        port: int = 8

    class Modem:
        def __init__(self, clock, network, dev_eui, rng=None):
            self.rng = rng or random.Random(int.from_bytes(dev_eui, "big"))
            self.nvm = Nvm(dev_eui=bytes(dev_eui))
            self.mac = LoraMac(clock, network, self.nvm, self.rng,
                               ack_timeout_us=(1_000_000, 3_000_000), check_join_nonce=True)

        def join_command(self):
            if self.mac.busy: return "busy"
            wait_us = self.mac.join(self.mac.dr, self._joined)    # 0: the request is on air
            if wait_us: return "duty cycle, %d ms" % ceil_ms(wait_us)
        def _joined(self, accept, why):       # accept: JoinAccept or None; why: JOIN_*
            ...print the dialect's result line...

        def send_command(self, port, data, confirmed):
            if not self.mac.joined: return "not joined"
            if self.mac.busy: return "busy"
            if len(data) > self.mac.max_payload(): return "too long"
            wait_us = self.mac.uplink(port, data, confirmed, trials, self._sent)
        def _sent(self, tx, delivery):        # delivery None: nothing in RX1/RX2
            acked = tx.confirmed and delivery is not None and delivery.ack
            ...print the result, then delivery.downlink if any...

        def power_cut(self):                  # and the dialect's soft reset
            self.mac.reset()                  # session and in-flight gone, flash and duty stay

`mac.later(delay_us, fn, *args)` schedules on the virtual clock; `reset()` cancels what the
MAC scheduled (a dialect cancels its own timers). `retry_join_later` keeps a retry count
for dialects with automatic join retries (RUI3 AT+JOIN=1:0:<period>:<attempts>).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from simulators.clock import Clock
from simulators.network import Network, eu868

# Join results handed to the join callback.
JOIN_OK = "ok"
JOIN_RX_TIMEOUT = "rx timeout"            # no join-accept in RX1 or RX2
JOIN_NONCE_REPEATED = "join nonce"        # accept rejected: JoinNonce equal to the stored one

# How long the radio listens in an empty receive window. An assumption: LoRaMac-node opens
# it for a few symbols of preamble search (RegionCommonComputeRxWindowParameters).
RX_WINDOW_SYMBOLS = 8
LORAWAN_ACK_TIMEOUT_US = (1_000_000, 3_000_000)   # LoRaWAN 1.0.x ACK_TIMEOUT 2 s +- 1 s
MAX_DR = 5                                # EU868 default channels carry DR0..DR5
MAX_TX_POWER_INDEX = 7                    # EU868 TXPower 0..7 (max EIRP - 2 dB per step)
DEFAULT_CH_MASK = 0x0007                  # the three default channels
ADR_ACK_LIMIT = 64                        # EU868 (RP002), LoRaWAN 1.0.4 section 4.3.1.1
ADR_ACK_DELAY = 32
CID_LINK_ADR = 0x03


@dataclass
class MacNvm:
    """What the MAC needs from the module's flash; a dialect subclasses it with its own
    settings. Everything here survives a soft reset and a power cut."""
    dev_eui: bytes
    app_eui: bytes = bytes(8)           # JoinEUI
    app_key: bytes = bytes(16)
    dr: int = 0                         # the DR setting; the current DR is LoraMac.dr
    adr: int = 1
    dev_nonce: int = 0                  # last DevNonce used (LoRaWAN 1.0.4 counter)
    join_nonce: int | None = None       # JoinNonce of the last accepted join
    jn1dl_ms: int = eu868.JOIN_ACCEPT_DELAY1_US // 1000
    jn2dl_ms: int = eu868.JOIN_ACCEPT_DELAY2_US // 1000
    rx1dl_ms: int = eu868.RECEIVE_DELAY1_US // 1000
    rx2dl_ms: int = eu868.RECEIVE_DELAY2_US // 1000


@dataclass
class Session:
    dev_addr: int
    join_nonce: int | None
    fcnt_up: int = 0


@dataclass
class Tx:
    """One uplink in flight (retransmissions of a confirmed frame reuse its FCnt)."""
    port: int | None                    # None: an empty frame, no FPort on air
    data: bytes
    confirmed: bool
    dr: int
    fcnt: int
    trials: int
    trial: int = 1
    channel: int = 0                    # of the latest transmission
    fopts: bytes = b""                  # MAC command answers riding along
    adr_ack_req: bool = False


def ceil_ms(us: int) -> int:
    return -(-us // 1000)


def rx_window_us(dr: int) -> int:
    sf, bw = eu868.DATA_RATES[dr]
    return RX_WINDOW_SYMBOLS * (2 ** sf) * 1_000_000 // bw


class Timers:
    """Events on the virtual clock that one owner can cancel all at once (a reset)."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self._events: list = []

    def later(self, delay_us: int, fn, *args):
        now = self.clock.now_us
        self._events = [e for e in self._events if not e.cancelled and e.at_us >= now]
        ev = self.clock.call_later(delay_us, fn, *args)
        self._events.append(ev)
        return ev

    def cancel_all(self) -> None:
        for ev in self._events:
            ev.cancel()
        self._events = []


class LoraMac:
    def __init__(self, clock: Clock, network: Network, nvm: MacNvm,
                 rng: random.Random | None = None, *,
                 ack_timeout_us: tuple[int, int] = LORAWAN_ACK_TIMEOUT_US,
                 check_join_nonce: bool = True):
        self.clock = clock
        self.network = network
        self.nvm = nvm
        self.rng = rng or random.Random(int.from_bytes(nvm.dev_eui, "big"))
        self.ack_timeout_us = ack_timeout_us
        # LoRaMac-node 4.7 (LoRaMacCrypto.c) refuses a 1.0.x accept whose JoinNonce equals
        # the stored one; a LoRaWAN 1.0.2 stack does not look at it.
        self.check_join_nonce = check_join_nonce
        self.duty = eu868.DutyCycle(self.rng)    # regulatory: survives resets
        self.duty_cycle = True                   # a dialect may let the user switch it off
        self.timers = Timers(clock)
        self._join_retry_event = None
        self.reset()

    # --- state ----------------------------------------------------------------------
    def reset(self) -> None:
        """RAM after a reset or power cut: no session, nothing in flight."""
        self.timers.cancel_all()
        self.session: Session | None = None
        self.busy: str | None = None             # "join" or "send" while on air / listening
        self.join_retries = 0
        self._join_retry_event = None
        self._new_session_radio()

    def _new_session_radio(self) -> None:
        # What a join (or a reset) puts back: the DR setting, full power, no ADR history.
        self.dr = self.nvm.dr
        self.tx_power_index = 0
        self.adr_ack_cnt = 0
        self.pending_fopts = b""

    @property
    def joined(self) -> bool:
        return self.session is not None

    def later(self, delay_us: int, fn, *args):
        return self.timers.later(delay_us, fn, *args)

    def max_payload(self) -> int:
        """Largest application payload at the current DR, less the MAC command answers
        that ride along in the next uplink's FOpts."""
        return eu868.max_payload(self.dr, len(self.pending_fopts))

    def channel(self) -> tuple[int, int]:
        """(channel, wait_us): where the next frame would go and how long it must wait."""
        channel, wait = self.duty.pick_channel(self.clock.now_us)
        return channel, (wait if self.duty_cycle else 0)

    # --- join -------------------------------------------------------------------------
    def join(self, dr: int, done) -> int:
        """Send a join request at `dr` now: 0, and later `done(accept, why)` with the
        JoinAccept (why JOIN_OK) or None (JOIN_RX_TIMEOUT / JOIN_NONCE_REPEATED). A
        duty-cycle block sends nothing and returns the wait in us. The caller checks `busy`."""
        channel, wait = self.channel()
        if wait:
            return wait
        self.nvm.dev_nonce = (self.nvm.dev_nonce + 1) & 0xFFFF   # persisted before use
        toa = eu868.airtime_us(dr, eu868.JOIN_REQUEST_PHY_LEN)
        self.duty.record(self.clock.now_us, channel, toa)
        self.busy = "join"
        self.later(toa, self._join_sent, self.nvm.dev_nonce, dr, self.clock.now_us, toa, channel,
                   done)
        return 0

    def _join_sent(self, dev_nonce: int, dr: int, t_start: int, toa: int, channel: int,
                   done) -> None:
        accept = self.network.join_request(self.nvm.dev_eui, self.nvm.app_eui, self.nvm.app_key,
                                           dev_nonce, t_us=t_start, dr=dr, airtime_us=toa,
                                           channel_hz=channel, tx_power_index=0)
        if accept is None:
            self.later(self.nvm.jn2dl_ms * 1000 + rx_window_us(eu868.RX2_DR),
                       self._join_done, None, JOIN_RX_TIMEOUT, done)
            return
        if getattr(accept, "rx_window", 1) == 2:
            at = self.nvm.jn2dl_ms * 1000 + eu868.airtime_us(
                eu868.RX2_DR, eu868.JOIN_ACCEPT_PHY_LEN, uplink=False)
        else:
            at = self.nvm.jn1dl_ms * 1000 + eu868.airtime_us(dr, eu868.JOIN_ACCEPT_PHY_LEN,
                                                              uplink=False)
        if self.check_join_nonce and accept.join_nonce == self.nvm.join_nonce:
            self.later(at, self._join_done, None, JOIN_NONCE_REPEATED, done)
        else:
            self.later(at, self._join_done, accept, JOIN_OK, done)

    def _join_done(self, accept, why: str, done) -> None:
        self.busy = None
        if accept is not None:
            self.session = Session(dev_addr=accept.dev_addr, join_nonce=accept.join_nonce)
            self.nvm.join_nonce = accept.join_nonce
            self._new_session_radio()
        done(accept, why)

    def retry_join_later(self, period_us: int, attempts: int, start) -> bool:
        """Count a failed attempt; while fewer than `attempts` retries were made, call
        `start()` after `period_us` and return True. The count restarts when exhausted."""
        self.cancel_join_retry()
        self.join_retries += 1
        if self.join_retries > attempts:
            self.join_retries = 0
            return False
        self._join_retry_event = self.later(period_us, start)
        return True

    def cancel_join_retry(self) -> None:
        if self._join_retry_event is not None:
            self._join_retry_event.cancel()
            self._join_retry_event = None

    # --- uplink -----------------------------------------------------------------------
    def uplink(self, port: int | None, data: bytes, confirmed: bool, trials: int, done) -> int:
        """Transmit a new frame at the current DR: 0, and `done(tx, delivery)` after the
        receive windows (`delivery` None when nothing came). A duty-cycle block sends
        nothing, keeps FCntUp and returns the wait in us. The caller checks `joined`,
        `busy` and the size first; `port` None sends an empty frame."""
        channel, wait = self.channel()
        if wait:
            return wait
        self._adr_backoff()
        tx = Tx(port, bytes(data), bool(confirmed), self.dr, self.session.fcnt_up,
                trials=max(1, trials) if confirmed else 1, fopts=self.pending_fopts,
                adr_ack_req=self._adr_bit() and self.adr_ack_cnt >= ADR_ACK_LIMIT)
        self.pending_fopts = b""              # sent with this frame (and its retransmissions)
        self.session.fcnt_up += 1
        self.busy = "send"
        self._transmit(tx, channel, done)
        return 0

    def _transmit(self, tx: Tx, channel: int, done) -> None:
        tx.channel = channel
        toa = eu868.airtime_us(tx.dr, eu868.phy_len_uplink(len(tx.data), len(tx.fopts)))
        self.duty.record(self.clock.now_us, channel, toa)
        self.later(toa, self._uplink_sent, tx, self.clock.now_us, toa, done)

    def _uplink_sent(self, tx: Tx, t_start: int, toa: int, done) -> None:
        delivery = self.network.uplink(self.nvm.dev_eui, tx.port, tx.data, tx.confirmed, tx.dr,
                                       tx.fcnt, t_start, toa, tx.channel,
                                       adr=self._adr_bit(), adr_ack_req=tx.adr_ack_req,
                                       fopts=tx.fopts, tx_power_index=self.tx_power_index)
        acked = delivery.received and tx.confirmed and delivery.ack
        rx2_end = self.nvm.rx2dl_ms * 1000 + rx_window_us(eu868.RX2_DR)
        if tx.confirmed and not acked and tx.trial < tx.trials:
            self.later(rx2_end + self.rng.randrange(*self.ack_timeout_us), self._retransmit,
                       tx, done)
            return
        # What the network sends back (data, an ACK, MAC commands) arrives in the window it
        # chose; silence lasts until RX2 is over.
        window = getattr(delivery, "window", 1 if delivery.received else 0)
        if delivery.received and window and (acked or delivery.downlink is not None
                                             or getattr(delivery, "adr", None) is not None
                                             or getattr(delivery, "phy", None)):
            if getattr(delivery, "phy", None):
                dl_len = len(delivery.phy)
            else:
                dl = delivery.downlink
                dl_len = eu868.phy_len_uplink(len(dl[1]) if dl else 0)
            if window == 2:
                at = self.nvm.rx2dl_ms * 1000 + eu868.airtime_us(eu868.RX2_DR, dl_len,
                                                                  uplink=False)
            else:
                at = self.nvm.rx1dl_ms * 1000 + eu868.airtime_us(tx.dr, dl_len, uplink=False)
            self.later(at, self._uplink_done, tx, delivery, done)
        else:
            self.later(rx2_end, self._uplink_done, tx, None, done)

    def _retransmit(self, tx: Tx, done) -> None:
        channel, wait = self.channel()
        if wait:                              # the MAC holds the retry until the band is free
            self.later(wait, self._retransmit, tx, done)
            return
        tx.trial += 1
        self._transmit(tx, channel, done)

    def _uplink_done(self, tx: Tx, delivery, done) -> None:
        self.busy = None
        if delivery is not None:
            self.adr_ack_cnt = 0              # any downlink answers the ADRACKReq
            decision = getattr(delivery, "adr", None)
            if decision is not None:
                self.apply_adr(decision)
        done(tx, delivery)

    # --- ADR --------------------------------------------------------------------------
    def _adr_bit(self) -> bool:
        return bool(self.nvm.adr)

    def apply_adr(self, decision) -> bool:
        """Take a LinkADRReq, `decision` = (dr, tx_power_index, ch_mask) as in
        `Delivery.adr`. With ADR on and every field acceptable (a DR and power the default
        channels support, a mask enabling one of them) the DR and power change; the
        LinkADRAns with its three status bits goes in the next uplink's FOpts. Returns
        whether it was applied. With ADR off the request is ignored (the network sends
        none: the uplinks do not carry the ADR bit)."""
        if not self.nvm.adr:
            return False
        dr, power, ch_mask = decision
        power_ok = 0 <= power <= MAX_TX_POWER_INDEX
        dr_ok = 0 <= dr <= MAX_DR
        mask_ok = ch_mask & DEFAULT_CH_MASK != 0 and ch_mask & ~DEFAULT_CH_MASK & 0xFFFF == 0
        self.pending_fopts = bytes([CID_LINK_ADR, power_ok << 2 | dr_ok << 1 | mask_ok])
        if not (power_ok and dr_ok and mask_ok):
            return False
        self.dr, self.tx_power_index = dr, power
        return True

    def _adr_backoff(self) -> None:
        """Before each new uplink with ADR on: count it; past ADR_ACK_LIMIT + ADR_ACK_DELAY
        without a downlink, first full power, then one DR down, every ADR_ACK_DELAY."""
        if not self._adr_bit():
            return
        self.adr_ack_cnt += 1
        over = self.adr_ack_cnt - ADR_ACK_LIMIT
        if over >= ADR_ACK_DELAY and over % ADR_ACK_DELAY == 0:
            if self.tx_power_index:
                self.tx_power_index = 0
            elif self.dr > 0:
                self.dr -= 1
