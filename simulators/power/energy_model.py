"""Energy per wake and battery life from datasheet currents (docs/energy.md).

    board = energy_model.Board.for_board_file(boards.load("pico-rak3172"))
    wake = energy_model.Wake(active_s=0.12, light_s=0.0, modem_wait_s=2.8,
                             airtime_s=0.288, rx_s=0.295, readings=1)
    day_j = board.day_joules([wake] * 96)
    years = energy_model.ALKALINE_2AA.life_years(day_j / 86400)

Every current below carries its source. A figure measured at a board's input (the Pico
under MicroPython) is taken as power at the battery; a chip's figure at 3.3 V passes the
node's converter at `CONVERTER_EFFICIENCY`. Pure arithmetic: the bench feeds it the wake
states the simulator measured (bench/energy.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

CONVERTER_EFFICIENCY = 0.85   # 2xAA -> 3.3 V buck-boost; the same assumption as power/harvester.py
YEAR_S = 365.25 * 86400
V_RAIL = 3.3


@dataclass(frozen=True)
class Draw:
    """A current drawn from `volts`; `board_level` figures were measured at the board's
    input (its regulator included), chip figures are behind the node's converter."""
    amps: float
    volts: float
    source: str
    board_level: bool = False

    def watts(self) -> float:
        """Power taken from the battery while this draw lasts."""
        p = self.amps * self.volts
        return p if self.board_level else p / CONVERTER_EFFICIENCY


# --- MCU: awake (running MicroPython), light sleep, and what the node sleeps in -------
MCU = {
    "rp2040": {
        # micropython/micropython#8770: a Pico running MicroPython (time.sleep) drew
        # ~21 mA with 5 V on VSYS.
        "active": Draw(0.021, 5.0, "micropython/micropython#8770 (Pico, MicroPython, 5 V on VSYS)", True),
        # micropython/micropython#8832 (rp2 lightsleep): machine.lightsleep(5000) 990 µA
        # with 5 V on VSYS. rp2's machine.deepsleep() is lightsleep() then reset()
        # (ports/rp2/modmachine.c), so it is also the node's sleep between wakes.
        "light": Draw(0.00099, 5.0, "micropython/micropython#8832 (Pico lightsleep, 5 V on VSYS)", True),
        "sleep": Draw(0.00099, 5.0, "ports/rp2/modmachine.c: deepsleep = lightsleep + reset; #8832", True),
    },
    "esp32": {
        # ESP32-WROOM-32 datasheet Table 4 "Power Consumption by Power Modes": modem-sleep
        # 20-25 mA at 80 MHz, 30-50 mA at 240 MHz; the boards run at 160 MHz.
        "active": Draw(0.030, V_RAIL, "ESP32-WROOM-32 datasheet Table 4 (modem-sleep, CPU on; 160 MHz between 80 and 240 MHz)"),
        "light": Draw(0.0008, V_RAIL, "ESP32-WROOM-32 datasheet Table 4 (light-sleep 0.8 mA)"),
        "sleep": Draw(10e-6, V_RAIL, "ESP32-WROOM-32 datasheet Table 4 (deep-sleep, RTC timer + RTC memory 10 µA)"),
    },
}

# --- modem ------------------------------------------------------------------------
MODEM = {
    "rak3172": {
        # STM32WLE5 on its high-power PA only (RAK3172, LoRa-E5): 86 mA at 14 dBm with ST's
        # stock settings, 60 mA with optimised PA settings (Seeed forum "LoRa-E5 FW bug, TX
        # EU868 => 85mA", measurement table; the thread says RAK3172 shares the issue).
        # The RAK3172 datasheet gives only 87 mA at 20 dBm (lorawan-modems.md §3.3).
        "tx": Draw(0.086, V_RAIL, "forum.seeedstudio.com/t/lora-e5-fw-bug-tx-eu868-85ma-too-high-consumption/260126 (14 dBm, stock)"),
        "rx": Draw(0.00522, V_RAIL, "RAK3172 datasheet (RAKWireless/rakwireless-docs), lorawan-modems.md §3.3"),
        "sleep": Draw(1.69e-6, V_RAIL, "RAK3172 datasheet, sleep 1.69 µA (lorawan-modems.md §3.3)"),
    },
}
RX_WINDOW_SYMBOLS = 8         # a receive window with no downlink stays open ~8 symbols (LoRaMac-node
RX2_SF = 12                   # RegionCommon: at least 6 symbols plus the timing error); RX2 is DR0


