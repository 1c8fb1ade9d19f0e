"""A simulated run of one node: provision it, flash it, and let it live for H hours.

    sim = Simulation(kind="climate", hours=24, seed=1, out_dir=Path("sim-out"))
    for uplink in sim.run(): print(uplink.decoded, uplink.truth)

Everything a run produces is reproducible from its seed except the keys, which are
fresh random keys written to an owner-only inventory in the output directory.
"""
from __future__ import annotations

import json
import random
import time as wallclock
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from host_tools import boards, config_image, envelope, firmware_build, inventory, schemas
from host_tools.keys import new_key
from simulators import kinds as sim_kinds
from simulators.clock import Clock
from simulators.network import Network
from simulators.node import SimNode
from simulators.modems.faults import MODES as MODEM_FAULT_MODES
from simulators.modems.faults import ModemFaults
from simulators.sensors.faults import MODES as SENSOR_FAULT_MODES

# `network:down` is an outage (nothing reaches the network server); `network:nojoin`
# a join server that answers no join request (e.g. the device not yet registered).
NETWORK_FAULT_MODES = ("down", "nojoin")
FAULT_MODES = tuple(dict.fromkeys(SENSOR_FAULT_MODES + MODEM_FAULT_MODES + NETWORK_FAULT_MODES))
DAY_US = 86_400_000_000
POWER_OFF_S = 5      # how long the supply stays off after a power cut
RAK_OUI = bytes.fromhex("AC1F09")   # RAKwireless' IEEE OUI: the RAK3172's factory DevEUIs


@dataclass
class Uplink:
    node: str
    kind: str
    dev_eui: str
    counter: int
    frame: str          # hex of the application payload exactly as handed to the modem
    decoded: dict
    truth: dict
    t: float            # virtual seconds since the start of the run
    port: int
    fcnt: int
    dr: int
    airtime_ms: float
    airtime_day_s: float = 0.0  # the device's time on air over the 24 h up to this uplink
    # Every reading the frame carries, decoded, in the node's order (a node record first,
    # then the readings oldest first); `decoded` and `truth` are those of the last one.
    readings: list = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


@dataclass
class FaultWindow:
    """`PART:MODE[@START_H[-END_H]]`: the part is in MODE from START_H to END_H
    (simulated hours; default from the start, to the end of the run)."""
    part: str
    mode: str
    start_h: float = 0.0
    end_h: float = float("inf")

    @classmethod
    def parse(cls, text: str) -> "FaultWindow":
        spec, _, window = text.partition("@")
        part, sep, mode = spec.partition(":")
        if not sep or not part or mode not in FAULT_MODES:
            raise ValueError(f"fault {text!r}: expected PART:MODE[@START_H[-END_H]] with MODE one of "
                             f"{', '.join(FAULT_MODES)}")
        start_h, end_h = 0.0, float("inf")
        if window:
            a, _, b = window.partition("-")
            try:
                start_h = float(a)
                end_h = float(b) if b else float("inf")
            except ValueError:
                raise ValueError(f"fault {text!r}: START_H and END_H are hours, e.g. @2-5") from None
            if end_h <= start_h:
                raise ValueError(f"fault {text!r}: the window ends before it starts")
        return cls(part, mode, start_h, end_h)

    def active(self, t_s: float) -> bool:
        return self.start_h * 3600 <= t_s < self.end_h * 3600


@dataclass
class RunStats:
    wakes: int = 0
    uplinks: int = 0
    readings: int = 0
    power_cuts: int = 0
    decode_errors: list = field(default_factory=list)
    wall_s: float = 0.0
    ended: dict = field(default_factory=dict)


