"""Board files: which buses, pins, modem and parts a board has.

The same JSON file is read by the firmware at boot (as /board.json on the node's flash),
by `nodectl flash`, and by the simulator, which builds its virtual board from it.
"""
from __future__ import annotations

import json
from pathlib import Path

BOARDS_DIR = Path(__file__).resolve().parent.parent / "boards"
DEFAULT_BOARD = "pico-rak3172"
# Modem dialects with the baud rate of their factory firmware (lorawan-modems.md §1).
MODEMS = {"rak3172": 115200, "wioe5": 9600, "rn2483": 57600}
PART_BUSES = {"i2c", "uart", "pin", "adc"}


class BoardError(ValueError):
    pass


def available() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.json"))


def path_of(name: str) -> Path:
    p = BOARDS_DIR / f"{name}.json"
    if not p.exists():
        raise BoardError(f"unknown board {name!r}; known boards: {', '.join(available())}")
    return p


def load(name: str = DEFAULT_BOARD) -> dict:
    p = path_of(name)
    try:
        board = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise BoardError(f"{p}: not valid JSON: {e}") from None
    validate(board, str(p))
    return board


def with_modem(board: dict, modem: str) -> dict:
    """The same board carrying another modem dialect on the same UART, at that modem's
    factory baud rate (the modem is a socketed module on our carrier boards)."""
    if modem not in MODEMS:
        raise BoardError(f"unknown modem {modem!r}; known modems: {', '.join(sorted(MODEMS))}")
    out = json.loads(json.dumps(board))
    out["modem"] = dict(out["modem"], type=modem, baudrate=MODEMS[modem])
    if modem != board["modem"]["type"]:
        out["name"] = f"{board['name']}+{modem}"
    validate(out, f"{board['name']} with {modem}")
    return out


def validate(board: dict, where: str = "board") -> None:
    for key in ("name", "mcu", "kinds", "modem", "parts"):
        if key not in board:
            raise BoardError(f"{where}: missing {key!r}")
    modem = board["modem"]
    if modem.get("type") not in MODEMS:
        raise BoardError(f"{where}: modem type {modem.get('type')!r} is not one of {sorted(MODEMS)}")
    if str(modem.get("uart")) not in board.get("uart", {}):
        raise BoardError(f"{where}: modem on UART {modem.get('uart')} which the board does not define")
    for part, spec in board["parts"].items():
        if spec.get("bus") not in PART_BUSES:
            raise BoardError(f"{where}: part {part}: bus {spec.get('bus')!r} not one of {sorted(PART_BUSES)}")
        if spec["bus"] in ("i2c", "uart") and str(spec.get("id")) not in board.get(spec["bus"], {}):
            raise BoardError(f"{where}: part {part} on {spec['bus']}{spec.get('id')}, which the board does not define")
