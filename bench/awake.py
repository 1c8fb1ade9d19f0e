"""Awake time per wake, in virtual ms, by what the firmware is doing.

The simulator has one virtual clock and sees every machine call (SimNode.observer). The
clock moves only while the node waits: in a sleep or a UART read. A wait is charged to:

- sensor: a read on a sensor bus's UART (SDI-12, Modbus), or a sleep whose last hardware
  access was a sensor (I2C, a sensor UART, ADC, a pin): a conversion time, a FIFO poll;
- modem: a read on the modem's UART (answers, +EVT: events through TX and RX1/RX2), or a
  sleep after talking to the modem (duty-cycle waits);
- compute: the rest. The simulator charges no virtual time to computing, so this is 0
  by construction; bench/callgrind.py estimates it from instruction counts.

Light sleeps (machine.lightsleep, tagged by bench/node_probe.py) are counted apart: the
MCU sleeps through them, which the energy model needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class WakeStates:
    index: int = 0
    total_ms: float = 0.0
    sensor_ms: float = 0.0
    modem_ms: float = 0.0
    compute_ms: float = 0.0
    light_ms: float = 0.0            # of which light sleep (any state)
    sensor_light_ms: float = 0.0
    modem_light_ms: float = 0.0
    reading: bool = False
    first: bool = False
    requests: int = 0

    @property
    def excluding_modem_ms(self) -> float:
        return self.total_ms - self.modem_ms


@dataclass
class StateObserver:
    """SimNode.observer: charges each wait to a state; `close(wake)` ends a wake."""
    modem_uart: int
    wakes: list = field(default_factory=list)
    _cur: WakeStates = field(default_factory=WakeStates)
    _last: str = "compute"

    def __call__(self, op: str, args: list, t0_us: int, t1_us: int) -> None:
        self._cur.requests += 1
        if op.startswith("uart_"):
            self._last = "modem" if int(args[0]) == self.modem_uart else "sensor"
        elif op.startswith(("i2c_", "pin_")) or op == "adc":
            self._last = "sensor"
        dt_ms = (t1_us - t0_us) / 1000.0
        if dt_ms <= 0:
            return
        state = self._last if op in ("sleep", "uart_read") else "compute"
        setattr(self._cur, f"{state}_ms", getattr(self._cur, f"{state}_ms") + dt_ms)
        if op == "sleep" and len(args) > 1 and args[1] == "light":
            self._cur.light_ms += dt_ms
            if state in ("sensor", "modem"):
                setattr(self._cur, f"{state}_light_ms", getattr(self._cur, f"{state}_light_ms") + dt_ms)

    def close(self, wake) -> WakeStates:
        """The wake `wake` (a WakeResult) ended: its states, with the rest as compute."""
        w = self._cur
        w.index = wake.index
        w.total_ms = (wake.end_us - wake.start_us) / 1000.0
        w.compute_ms = max(0.0, w.total_ms - w.sensor_ms - w.modem_ms)
        w.reading = bool(wake.readings)
        w.first = wake.index == 1
        self.wakes.append(w)
        self._cur = WakeStates()
        self._last = "compute"
        return w


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    if not xs:
        return 0.0
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def summarize(wakes: list[WakeStates]) -> dict:
    """Median and max per state over the reading wakes after the first (the first joins the
    network), and the same for the other wakes (climate rain watch, glass sessions)."""
    out = {}
    groups = {"reading": [w for w in wakes if w.reading and not w.first],
              "other": [w for w in wakes if not w.reading and not w.first],
              "first": [w for w in wakes if w.first]}
    for name, ws in groups.items():
        if not ws:
            continue
        g = {"wakes": len(ws)}
        for k in ("total_ms", "sensor_ms", "modem_ms", "compute_ms", "light_ms", "excluding_modem_ms"):
            vals = [getattr(w, k) for w in ws]
            g[k] = {"median": round(median(vals), 3), "max": round(max(vals), 3)}
        out[name] = g
    return out
