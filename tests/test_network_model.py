"""The EU868 network server + gateway model, driven directly through the API the modem
models use (simulators/network/__init__.py)."""
import os
import stat

import pytest

from simulators.network import NET_ID, Network, eu868, lorawan, radio

APP_KEY = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3C")
JOIN_EUI = bytes.fromhex("70B3D57ED0000001")
MIN = 60_000_000


def eui(n: int) -> bytes:
    return bytes.fromhex("AC1F09FFFE") + n.to_bytes(3, "big")


def join(net, dev, dev_nonce=1, t_us=0, **kw):
    accept = net.join_request(dev, JOIN_EUI, APP_KEY, dev_nonce, t_us, **kw)
    assert accept is not None, net.joins[-1]
    return accept


def send(net, dev, fcnt, t_us, dr=5, payload=b"\x01\x02", confirmed=False, channel=868_100_000,
         **kw):
    toa = eu868.airtime_us(dr, eu868.phy_len_uplink(len(payload)))
    return net.uplink(dev, 2, payload, confirmed, dr, fcnt, t_us, toa, channel, **kw)


# --- OTAA ------------------------------------------------------------------------------
def test_every_accept_has_a_fresh_join_nonce_and_keys_derived_from_the_app_key():
    net = Network(seed=1)
    first, second = join(net, eui(1), 1), join(net, eui(1), 2, t_us=10 * MIN)
    assert second.join_nonce > first.join_nonce
    for accept, dev_nonce in ((first, 1), (second, 2)):
        assert (accept.nwk_skey, accept.app_skey) == lorawan.session_keys(
            APP_KEY, accept.join_nonce, NET_ID, dev_nonce)
        ja = lorawan.open_join_accept(accept.phy, APP_KEY)      # what the device decrypts
        assert (ja.join_nonce, ja.net_id, ja.dev_addr) == (accept.join_nonce, NET_ID,
                                                           accept.dev_addr)
    assert first.nwk_skey != second.nwk_skey and first.app_skey != second.app_skey
    req = lorawan.parse_join_request(net.joins[0].phy, APP_KEY)
    assert (req.join_eui, req.dev_eui, req.dev_nonce) == (JOIN_EUI, eui(1), 1)


def test_a_dev_nonce_that_did_not_increase_is_ignored_with_its_reason():
    net = Network(seed=1)
    join(net, eui(1), 5)
    assert net.join_request(eui(1), JOIN_EUI, APP_KEY, 5, MIN) is None
    assert net.join_request(eui(1), JOIN_EUI, APP_KEY, 3, 2 * MIN) is None
    assert [j.reason for j in net.joins[1:]] == ["DevNonce not incremented"] * 2
    join(net, eui(1), 6, t_us=3 * MIN)
    join(net, eui(2), 1, t_us=4 * MIN)                # another device has its own count


# --- frame counters --------------------------------------------------------------------
def test_a_replayed_frame_counter_is_dropped_and_the_session_goes_on():
    net = Network(seed=1)
    join(net, eui(1))
    for n in range(3):
        assert send(net, eui(1), n, (n + 1) * MIN).received
    replay = send(net, eui(1), 1, 5 * MIN)
    assert not replay.received and replay.reason == "frame counter replay"
    assert net.lost[-1].fcnt == 1 and net.lost[-1].reason == "frame counter replay"
    assert send(net, eui(1), 3, 6 * MIN).received
    assert [u.fcnt for u in net.uplinks] == [0, 1, 2, 3]


def test_a_confirmed_retransmission_is_acked_again_but_passed_on_once():
    net = Network(seed=1)
    join(net, eui(1))
    first = send(net, eui(1), 0, MIN, confirmed=True)
    again = send(net, eui(1), 0, 2 * MIN, confirmed=True)
    assert first.ack and again.ack
    assert len(net.uplinks) == 1 and len(net.duplicates) == 1
    # Each ACK is its own downlink: FCntDown 0, then 1.
    assert [lorawan.parse_data_frame(d.phy).fcnt16 for d in (first, again)] == [0, 1]


def test_the_16_bit_counter_on_air_rolls_over_into_the_32_bit_counter():
    net = Network(seed=1)
    accept = join(net, eui(1))
    assert send(net, eui(1), 0xFFFF, MIN).received
    assert send(net, eui(1), 0x10000, 2 * MIN).received
    phy = net.uplinks[-1].phy
    assert lorawan.parse_data_frame(phy).fcnt16 == 0
    assert lorawan.verify_data_frame(phy, accept.nwk_skey, 0x10000)
    # A jump of more than 2^16 cannot be rebuilt from 16 bits: the MIC fails.
    assert send(net, eui(1), 0x30000, 3 * MIN).reason == "MIC mismatch"


