"""Glass-container node bodies (docs/kinds/glass.md)."""
from host_tools.schemas import Channel, Schema

SCHEMAS = (
    Schema(
        schema_id=5, kind="glass", version=1,
        channels=(
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
            # ESP32 12-bit ADC through the 1:2 divider (1.6 mV steps) and 10 mV on the wire
            Channel("storage", 100, "V", accuracy=0.02),
            # 0 ok, 1 low (interval x4), 2 critical (x12, no impact wakes)
            Channel("energy", 1, "state", accuracy=0),
        ),
        faults=("lis3dh", "storage"),
    ),
)
