"""The simulated side of each node kind: its environment, the part models wired as the
board file says, and the truth each decoded reading is compared with.

One module per kind (`climate.py`, ...), each with a `Rig` class:

    rig = Rig(sim)            # builds the environment, attaches models to sim.node
    rig.parts                 # PART name -> model (what --fault PART:MODE reaches)
    rig.truth(wake)           # the true values behind that wake's reading,
                              # under the names and units the decoder uses
    Rig.DEFAULT_BOARD         # the board file a node of this kind runs on by default

Optional: `DEFAULT_INTERVAL_S`, `config()` (extra /config keys),
`next_pin_wake(pins, from_us, to_us)` (an armed wake pin's next edge during deep
sleep), `after_wake(wake)` (account what a wake did, e.g. the energy it drew).
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                  if not m.name.startswith("_"))


def rig_class(kind: str):
    if kind not in available():
        raise ValueError(f"unknown kind {kind!r}; kinds: {', '.join(available())}")
    return importlib.import_module(f"simulators.kinds.{kind}").Rig