def test_an_uplink_from_a_device_without_session_is_lost_with_its_reason():
    net = Network(seed=1)
    d = send(net, eui(9), 0, MIN)
    assert not d.received and net.lost[-1].reason == "unknown device (no session)"


def test_bad_input_raises_and_records_nothing():
    net = Network(seed=1)
    join(net, eui(1))
    before = (len(net.frames), len(net.uplinks), len(net.lost))
    with pytest.raises(ValueError):
        net.uplink(eui(1), 2, b"x", False, 5, -1, MIN, 40_000, 868_100_000)
    with pytest.raises(ValueError):
        net.uplink(eui(1), 300, b"x", False, 5, 0, MIN, 40_000, 868_100_000)
    with pytest.raises(ValueError):
        net.uplink(eui(1), 2, b"x", False, 5, 0, MIN, 40_000, 868_100_000, tx_power_index=8)
    with pytest.raises(ValueError):
        net.queue_downlink(eui(1), 0, b"x")
    with pytest.raises(ValueError):
        net.join_request(eui(1), JOIN_EUI, APP_KEY[:15], 2, MIN)
    assert (len(net.frames), len(net.uplinks), len(net.lost)) == before
    assert send(net, eui(1), 0, 2 * MIN).received        # the session is untouched


# --- link budget -------------------------------------------------------------------------
def loss(distance_m, dr, n=200, seed=4):
    net = Network(seed=seed)
    net.place(eui(1), distance_m=distance_m)
    accept = net.join_request(eui(1), JOIN_EUI, APP_KEY, 1, 0)    # no DR: always heard
    assert accept is not None
    for i in range(n):
        send(net, eui(1), i, (i + 1) * 10 * MIN, dr=dr)
    assert {u.reason for u in net.lost} <= {"link budget"}
    return len(net.lost) / n


def test_loss_by_link_budget_grows_with_distance_and_falls_with_the_spreading_factor():
    assert loss(500, dr=5) == 0
    mid = loss(3000, dr=5)              # SF7 floor -7.5 dB, mean SNR about -10 dB there
    assert 0.4 < mid < 0.95
    assert loss(3000, dr=0) < 0.02      # SF12 floor -20 dB: ten more dB of margin
    assert loss(20000, dr=0) == 1.0      # 19 dB below the SF12 floor: over 5 sigma


def test_an_unplaced_device_is_on_the_bench_and_loses_nothing():
    assert loss(None, dr=0) == 0


def test_a_join_request_beyond_the_link_budget_gets_no_answer():
    net = Network(seed=1)
    net.place(eui(1), distance_m=20000)
    assert net.join_request(eui(1), JOIN_EUI, APP_KEY, 1, 0, dr=0,
                            channel_hz=868_100_000) is None
    assert net.joins[-1].reason == "link budget"
    # The server never saw it: the same DevNonce is still good once the device is nearer.
    net.place(eui(1), distance_m=200)
    join(net, eui(1), 1, t_us=MIN, dr=0, channel_hz=868_100_000)


def test_a_downlink_the_device_cannot_hear_is_recorded_lost():
    net = Network(seed=1)
    # Shadowing off: the uplink arrives 1 dB above the SF12 floor, the 2 dB weaker RX1
    # downlink (14 dBm against the device's 16) 1 dB below it.
    floor = radio.noise_floor_dbm(125_000) + radio.required_snr_db(12)
    net.place(eui(1), path_loss_db=radio.DEVICE_MAX_EIRP_DBM - floor - 1, shadowing_db=0)
    join(net, eui(1))
    d = send(net, eui(1), 0, MIN, dr=0, confirmed=True)
    assert d.received and not d.ack and d.reason == "downlink lost (link budget)"
    assert not net.downlinks[-1].delivered and net.frames[-1].reason == "link budget"


# --- collisions --------------------------------------------------------------------------
def two_devices(net, loss_a=None, loss_b=None):
    for n, pl in ((1, loss_a), (2, loss_b)):
        if pl is not None:
            net.place(eui(n), path_loss_db=pl, shadowing_db=0)
        join(net, eui(n), t_us=0)


def test_overlapping_frames_of_equal_power_on_one_channel_and_sf_are_both_lost():
    net = Network(seed=1)
    two_devices(net)
    a = send(net, eui(1), 0, MIN, dr=3)
    b = send(net, eui(2), 0, MIN + 50_000, dr=3)
    assert a.received and not b.received        # a was answered before b was on air
    assert {(u.dev_eui, u.reason) for u in net.lost} == {
        (eui(1).hex().upper(), "collision"), (eui(2).hex().upper(), "collision")}
    assert net.uplinks == []


