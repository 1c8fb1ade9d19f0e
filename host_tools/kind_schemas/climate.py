"""Climate node bodies (docs/payload.md)."""
from host_tools.schemas import Channel, Schema

SCHEMAS = (
    Schema(
        schema_id=1, kind="climate", version=1,
        channels=(
            # SHT40 typical accuracy ±0.2 °C and ±1.8 %RH, plus half a wire step
            Channel("temperature", 100, "°C", accuracy=0.21),
            Channel("humidity", 10, "%RH", accuracy=1.9),
            # RP2040 ADC through the board's 1/3 divider: 12-bit steps of 2.4 mV
            Channel("battery", 1000, "V", accuracy=0.01),
        ),
        faults=("sht4x", "battery"),
    ),
)
