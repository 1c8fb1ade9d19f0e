"""Climate node bodies (docs/payload.md, docs/kinds/climate.md)."""
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
    Schema(
        schema_id=2, kind="climate", version=2,
        channels=(
            # SHT40 typical ±0.2 °C plus half of 0.01 °C and of the sensor's 16-bit step
            Channel("temperature", 100, "°C", accuracy=0.21),
            # SHT40 typical ±1.8 %RH plus half of the wire's 0.5 %RH step
            Channel("humidity", 2, "%RH", accuracy=2.1),
            # BME280 absolute accuracy ±1.0 hPa typical (0..65 °C) plus half of 0.1 hPa
            Channel("pressure", 10, "hPa", accuracy=1.1),
            # Rain since the previous reading: one tip (0.2 mm) for the water the bucket
            # holds, plus the gauge's calibration (±2 %) and undercatch (≈3.5 % at
            # 50 mm/h) on up to 13 mm per 15-minute reading
            Channel("rain", 100, "mm", accuracy=1.0),
            # Highest 5-minute intensity since the previous reading: one tip per window
            # (2.4 mm/h) plus 6 % of up to 60 mm/h
            Channel("rain_peak", 10, "mm/h", accuracy=6.0),
            Channel("battery", 1000, "V", accuracy=0.01),
        ),
        faults=("sht4x", "battery", "bme280", "pcf8583", "rain_gauge"),
        flags=("heavy_rain",),   # bit 5: an alarm reading, not a failure
    ),
)