def test_a_frame_6_db_stronger_is_captured_in_either_order():
    for order in ((1, 2), (2, 1)):
        net = Network(seed=1)
        two_devices(net, loss_a=110, loss_b=117)        # device 1 is 7 dB stronger
        for k, n in enumerate(order):
            send(net, eui(n), 0, MIN + k * 30_000, dr=3)
        assert [u.dev_eui for u in net.uplinks] == [eui(1).hex().upper()]
        assert [(u.dev_eui, u.reason) for u in net.lost] == [(eui(2).hex().upper(), "collision")]


def test_frames_apart_in_channel_sf_or_time_do_not_collide():
    net = Network(seed=1)
    two_devices(net)
    send(net, eui(1), 0, MIN, dr=3)
    send(net, eui(2), 0, MIN, dr=3, channel=868_300_000)          # other channel
    send(net, eui(1), 1, 2 * MIN, dr=3)
    send(net, eui(2), 1, 2 * MIN, dr=4)                           # other SF
    # The first frame ends within the later one's first 3 preamble symbols: it locks on.
    toa = eu868.airtime_us(3, eu868.phy_len_uplink(2))
    send(net, eui(1), 2, 3 * MIN, dr=3)
    send(net, eui(2), 2, 3 * MIN + toa - 2 * 4096, dr=3)           # 2 symbols of SF9
    assert net.lost == [] and len(net.uplinks) == 6
    send(net, eui(1), 3, 4 * MIN, dr=3)
    send(net, eui(2), 3, 4 * MIN + toa - 4 * 4096, dr=3)           # 4 symbols: too many
    assert [u.reason for u in net.lost] == ["collision", "collision"]


def test_a_fleet_fed_node_by_node_gets_the_same_collisions_as_in_time_order():
    def run(order):
        net = Network(seed=2)
        for n in (1, 2, 3):
            join(net, eui(n), t_us=0)
        starts = {1: [MIN, 5 * MIN, 9 * MIN], 2: [MIN + 40_000, 7 * MIN], 3: [9 * MIN + 10_000]}
        for n in order:
            for i, t in enumerate(starts[n]):
                send(net, eui(n), i, t, dr=2)
        moved = net.resolve_collisions()
        return sorted((u.dev_eui[-1], u.fcnt) for u in net.lost), moved
    in_time, _ = run((1, 2, 3))
    assert in_time == [("1", 0), ("1", 2), ("2", 0), ("3", 0)]
    for order in ((3, 2, 1), (2, 1, 3)):
        lost, moved = run(order)
        assert lost == in_time and moved == []


# --- ADR -----------------------------------------------------------------------------------
def adr_walk(path_loss_db, n=12, report_power=True):
    """A device that applies every LinkADRReq: the (dr, tx_power_index) it ends at. With
    `report_power` False its modem does not tell the network its TX power."""
    net = Network(seed=1)
    net.place(eui(1), path_loss_db=path_loss_db, shadowing_db=0)
    join(net, eui(1))
    dr, txp, asked = 0, 0, []
    for i in range(n):
        kw = {"tx_power_index": txp} if report_power else {}
        d = send(net, eui(1), i, (i + 1) * 10 * MIN, dr=dr, adr=True, **kw)
        assert d.received
        if d.adr:
            asked.append(d.adr)
            cmd = lorawan.parse_data_frame(d.phy).fopts              # it rides in FOpts
            assert lorawan.parse_link_adr_req(cmd) == (d.adr[0], d.adr[1], d.adr[2], 1)
            dr, txp = d.adr[0], d.adr[1]
    return dr, txp, asked


def test_adr_raises_the_data_rate_then_lowers_the_power_of_a_strong_device():
    dr, txp, asked = adr_walk(110)          # SNR far above the SF12 floor
    # Margin at DR0: 10 (reported SNR) + 20 - 10 = 20 dB, 6 steps: DR5 and one power step.
    assert asked[0] == (5, 1, 0x0007)
    assert (dr, txp) == (5, radio.MAX_TX_POWER_INDEX)
    # A modem that does not report its power: the network takes the new DR as the answer.
    assert adr_walk(110, report_power=False)[:2] == (5, radio.MAX_TX_POWER_INDEX)


