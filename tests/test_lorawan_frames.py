"""LoRaWAN 1.0.x frames against published known-answer vectors.

Vectors from lora-packet (github.com/anthonykirby/lora-packet, `__tests__/mic_test.ts`,
`decrypt_test.ts`, `key_gen_test.ts`, `join_accept_encrypt.ts`), an implementation
independent of this one.
"""
import pytest

from simulators.network import lorawan as L

NWK_SKEY = bytes.fromhex("44024241ed4ce9a68c6a8bc055233fd3")
APP_SKEY = bytes.fromhex("ec925802ae430ca77fd3dd73cb2cc588")
DEV_ADDR = 0x49BE7DF1          # F17DBE49 on air
APP_KEY = bytes.fromhex("98929b92c49edba9676d646d3b612456")


def test_data_uplink_is_built_byte_for_byte_as_lora_packet_builds_it():
    # mic_test.ts: "40F17DBE4900020001954378762B11FF0D", FCnt 2, FPort 1, payload "test".
    phy = L.data_frame(NWK_SKEY, APP_SKEY, DEV_ADDR, 2, uplink=True, port=1, payload=b"test")
    assert phy.hex().upper() == "40F17DBE4900020001954378762B11FF0D"


def test_mic_verifies_for_a_frame_without_payload_and_for_a_downlink_ack():
    assert L.verify_data_frame(bytes.fromhex("40F17DBE49000300012A3518AF"), NWK_SKEY, 3)
    ack = bytes.fromhex("60f17dbe4920020001f9d65d27")
    f = L.parse_data_frame(ack)
    assert not f.uplink and f.ack and L.verify_data_frame(ack, NWK_SKEY, 2)
    # (That ACK carries FPort 1 with an empty FRMPayload, which the builder allows.)
    assert L.data_frame(NWK_SKEY, APP_SKEY, DEV_ADDR, 2, uplink=False, ack=True, port=1) == ack


def test_a_changed_mic_byte_fails_verification():
    assert not L.verify_data_frame(bytes.fromhex("40F17DBE49000300012A3518AA"), NWK_SKEY, 3)
    with pytest.raises(L.FrameError):
        L.open_data_frame(bytes.fromhex("40F17DBE49000300012A3518AA"), NWK_SKEY, APP_SKEY, 3)


def test_frm_payload_of_several_blocks_decrypts_to_the_published_text():
    # decrypt_test.ts: FCnt 4, 44 bytes, i.e. three AES blocks of keystream.
    phy = bytes.fromhex("40f17dbe490004000155332de41a11adc072553544429ce7787707d1c316e027e7e5e3"
                        "34263376affb8aa17ad30075293f28dea8a20af3c5e7")
    f = L.open_data_frame(phy, NWK_SKEY, APP_SKEY, 4)
    assert f.port == 1 and f.frm_payload == b"The quick brown fox jumps over the lazy dog."


def test_mic_uses_the_full_32_bit_counter():
    low = L.data_frame(NWK_SKEY, APP_SKEY, DEV_ADDR, 0x0002, True, port=1, payload=b"test")
    high = L.data_frame(NWK_SKEY, APP_SKEY, DEV_ADDR, 0x10002, True, port=1, payload=b"test")
    assert low[6:8] == high[6:8] == b"\x02\x00"        # the same 16 bits on air
    assert low[-4:] != high[-4:] and low[9:-4] != high[9:-4]
    assert L.verify_data_frame(high, NWK_SKEY, 0x10002)
    assert not L.verify_data_frame(high, NWK_SKEY, 0x0002)


def test_session_keys_are_derived_as_in_the_published_vector():
    # key_gen_test.ts: AppNonce 376338, NetID aabbcc, DevNonce f18e.
    nwk, app = L.session_keys(APP_KEY, 0x376338, 0xAABBCC, 0xF18E)
    assert nwk.hex() == "4e3d6e6afbcc67af2ba3c8e8ec4acf4b"
    assert app.hex() == "610897aa6f1460623443b527d3ac6a9d"


def test_join_request_mic_verifies_with_the_app_key():
    # mic_test.ts join request; EUIs are little-endian on air.
    phy = bytes.fromhex("0039363463336913AA05693574323831330489C65B1304")
    f = L.parse_join_request(phy, APP_KEY)
    assert f.join_eui.hex().upper() == "AA13693363343639"
    assert f.dev_eui.hex().upper() == "3331383274356905"
    assert L.join_request(APP_KEY, f.join_eui, f.dev_eui, f.dev_nonce) == phy
    with pytest.raises(L.FrameError):
        L.parse_join_request(phy[:-1] + b"\x05", APP_KEY)


def test_join_accept_is_encrypted_with_aes_decrypt_and_opens_with_encrypt():
    # join_accept_encrypt.ts: all-zero key and fields, RxDelay 0.
    phy = L.join_accept(bytes(16), 0, 0, 0, dl_settings=0, rx_delay=0)
    assert phy.hex() == "20e3de108795f776b8037610ef7869b5b3"
    ja = L.open_join_accept(phy, bytes(16))
    assert (ja.join_nonce, ja.net_id, ja.dev_addr, ja.rx_delay, ja.cf_list) == (0, 0, 0, 0, b"")


def test_join_accept_mic_matches_the_published_clear_text_vector():
    # mic_test.ts: clear join-accept 20 386337 CCBBAA E7CD2C01 00 00, MIC d9d0a6e7.
    clear = bytes.fromhex("20386337CCBBAAE7CD2C010000")
    assert L.mic(APP_KEY, clear).hex() == "d9d0a6e7"
    phy = L.join_accept(APP_KEY, 0x376338, 0xAABBCC, 0x012CCDE7, 0, 0)
    ja = L.open_join_accept(phy, APP_KEY)
    assert (ja.join_nonce, ja.net_id, ja.dev_addr) == (0x376338, 0xAABBCC, 0x012CCDE7)
    with pytest.raises(L.FrameError):
        L.open_join_accept(phy, NWK_SKEY)


def test_fopts_and_fctrl_bits_survive_a_round_trip():
    cmd = L.link_adr_req(5, 2, 0x0007)
    assert cmd.hex() == "0352070001"
    phy = L.data_frame(NWK_SKEY, APP_SKEY, DEV_ADDR, 9, uplink=False, port=2, payload=b"\x01",
                       fopts=cmd, adr=True, ack=True, fpending=True)
    f = L.open_data_frame(phy, NWK_SKEY, APP_SKEY, 9)
    assert (f.adr, f.ack, f.fpending, f.fopts, f.port, f.frm_payload) == \
        (True, True, True, cmd, 2, b"\x01")
    assert L.parse_link_adr_req(f.fopts) == (5, 2, 0x0007, 1)


def test_impossible_frames_are_refused():
    with pytest.raises(L.FrameError):
        L.data_frame(NWK_SKEY, APP_SKEY, DEV_ADDR, 1, True, port=None, payload=b"x")
    with pytest.raises(L.FrameError):
        L.data_frame(NWK_SKEY, APP_SKEY, DEV_ADDR, 1, True, fopts=bytes(16))
    with pytest.raises(L.FrameError):
        L.data_frame(NWK_SKEY, APP_SKEY, DEV_ADDR, 1 << 32, True)
    with pytest.raises(L.FrameError):
        L.parse_data_frame(bytes.fromhex("40F17DBE490F0300012A3518AF"))   # FOptsLen 15
