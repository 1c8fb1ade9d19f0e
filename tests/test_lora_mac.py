"""The LoRaWAN MAC every modem model shares (simulators/modems/lora_mac.py), driven directly
on the virtual clock against the network model: what survives a reset, and ADR."""
import random

from simulators.clock import Clock
from simulators.modems.lora_mac import (ADR_ACK_DELAY, ADR_ACK_LIMIT, JOIN_OK, LoraMac,
                                        MacNvm)
from simulators.network import Network, eu868, lorawan

DEV_EUI = bytes.fromhex("0004A30B001C0530")


class Device:
    def __init__(self, adr=1, dr=0, seed=1):
        self.clock = Clock()
        self.net = Network(seed=seed)
        self.nvm = MacNvm(dev_eui=DEV_EUI, app_eui=bytes(8), app_key=bytes(range(16)), dr=dr,
                          adr=adr)
        self.mac = LoraMac(self.clock, self.net, self.nvm, random.Random(seed))
        self.results = []

    def settle(self):
        """Until the MAC is idle and every sub-band is free again."""
        self.clock.advance_until(lambda: self.mac.busy is None, self.clock.now_us + 60_000_000)
        ch, wait = self.mac.channel()
        self.clock.advance_to(self.clock.now_us + wait)

    def join(self):
        assert self.mac.join(self.mac.dr, lambda a, why: self.results.append(why)) == 0
        self.settle()
        assert self.results.pop() == JOIN_OK

    def send(self, data=b"\x01", confirmed=False):
        assert self.mac.uplink(2, data, confirmed, 1,
                               lambda tx, d: self.results.append((tx, d))) == 0
        self.settle()
        return self.results.pop()


def test_a_reset_loses_the_session_and_keeps_dev_nonce_and_the_duty_cycle_record():
    dev = Device()
    dev.join()
    dev.send()
    assert dev.mac.channel()[1] == 0
    dev.mac.uplink(2, b"\x02", False, 1, lambda tx, d: None)
    dev.mac.reset()
    assert not dev.mac.joined and dev.mac.busy is None
    assert dev.nvm.dev_nonce == 1 and dev.nvm.join_nonce is not None
    assert dev.mac.channel()[1] > 0, "the regulatory off-time outlives a reset"


def test_with_adr_on_the_networks_link_adr_req_sets_dr_and_power_and_is_answered():
    dev = Device(adr=1, dr=0)
    dev.join()
    tx, delivery = dev.send()
    assert delivery is not None and delivery.adr is not None
    dr, power, _ = delivery.adr
    assert (dev.mac.dr, dev.mac.tx_power_index) == (dr, power) and dr > 0
    # The LinkADRAns rides in the next uplink's FOpts, and takes room from the payload.
    assert dev.mac.max_payload() == eu868.max_payload(dr) - 2
    tx, delivery = dev.send()
    up = dev.net.uplinks[-1]
    assert up.fopts == bytes([lorawan.CID_LINK_ADR, 0x07]) and up.dr == dr and up.adr
    answered_again = delivery is not None and delivery.adr is not None
    assert dev.mac.max_payload() == eu868.max_payload(dev.mac.dr) - 2 * answered_again


def test_with_adr_off_the_uplinks_carry_no_adr_bit_and_the_rate_stays():
    dev = Device(adr=0, dr=0)
    dev.join()
    for _ in range(3):
        tx, delivery = dev.send()
        assert delivery is None
    assert dev.mac.dr == 0 and not any(u.adr for u in dev.net.uplinks)


def test_a_link_adr_req_the_device_cannot_follow_is_refused_whole():
    dev = Device(adr=1, dr=2)
    dev.join()
    assert not dev.mac.apply_adr((6, 1, 0x0007))       # DR6: no default channel has it
    assert (dev.mac.dr, dev.mac.tx_power_index) == (2, 0)
    assert dev.mac.pending_fopts == bytes([lorawan.CID_LINK_ADR, 0b101])
    assert not dev.mac.apply_adr((3, 1, 0x0010))       # a channel the device does not have
    assert dev.mac.pending_fopts == bytes([lorawan.CID_LINK_ADR, 0b110])


def test_without_downlinks_the_device_asks_then_steps_its_rate_down():
    dev = Device(adr=1, dr=5)
    dev.join()
    dev.net.available = False                          # nothing comes back any more
    flags = []
    for _ in range(ADR_ACK_LIMIT + ADR_ACK_DELAY + 1):
        dev.send()
        up = dev.net.lost[-1]
        flags.append((up.adr_ack_req, up.dr))
    assert flags[ADR_ACK_LIMIT - 2] == (False, 5)
    assert flags[ADR_ACK_LIMIT - 1] == (True, 5)       # the 64th uplink asks
    assert flags[ADR_ACK_LIMIT + ADR_ACK_DELAY - 2] == (True, 5)
    assert flags[ADR_ACK_LIMIT + ADR_ACK_DELAY - 1] == (True, 4)   # 32 later: one DR down


def test_a_downlink_answers_the_adr_ack_request():
    dev = Device(adr=1, dr=5)
    dev.join()
    dev.mac.adr_ack_cnt = ADR_ACK_LIMIT
    tx, delivery = dev.send()
    assert tx.adr_ack_req and delivery is not None     # the network answers the request
    assert dev.mac.adr_ack_cnt == 0