class Simulation:
    def __init__(self, kind: str = "climate", board: str | None = None, hours: float = 24,
                 seed: int = 0, out_dir: Path = Path("sim-out"), interval_s: int | None = None,
                 name: str = "node-1", faults: list[FaultWindow] | None = None,
                 config: dict | None = None, modem: str | None = None):
        rig_class = sim_kinds.rig_class(kind)
        board = board or rig_class.DEFAULT_BOARD
        self.kind = kind
        self.board_name = board
        self.board = boards.load(board)
        if modem is not None:
            self.board = boards.with_modem(self.board, modem)
        self.modem = self.board["modem"]["type"]
        if kind not in self.board["kinds"]:
            raise ValueError(f"board {board} cannot be a {kind} node (it supports {self.board['kinds']})")
        self.hours = hours
        self.seed = seed
        self.interval_s = interval_s or getattr(rig_class, "DEFAULT_INTERVAL_S", 900)
        self.config_overrides = dict(config or {})
        self.name = name
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.inventory_path = self.out_dir / "inventory.csv"
        rng = random.Random(f"ids:{seed}:{name}")
        self.dev_eui = RAK_OUI + b"\xff\xfe" + rng.randbytes(3)
        self.join_eui = bytes(8)
        self.app_key = new_key()
        self.payload_key = new_key()
        self.clock = Clock()
        self.network = Network(seed=seed)
        self.node = SimNode(name, self.board, self.out_dir / name, self.clock, self.network,
                            self.dev_eui, seed=seed)
        self.node.flash.erase_all()
        self.rig = rig_class(self)
        self.environment = self.rig.environment
        # Every byte to and from the modem passes the fault script (idle unless told).
        self.modem_faults = ModemFaults(self.node.modem, self.modem, self.clock,
                                        random.Random(f"modem:{seed}:{name}"))
        self.node.uarts[int(self.board["modem"]["uart"])].attach(self.modem_faults)
        self.faults = list(faults or [])
        for f in self.faults:
            self._check_fault(f)
            start_us = int(f.start_h * 3600e6)
            end_us = int(min(f.end_h, 1e9) * 3600e6)
            if f.part == "modem":
                self.modem_faults.windows.append((start_us, end_us, f.mode))
            elif f.part == "network" and f.mode == "nojoin":
                self.network.fail_joins(start_us, end_us)
        self.stats = RunStats()
        self._truth_by_seq: dict[int, dict] = {}
        self.wake_starts: dict[int, int] = {}      # wake number -> virtual µs

    def _check_fault(self, f: "FaultWindow") -> None:
        where = f"fault {f.part}:{f.mode}"
        if f.part == "modem":
            if f.mode not in MODEM_FAULT_MODES:
                raise ValueError(f"{where}: a modem shows {', '.join(MODEM_FAULT_MODES)}")
        elif f.part == "network":
            if f.mode not in NETWORK_FAULT_MODES:
                raise ValueError(f"{where}: the network shows {', '.join(NETWORK_FAULT_MODES)}")
        elif f.part not in self.rig.parts:
            raise ValueError(f"{where}: a {self.kind} node on {self.board_name} has no part "
                             f"{f.part!r} (parts: {', '.join(sorted(self.rig.parts))}, "
                             f"modem, network)")
        elif f.mode not in SENSOR_FAULT_MODES:
            raise ValueError(f"{where}: a part shows {', '.join(SENSOR_FAULT_MODES)}")

    # --- provisioning and flashing ---------------------------------------------------
    def config(self) -> dict:
        """/config.json of the node: the common settings, then the kind's own
        (`Rig.config()`, e.g. thresholds or which bus a probe is on)."""
        cfg = {"kind": self.kind, "interval_s": self.interval_s, "dev_eui": self.dev_eui.hex(),
               "join_eui": self.join_eui.hex(), "port": 2, "dr": 3, "adr": True}
        cfg.update(getattr(self.rig, "config", dict)())
        cfg.update(self.config_overrides)
        return cfg

    def provision(self) -> None:
        if self.inventory_path.exists():
            self.inventory_path.unlink()
        inventory.append(self.inventory_path, {
            "dev_eui": self.dev_eui.hex().upper(), "join_eui": self.join_eui.hex().upper(),
            "app_key": self.app_key.hex().upper(), "payload_key": self.payload_key.hex().upper(),
            "kind": self.kind, "board": self.board_name, "site": "simulated",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
        # The board holds its firmware as a board should (docs/flashing.md): the modules
        # in a ROMFS partition, imported in place; main.py on the filesystem.
        rom, files = firmware_build.split(firmware_build.build())
        self.node.rom = firmware_build.romfs_file(rom)
        files["board.json"] = json.dumps(self.board, indent=1).encode()
        files.update(config_image.files(self.config()))
        files["keys.json"] = json.dumps({"app_key": self.app_key.hex(),
                                         "payload_key": self.payload_key.hex()}).encode()
        self.node.install(files)

    # --- running -----------------------------------------------------------------------
    def _apply_faults(self) -> None:
        t = self.clock.now_s
        for part, model in self.rig.parts.items():
            active = [f.mode for f in self.faults if f.part == part and f.active(t)]
            model.fault = active[-1] if active else None
        if any(f.part == "network" and f.mode == "down" for f in self.faults):
            self.network.available = not any(f.part == "network" and f.mode == "down"
                                             and f.active(t) for f in self.faults)

    def decode(self, frame: bytes) -> tuple[int, list[dict]]:
        """(counter, the readings of the frame): one, or several packed in one frame."""
        counter, body = envelope.unseal(self.payload_key, self.dev_eui, frame)
        return counter, schemas.decode_readings(body)

    def run(self, on_wake=None, power_cuts=None):
        """Yield each uplink the network receives, decoded, beside its truth.

        `power_cuts(wake_number)` may return None, ("flash_op", n) to cut the power inside
        the n-th flash operation of that wake, or ("at", µs) to cut it that long after the
        wake starts (which may fall into the deep sleep after it). The power comes back
        `POWER_OFF_S` later and the node boots from a power-on reset.
        """
        self.provision()
        end_us = int(self.hours * 3600e6)
        seen = 0
        t0 = wallclock.monotonic()
        while self.clock.now_us < end_us:
            self._apply_faults()
            cut = power_cuts(self.stats.wakes + 1) if power_cuts else None
            start = self.clock.now_us
            self.wake_starts[self.stats.wakes + 1] = start
            cut_at = start + cut[1] if cut and cut[0] == "at" else None
            wake = self.node.wake(cut_at_us=cut_at,
                                  cut_at_flash_op=cut[1] if cut and cut[0] == "flash_op" else None)
            if hasattr(self.rig, "after_wake"):
                self.rig.after_wake(wake)   # e.g. the energy a wake drew from the store
            self.stats.wakes += 1
            self.stats.ended[wake.ended] = self.stats.ended.get(wake.ended, 0) + 1
            for seq in wake.readings:
                self._truth_by_seq[seq] = self.rig.truth(wake)
                self.stats.readings += 1
            if on_wake:
                on_wake(wake)
            while seen < len(self.network.uplinks):
                up = self.network.uplinks[seen]
                seen += 1
                if up.dev_eui != self.dev_eui.hex().upper() or not up.payload:
                    continue
                yield self._uplink(up)
            if wake.ended == "deepsleep":
                wake_at = self.clock.now_us + wake.sleep_ms * 1000
                if cut_at is not None and cut_at < wake_at:
                    # The cut falls into the deep sleep: RTC memory and modem session go.
                    self.clock.advance_to(cut_at)
                    self.node.power_cut()
                    self.stats.power_cuts += 1
                    self.clock.advance_to(cut_at + POWER_OFF_S * 1_000_000)
                else:
                    self._sleep_until(wake_at)
            elif wake.ended == "power_cut":
                self.stats.power_cuts += 1
                self.clock.advance_to(self.clock.now_us + POWER_OFF_S * 1_000_000)
        self.stats.wall_s = wallclock.monotonic() - t0

    def _sleep_until(self, wake_at: int) -> None:
        """Deep sleep until the timer, or until an armed wake pin sees its edge (the
        kind's rig says when: `next_pin_wake(pins, from_us, to_us)`)."""
        edge = None
        if self.node.wake_pins and hasattr(self.rig, "next_pin_wake"):
            edge = self.rig.next_pin_wake(dict(self.node.wake_pins), self.clock.now_us, wake_at)
        if edge is not None and edge < wake_at:
            self.clock.advance_to(edge)
            self.node.wake_by_pin()
        else:
            self.clock.advance_to(wake_at)

    def _uplink(self, up) -> Uplink:
        try:
            counter, readings = self.decode(up.payload)
        except (envelope.EnvelopeError, schemas.SchemaError) as e:
            self.stats.decode_errors.append(str(e))
            counter, readings = -1, [{"error": str(e)}]
        self.stats.uplinks += 1
        decoded = readings[-1]
        return Uplink(self.name, self.kind, self.dev_eui.hex().upper(), counter, up.payload.hex(),
                      decoded, self._truth_by_seq.get(decoded.get("seq"), {}), round(up.t_us / 1e6, 3),
                      up.port, up.fcnt, up.dr, round(up.airtime_us / 1000, 3),
                      round(self.network.airtime_us(up.dev_eui, up.t_us - DAY_US, up.t_us + 1) / 1e6, 3),
                      readings)
