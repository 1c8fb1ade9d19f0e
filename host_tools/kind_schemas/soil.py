"""Soil node bodies (docs/kinds/soil.md)."""
from host_tools.schemas import Channel, Schema

# TRUEBNER SMT100: ±3 % VWC (factory calibration, mineral soil, 0-50 %) plus half a
# 0.1 % wire step; temperature typ. ±0.2 °C plus half a 0.01 °C step.
_VWC_ACCURACY = 3.05
_T_ACCURACY = 0.205

_CHANNELS = tuple(
    ch for i in (1, 2, 3) for ch in (
        Channel(f"vwc_{i}", 10, "%", accuracy=_VWC_ACCURACY),
        Channel(f"temperature_{i}", 100, "°C", accuracy=_T_ACCURACY),
    )
) + (
    # RP2040 ADC through the board's 1/3 divider: 12-bit steps of 2.4 mV
    Channel("battery", 1000, "V", accuracy=0.01),
)
_FAULTS = ("smt100_1", "smt100_2", "smt100_3", "battery")

SCHEMAS = (
    # v1: each channel a CBOR integer (firmware before soil v2; still decoded).
    Schema(schema_id=3, kind="soil", version=1, channels=_CHANNELS, faults=_FAULTS),
    # v2: the same channels packed as one byte string of big-endian 16-bit integers
    # (null: uint16 0xFFFF, int16 0x8000): 21 bytes typical instead of 27.
    Schema(schema_id=7, kind="soil", version=2, channels=_CHANNELS, faults=_FAULTS,
           packed="HhHhHhH"),
)
