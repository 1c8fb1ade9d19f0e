"""Glass-container node bodies (docs/kinds/glass.md)."""
from host_tools.schemas import Channel, Schema


def _channels(storage_divisor: int, storage_accuracy: float) -> tuple[Channel, ...]:
    return (
        # impacts since the last emptying / calibrated bottles per full container;
        # before the first calibrated emptying the configured guess may be ~30 % off
        Channel("fill", 1, "%", accuracy=15),
        # bottles that landed softly (below the impact threshold, ~3 %) are not
        # counted, nor those thrown while the node sends (the FIFO keeps 320 ms)
        Channel("impacts", 1, "bottles", accuracy=6),
        Channel("emptyings", 1, "count", accuracy=0),
        # LIS3DH zero-g offset ±40 mg typical (DocID17530 Table 4): up to ~3.3°,
        # plus 0.5° wire rounding
        Channel("tilt", 1, "°", accuracy=4),
        # ESP32 12-bit ADC through the 1:2 divider (1.6 mV steps), plus half a wire step
        Channel("storage", storage_divisor, "V", accuracy=storage_accuracy),
        # 0 ok, 1 low (interval x4), 2 critical (x12, no impact wakes)
        Channel("energy", 1, "state", accuracy=0),
    )


_FAULTS = ("lis3dh", "storage")

SCHEMAS = (
    # v1: storage in 10 mV (firmware before glass v2; still decoded)
    Schema(schema_id=5, kind="glass", version=1, channels=_channels(100, 0.02),
           faults=_FAULTS),
    # v2: storage in 20 mV, so the store's range (to 5.0 V) is a one-byte CBOR integer
    Schema(schema_id=8, kind="glass", version=2, channels=_channels(50, 0.025),
           faults=_FAULTS),
)