def test_adr_leaves_a_weak_device_at_its_data_rate():
    # SNR -12 dB at SF12: margin -12 + 20 - 10 = -2 dB, less than one 3 dB step.
    pl = radio.DEVICE_MAX_EIRP_DBM - radio.noise_floor_dbm(125_000) + 12
    dr, txp, asked = adr_walk(pl)
    assert (dr, txp, asked) == (0, 0, [])


def test_no_adr_decision_without_the_adr_bit():
    net = Network(seed=1)
    join(net, eui(1))
    assert send(net, eui(1), 0, MIN, dr=0).adr is None


# --- downlinks ------------------------------------------------------------------------------
def test_a_confirmed_uplink_is_acked_in_a_downlink_frame_an_unconfirmed_one_is_not():
    net = Network(seed=1)
    accept = join(net, eui(1))
    quiet = send(net, eui(1), 0, MIN)
    assert (quiet.ack, quiet.phy, quiet.window) == (False, None, 0)
    d = send(net, eui(1), 1, 2 * MIN, confirmed=True)
    assert d.ack and d.window == 1
    f = lorawan.open_data_frame(d.phy, accept.nwk_skey, accept.app_skey, 0)
    assert not f.uplink and f.ack and f.dev_addr == accept.dev_addr and f.port is None


def test_a_queued_downlink_is_delivered_once_in_rx1_after_the_next_uplink():
    net = Network(seed=1)
    accept = join(net, eui(1))
    net.queue_downlink(eui(1), 3, b"\x00\x07\x10")
    net.queue_downlink(eui(1), 4, b"\x01")
    first = send(net, eui(1), 0, MIN)
    assert first.downlink == (3, b"\x00\x07\x10") and first.window == 1 and first.fpending
    f = lorawan.open_data_frame(first.phy, accept.nwk_skey, accept.app_skey, 0)
    assert (f.port, f.frm_payload, f.fpending) == (3, b"\x00\x07\x10", True)
    second = send(net, eui(1), 1, 2 * MIN)
    assert second.downlink == (4, b"\x01") and not second.fpending
    assert send(net, eui(1), 2, 3 * MIN).downlink is None
    assert [d.payload for d in net.downlinks if d.port] == [b"\x00\x07\x10", b"\x01"]


def test_the_gateway_duty_cycle_moves_an_ack_to_rx2():
    net = Network(seed=1)
    join(net, eui(1))
    first = send(net, eui(1), 0, MIN, dr=0, confirmed=True)
    # RX1's ~1 s at SF12 blocks the gateway's 1 % sub-band for ~100 s: RX2 (10 %) it is.
    second = send(net, eui(1), 1, MIN + 30_000_000, dr=0, confirmed=True)
    assert (first.window, second.window) == (1, 2) and second.ack
    assert net.downlinks[-1].channel_hz == eu868.RX2_FREQUENCY


# --- records ---------------------------------------------------------------------------------
def test_airtime_per_device_is_the_semtech_formula_over_everything_it_sent():
    net = Network(seed=1)
    net.place(eui(1), distance_m=3500)
    join(net, eui(1), dr=0, channel_hz=868_100_000)
    for i in range(30):
        send(net, eui(1), i, (i + 1) * 10 * MIN, dr=5, payload=bytes(20))
    assert net.lost, "some frames were lost at 3.5 km: they count all the same"
    mine = [f for f in net.frames if f.uplink]
    assert len(mine) == 31
    expected = sum(eu868.airtime_us(0 if f.kind == "JoinRequest" else 5, len(f.phy)) for f in mine)
    assert net.airtime_us(eui(1)) == expected == net.airtime_by_device()[eui(1).hex().upper()]
    assert net.airtime_us(eui(1), since_us=5 * 10 * MIN) == 26 * eu868.airtime_us(5, 33)


def test_the_phy_log_is_owner_only_and_holds_every_frame_with_its_keys(tmp_path):
    net = Network(seed=1)
    accept = join(net, eui(1))
    send(net, eui(1), 0, MIN, confirmed=True)
    path = tmp_path / "phy.jsonl"
    assert net.write_phy_log(path) == 4          # join-request, join-accept, uplink, ACK
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    import json
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(x["type"], x["direction"]) for x in lines] == [
        ("JoinRequest", "up"), ("JoinAccept", "down"), ("ConfirmedDataUp", "up"),
        ("UnconfirmedDataDown", "down")]
    up = lines[2]
    assert (up["nwk_skey"], up["app_skey"]) == (accept.nwk_skey.hex(), accept.app_skey.hex())
    assert up["payload"] == "0102" and up["dev_addr"] == f"{accept.dev_addr:08X}"