@dataclass(frozen=True)
class Part:
    """A sensor's draw: `idle` all the time, plus `reading` for `reading_s` per reading."""
    idle: Draw | None = None
    reading: Draw | None = None
    reading_s: float = 0.0
    count: int = 1            # identical parts (soil: three probes)

    def idle_watts(self) -> float:
        return self.count * self.idle.watts() if self.idle else 0.0

    def reading_joules(self) -> float:
        return self.count * self.reading.watts() * self.reading_s if self.reading else 0.0


PARTS = {
    # SHT4x datasheet features page: 0.4 µA average at one measurement a second, idle 80 nA
    # (sensors.md §1.1): 0.4 µC per reading.
    "sht4x": Part(Draw(80e-9, V_RAIL, "SHT4x datasheet: idle 80 nA (sensors.md §1.1)"),
                  Draw(0.4e-6, V_RAIL, "SHT4x datasheet: 0.4 µA average at 1 Hz"), 1.0),
    # BME280 datasheet BST-BME280-DS002 key features: 3.6 µA at 1 Hz (H, P, T), 0.1 µA sleep.
    "bme280": Part(Draw(0.1e-6, V_RAIL, "BME280 datasheet DS002: sleep 0.1 µA"),
                   Draw(3.6e-6, V_RAIL, "BME280 datasheet DS002: 3.6 µA at 1 Hz forced H+P+T"), 1.0),
    # PCF8583 counts the rain gauge's tips all the time: datasheet §2 "operating current
    # <= 50 µA" (docs/kinds/climate.md); no typical figure in our sources, so the maximum.
    "pcf8583": Part(Draw(50e-6, V_RAIL, "PCF8583 datasheet §2 (max, docs/kinds/climate.md)")),
    # SMT100: up to 40 mA during a measurement of < 50 ms, 4-24 V (sensors.md §2.1); a
    # 12 V supply switched on for the reading only (an assumption: the board file has no
    # probe power switch; a probe's idle current is not published).
    "smt100": Part(None, Draw(0.040, 12.0, "SMT100: up to 40 mA, < 50 ms per measurement (sensors.md §2.1)"), 0.050),
    # LIS3DH at 100 Hz normal mode: 11 µA (DocID17530 Table 12, simulators/sensors/lis3dh.py).
    "lis3dh": Part(Draw(11e-6, V_RAIL, "LIS3DH DocID17530 Table 12 at 100 Hz (simulators/sensors/lis3dh.py)")),
    # The sonde runs on its own batteries (docs/kinds/water.md): nothing from the node.
    "sonde": Part(),
}


@dataclass
class Wake:
    """What one wake did, in seconds: MCU awake (sensor + compute) and waiting on the
    modem's UART (awake too), MCU light-sleeping, on air, receive windows open."""
    active_s: float = 0.0
    modem_wait_s: float = 0.0
    light_s: float = 0.0
    airtime_s: float = 0.0
    rx_s: float = 0.0
    readings: int = 0

    @property
    def awake_s(self) -> float:
        return self.active_s + self.modem_wait_s + self.light_s


def symbol_s(sf: int, bw_hz: int = 125_000) -> float:
    return 2 ** sf / bw_hz


def rx_windows_s(sf: int) -> float:
    """Receive time after an uplink with no downlink: RX1 at the uplink's SF, RX2 at DR0."""
    return RX_WINDOW_SYMBOLS * (symbol_s(sf) + symbol_s(RX2_SF))


