"""Water node bodies (docs/kinds/water.md): the 12 channels packed into one CBOR byte
string of big-endian 16-bit integers (null: int16 0x8000, uint16 0xFFFF)."""
from host_tools.schemas import Channel, Schema

# Accuracy = the sonde's stated accuracy (In-Situ Aqua TROLL 600 specification, see
# docs/kinds/water.md) over the lake's range, plus half a wire step.
SCHEMAS = (
    Schema(
        schema_id=4, kind="water", version=1,
        channels=(
            # level sensor ±0.1 % FS (30 psi = 2068 hPa) and the barometer: ±3 hPa
            Channel("pressure_rel", 10, "hPa", accuracy=3.05),
            # ±0.1 % FS: ±2 hPa
            Channel("pressure_abs", 10, "hPa", accuracy=2.05),
            Channel("temperature", 100, "°C", accuracy=0.105),           # ±0.1 °C
            # ±0.5 % of reading + 1 µS/cm, up to 1000 µS/cm
            Channel("conductivity", 1, "µS/cm", accuracy=6.5),
            Channel("ph", 100, "pH", accuracy=0.105),                    # ±0.1 pH
            Channel("orp", 10, "mV", accuracy=5.05),                     # ±5 mV
            # RDO: ±0.1 mg/L to 8 mg/L, ±0.2 mg/L to 20 mg/L
            Channel("oxygen", 100, "mg/L", accuracy=0.205),
            # ISEs: ±10 % of reading or ±2 mg/L, whichever is greater (chloride to 100 mg/L)
            Channel("chloride", 10, "mg/L", accuracy=10.05),
            Channel("nitrate", 100, "mg/L", accuracy=2.005),             # as N, to 20 mg/L
            Channel("ammonium", 100, "mg/L", accuracy=2.005),            # as N, to 20 mg/L
            Channel("bromide", 100, "mg/L", accuracy=2.005),             # to 20 mg/L
            # RP2040 ADC through the board's 1/3 divider: 12-bit steps of 2.4 mV
            Channel("battery", 1000, "V", accuracy=0.01),
        ),
        faults=("sonde", "battery"),
        packed="hHhHHhHHHHHH",
    ),
)
