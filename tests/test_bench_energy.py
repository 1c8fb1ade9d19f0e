"""The energy model's arithmetic (simulators/power/energy_model.py) and the bench's
attribution of virtual time to states (bench/awake.py)."""
from __future__ import annotations

import math

import pytest

from bench import airtime
from bench.awake import StateObserver
from bench.sizes import closure
from host_tools import boards
from simulators.power import energy_model as em


def test_battery_energy_is_cells_times_capacity_times_mean_voltage():
    assert em.ALKALINE_2AA.energy_j() == pytest.approx(2 * 2.5 * 1.25 * 3600)


def test_battery_life_under_a_load_that_drains_it_in_a_year_without_self_discharge():
    b = em.Battery(2, 2.5, 1.25, 1.8, 0.0, "test")
    assert b.life_years(b.energy_j() / em.YEAR_S) == pytest.approx(1.0)


def test_self_discharge_shortens_life_and_bounds_it_without_load():
    b = em.ALKALINE_2AA
    watts = b.energy_j() / em.YEAR_S
    assert b.life_years(watts) == pytest.approx(1 / 1.02)
    assert b.life_years(0.0) == pytest.approx(1 / b.self_discharge_per_year)


def test_chip_currents_pass_the_converter_board_figures_do_not():
    chip = em.Draw(0.010, 3.3, "test")
    board = em.Draw(0.010, 5.0, "test", board_level=True)
    assert chip.watts() == pytest.approx(0.033 / em.CONVERTER_EFFICIENCY)
    assert board.watts() == pytest.approx(0.050)


def test_receive_windows_are_eight_symbols_at_the_uplink_sf_and_at_dr0():
    assert em.rx_windows_s(9) == pytest.approx(8 * (512 + 4096) / 125_000)


def test_a_days_breakdown_adds_up_to_the_days_energy():
    board = em.Board.for_board_file(boards.load("pico-rak3172"), mcu="esp32")
    wake = em.Wake(active_s=0.3, modem_wait_s=2.6, light_s=0.5, airtime_s=0.29,
                   rx_s=em.rx_windows_s(9), readings=1)
    wakes = [wake] * 96
    assert sum(board.breakdown(wakes).values()) == pytest.approx(board.day_joules(wakes))


def test_wake_energy_is_the_sum_of_its_states_above_the_sleep_floor():
    board = em.Board("esp32", "rak3172", {})
    w = em.Wake(active_s=1.0, airtime_s=0.5, rx_s=0.25)
    mcu, modem = em.MCU["esp32"], em.MODEM["rak3172"]
    expected = (mcu["active"].watts() - mcu["sleep"].watts()) * 1.0 + modem["tx"].watts() * 0.5 \
        + modem["rx"].watts() * 0.25
    assert board.wake_joules(w) == pytest.approx(expected)


def test_soil_board_counts_its_three_probes_and_climate_keeps_its_counter_on():
    soil = em.Board.for_board_file(boards.load("pico-rak3172-soil"))
    assert soil.parts["smt100"].count == 3
    climate = em.Board.for_board_file(boards.load("pico-rak3172"))
    assert climate.parts["pcf8583"].idle_watts() > 0
    # A probe reading: 3 x 40 mA x 50 ms at 12 V through the converter.
    assert soil.parts["smt100"].reading_joules() == pytest.approx(3 * 0.040 * 12 * 0.050 / em.CONVERTER_EFFICIENCY)


def test_every_current_names_its_source():
    draws = [d for table in (em.MCU, em.MODEM) for mode in table.values() for d in mode.values()]
    draws += [d for p in em.PARTS.values() for d in (p.idle, p.reading) if d]
    assert draws and all(d.source.strip() for d in draws)


def test_airtime_a_day_is_readings_times_time_on_air():
    # 27 application bytes = 40-byte PHYPayload at SF9: 287.744 ms (Semtech formula).
    assert airtime.toa_ms(27, 9) == pytest.approx(287.744)
    assert airtime.per_day_s(27, 9, 900) == pytest.approx(96 * 0.287744)


class _Wake:
    def __init__(self, index, start_us, end_us, readings=(1,)):
        self.index, self.start_us, self.end_us, self.readings = index, start_us, end_us, list(readings)


def test_waits_are_charged_to_the_part_the_firmware_last_talked_to():
    obs = StateObserver(modem_uart=0)
    obs("i2c_write", [0, 0x44, "fd", True], 0, 0)
    obs("sleep", [10_000], 0, 10_000)                      # SHT4x conversion wait
    obs("uart_read", [1, 8, 100, 10, False], 10_000, 60_000)  # an SDI-12 reply
    obs("uart_write", [0, "41540d0a"], 60_000, 60_000)
    obs("uart_read", [0, -1, 3000, 10, True], 60_000, 2_060_000)
    obs("sleep", [500_000, "light"], 2_060_000, 2_560_000)  # a duty-cycle light sleep
    w = obs.close(_Wake(2, 0, 2_560_000))
    assert (w.sensor_ms, w.modem_ms, w.compute_ms) == (60.0, 2500.0, 0.0)
    assert w.light_ms == w.modem_light_ms == 500.0
    assert w.excluding_modem_ms == 60.0


def test_kind_closure_holds_both_soil_buses_and_no_other_kinds_drivers():
    names = {p.name for p in closure(["main", "node.wake", "kinds.soil", "modems.rak3172"])}
    assert {"sdi12.py", "modbus_rtu.py", "smt100.py", "rak3172.py", "wake.py"} <= names
    assert not {"bme280.py", "lis3dh.py", "sonde.py"} & names
    assert math.isfinite(len(names))