@dataclass
class Board:
    mcu: str
    modem: str
    parts: dict = field(default_factory=dict)     # part name -> Part

    @classmethod
    def for_board_file(cls, board: dict, mcu: str | None = None) -> "Board":
        """The parts a board file lists that draw power (smt100_1..3 count as one Part x3)."""
        parts: dict = {}
        for name in board.get("parts", {}):
            base = name.split("_")[0]
            if base in PARTS:
                p = parts.get(base)
                parts[base] = Part(PARTS[base].idle, PARTS[base].reading, PARTS[base].reading_s,
                                   (p.count + 1) if p else 1)
        return cls(mcu or board["mcu"], board["modem"]["type"], parts)

    def sleep_watts(self) -> float:
        """Between wakes: MCU asleep, modem asleep, the always-on parts."""
        return (MCU[self.mcu]["sleep"].watts() + MODEM[self.modem]["sleep"].watts()
                + sum(p.idle_watts() for p in self.parts.values()))

    def wake_joules(self, w: Wake) -> float:
        """Energy of one wake above the sleep floor (the floor runs all day)."""
        mcu, modem = MCU[self.mcu], MODEM[self.modem]
        e = (mcu["active"].watts() * (w.active_s + w.modem_wait_s)
             + mcu["light"].watts() * w.light_s
             - mcu["sleep"].watts() * w.awake_s
             + modem["tx"].watts() * w.airtime_s
             + modem["rx"].watts() * w.rx_s
             + w.readings * sum(p.reading_joules() for p in self.parts.values()))
        return e

    def day_joules(self, wakes: list[Wake], seconds: float = 86400.0) -> float:
        """Energy over `seconds` in which these wakes happened."""
        return self.sleep_watts() * seconds + sum(self.wake_joules(w) for w in wakes)

    def breakdown(self, wakes: list[Wake], seconds: float = 86400.0) -> dict:
        """Joules over `seconds` by where they go (the table in docs/energy.md)."""
        mcu, modem = MCU[self.mcu], MODEM[self.modem]
        awake = sum(w.awake_s for w in wakes)
        return {
            "mcu_sleep": mcu["sleep"].watts() * (seconds - awake),
            "mcu_active": mcu["active"].watts() * sum(w.active_s for w in wakes),
            "mcu_modem_wait": mcu["active"].watts() * sum(w.modem_wait_s for w in wakes),
            "mcu_light": mcu["light"].watts() * sum(w.light_s for w in wakes),
            "modem_tx": modem["tx"].watts() * sum(w.airtime_s for w in wakes),
            "modem_rx": modem["rx"].watts() * sum(w.rx_s for w in wakes),
            "modem_sleep": modem["sleep"].watts() * seconds,
            "sensors_idle": sum(p.idle_watts() for p in self.parts.values()) * seconds,
            "sensors_reading": sum(w.readings for w in wakes) * sum(p.reading_joules() for p in self.parts.values()),
        }


@dataclass(frozen=True)
class Battery:
    """Primary cells in series, used down to a cut-off.

    energy = cells x capacity x mean cell voltage; self-discharge takes a fixed share of
    the initial capacity per year (the way shelf life is specified), so a load of P watts
    empties it after E0 / (P + sd x E0 / year) seconds.
    """
    cells: int
    capacity_ah: float
    mean_cell_v: float
    cutoff_v: float
    self_discharge_per_year: float
    source: str

    def energy_j(self) -> float:
        return self.cells * self.capacity_ah * self.mean_cell_v * 3600.0

    def life_years(self, watts: float) -> float:
        e0 = self.energy_j()
        return e0 / (watts * YEAR_S + self.self_discharge_per_year * e0)


# 2xAA alkaline (LR6): 2500 mAh per cell to 0.9 V per cell at a few mA (Energizer E91
# datasheet, constant-current curves: ~2.5-2.8 Ah at 25-100 mA to 0.8-0.9 V; the low end is
# taken), mean cell voltage 1.25 V over that discharge (E91 curve), cut-off 1.8 V for the
# pair (the converters' minimum input, power/harvester.py v_min), and 2 % of the capacity
# a year lost to self-discharge (Energizer MAX: "holds power up to 10 years in storage",
# ~80 % left after 10 years).
ALKALINE_2AA = Battery(cells=2, capacity_ah=2.5, mean_cell_v=1.25, cutoff_v=1.8,
                       self_discharge_per_year=0.02,
                       source="Energizer E91 datasheet (capacity, discharge curve); Energizer MAX shelf life 10 years")
