"""The flash model behaves as NOR flash, and a power cut tears the operation it hits."""
import pytest

from simulators.flash import Flash, PowerCut


def test_program_clears_bits_only_and_erase_sets_them(tmp_path):
    f = Flash(tmp_path / "img", blocks=4)
    f.program(1, 0, b"\x0f\xf0")
    f.program(1, 0, b"\xf0\xff")
    assert f.read(1, 0, 2) == b"\x00\xf0"
    f.erase(1)
    assert f.read(1, 0, 2) == b"\xff\xff"


def test_power_cut_lands_only_part_of_the_write(tmp_path):
    f = Flash(tmp_path / "img", blocks=4)
    f.cut_at_op = 0
    f.cut_fraction = 0.5
    with pytest.raises(PowerCut):
        f.program(0, 0, bytes(8))
    assert f.read(0, 0, 8) == bytes(4) + b"\xff" * 4


def test_out_of_range_access_is_refused(tmp_path):
    f = Flash(tmp_path / "img", blocks=4)
    with pytest.raises(ValueError):
        f.program(4, 0, b"\x00")
