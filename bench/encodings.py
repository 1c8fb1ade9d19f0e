"""The reading of each kind in the two formats users compare us with: Cayenne LPP and a
Decentlab-style binary uplink. Plain CPython; these are reference encoders for the bench,
not something a node sends.

Cayenne LPP (myDevicesIoT/CayenneLPP `src/CayenneLPP.h` and README "Data Types"; the
Things Stack's CayenneLPP formatter page): each value is `channel(1) type(1) data(N)`,
big-endian, type = IPSO object id - 3200. The original myDevices list is used, so a
quantity with no type of its own (rain, VWC, conductivity, counts, volts) goes out as
Analog Input (2 bytes, 0.01 signed):

| type | id | data bytes | resolution |
|---|---|---|---|
| Digital Input | 0 | 1 | 1 |
| Analog Input | 2 | 2 | 0.01, signed |
| Temperature | 103 (0x67) | 2 | 0.1 °C, signed |
| Relative Humidity | 104 (0x68) | 1 | 0.5 %, unsigned |
| Barometer | 115 (0x73) | 2 | 0.1 hPa, unsigned |

Worked example (the Things Stack CayenneLPP page): `03 67 01 10 05 67 00 FF` is channel 3
temperature 27.2 °C and channel 5 temperature 25.5 °C.

Decentlab (protocol version 2, decentlab/decentlab-decoders `DL-*.py`; prose at
docs.tesenso.com/tesenso-device-library/decentlab/dl-trs12; shared/reference/sensors.md
§6.1): `version u8 (2) | device id u16 | flags u16 | blocks of u16 words`, big-endian;
flag bit n says sensor n's block is present; the last block is the battery (1 word, mV);
signed quantities are offset-binary (x + 32768). Here sensor 0 is every channel of the
kind but the battery, each in the kind's own wire unit, and a failed part drops its
block (the flag bit clears), as Decentlab devices do. Battery-only vector (sensors.md):
`02 0B50 0002 0B3B` is device 2896, 2.875 V.
"""
from __future__ import annotations

import struct

LPP_DIGITAL_INPUT = 0
LPP_ANALOG_INPUT = 2
LPP_TEMPERATURE = 103
LPP_HUMIDITY = 104
LPP_BAROMETER = 115

# type -> (data bytes, resolution, signed)
LPP_TYPES = {
    LPP_DIGITAL_INPUT: (1, 1, False),
    LPP_ANALOG_INPUT: (2, 0.01, True),
    LPP_TEMPERATURE: (2, 0.1, True),
    LPP_HUMIDITY: (1, 0.5, False),
    LPP_BAROMETER: (2, 0.1, False),
}


class EncodeError(ValueError):
    """A value the format cannot hold (out of its range)."""


def lpp_value(channel: int, lpp_type: int, value: float) -> bytes:
    """One Cayenne LPP item: channel, type, the value in the type's resolution."""
    size, resolution, signed = LPP_TYPES[lpp_type]
    raw = round(value / resolution)
    lo, hi = (-(1 << (8 * size - 1)), (1 << (8 * size - 1)) - 1) if signed else (0, (1 << 8 * size) - 1)
    if not lo <= raw <= hi:
        raise EncodeError(f"LPP type {lpp_type}: {value} does not fit {size} byte(s) of {resolution}")
    return bytes((channel, lpp_type)) + raw.to_bytes(size, "big", signed=signed)


def decentlab(device_id: int, blocks: list[list[int] | None]) -> bytes:
    """A Decentlab v2 uplink: blocks[i] is sensor i's words (unsigned 16-bit, already
    offset where signed), or None when that sensor is absent."""
    flags = 0
    words: list[int] = []
    for i, block in enumerate(blocks):
        if block is None:
            continue
        flags |= 1 << i
        for w in block:
            if not 0 <= w <= 0xFFFF:
                raise EncodeError(f"Decentlab word {w} out of 0..65535")
            words.append(w)
    return struct.pack(f">BHH{len(words)}H", 2, device_id, flags, *words)


# --- the kinds: which channel goes out as which LPP type, and its Decentlab word --------
# (decoded name, LPP type, value divisor for LPP, Decentlab scale, signed)
# The LPP divisor turns the decoded value into the unit the LPP type carries, chosen so a
# typical reading fits (e.g. conductivity in mS/cm, ORP in V): the byte count is fixed by
# the type, the resolution lost is listed in docs/benchmarks.md.
KIND_MAP = {
    "climate": [
        ("temperature", LPP_TEMPERATURE, 1, 100, True),
        ("humidity", LPP_HUMIDITY, 1, 2, False),
        ("pressure", LPP_BAROMETER, 1, 10, False),
        ("rain", LPP_ANALOG_INPUT, 1, 100, False),
        ("rain_peak", LPP_ANALOG_INPUT, 1, 10, False),
    ],
    "soil": [
        (f"{q}_{i}", t, 1, s, sg) for i in (1, 2, 3)
        for q, t, s, sg in (("vwc", LPP_ANALOG_INPUT, 10, False),
                            ("temperature", LPP_TEMPERATURE, 100, True))
    ],
    "water": [
        ("pressure_rel", LPP_BAROMETER, 1, 10, True),
        ("pressure_abs", LPP_BAROMETER, 1, 10, False),
        ("temperature", LPP_TEMPERATURE, 1, 100, True),
        ("conductivity", LPP_ANALOG_INPUT, 1000, 1, False),   # mS/cm in LPP
        ("ph", LPP_ANALOG_INPUT, 1, 100, False),
        ("orp", LPP_ANALOG_INPUT, 1000, 10, True),            # V in LPP
        ("oxygen", LPP_ANALOG_INPUT, 1, 100, False),
        ("chloride", LPP_ANALOG_INPUT, 1, 10, False),
        ("nitrate", LPP_ANALOG_INPUT, 1, 100, False),
        ("ammonium", LPP_ANALOG_INPUT, 1, 100, False),
        ("bromide", LPP_ANALOG_INPUT, 1, 100, False),
    ],
    "glass": [
        ("fill", LPP_ANALOG_INPUT, 1, 1, False),
        ("impacts", LPP_ANALOG_INPUT, 100, 1, False),         # hundreds of bottles in LPP
        ("emptyings", LPP_DIGITAL_INPUT, 1, 1, False),
        ("tilt", LPP_ANALOG_INPUT, 1, 1, False),
        ("energy", LPP_DIGITAL_INPUT, 1, 1, False),
    ],
}
# The battery (or the glass node's store): LPP Analog Input in V, Decentlab battery word in mV.
SUPPLY = {"climate": "battery", "soil": "battery", "water": "battery", "glass": "storage"}
DEVICE_ID = 0x0B50      # any 16-bit id: its size, not its value, matters here


def lpp_reading(kind: str, reading: dict) -> bytes:
    """The decoded reading as Cayenne LPP, one channel per quantity; a null value is
    left out (LPP has no null)."""
    out = bytearray()
    items = KIND_MAP[kind] + [(SUPPLY[kind], LPP_ANALOG_INPUT, 1, None, False)]
    for ch, (name, lpp_type, div, _scale, _signed) in enumerate(items, start=1):
        value = reading.get(name)
        if value is not None:
            out += lpp_value(ch, lpp_type, value / div)
    return bytes(out)


def _word(value: float, scale: int, signed: bool) -> int:
    raw = round(value * scale)
    return raw + 32768 if signed else raw


def decentlab_reading(kind: str, reading: dict) -> bytes:
    """The decoded reading Decentlab-style: sensor 0 = the kind's channels (present when
    none of them is null), sensor 1 = the battery word in mV."""
    values = [reading.get(name) for name, *_ in KIND_MAP[kind]]
    block0 = None
    if all(v is not None for v in values):
        block0 = [_word(v, scale, signed)
                  for v, (_n, _t, _d, scale, signed) in zip(values, KIND_MAP[kind])]
    supply = reading.get(SUPPLY[kind])
    block1 = None if supply is None else [round(supply * 1000)]
    return decentlab(DEVICE_ID, [block0, block1])


def lpp_size(kind: str) -> int:
    """Bytes of a full LPP reading (every quantity present): fixed by the types."""
    items = KIND_MAP[kind] + [(SUPPLY[kind], LPP_ANALOG_INPUT, 1, None, False)]
    return sum(2 + LPP_TYPES[t][0] for _n, t, *_ in items)


def decentlab_size(kind: str) -> int:
    """Bytes of a full Decentlab-style reading: header 5 + 2 per word."""
    return 5 + 2 * (len(KIND_MAP[kind]) + 1)
