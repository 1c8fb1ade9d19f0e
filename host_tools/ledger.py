"""The decoder's memory of each device: the last frame counter it accepted and the
readings it has seen, kept safely across runs.

    with Ledger(path) as ledger:            # takes an exclusive lock on path + ".lock"
        verdict = ledger.accept(dev_eui, counter, seq)

A frame whose counter is not above the last accepted one is a replay and is rejected
(design.md: "a counter not above the last one it accepted"). A fresh counter carrying a
reading already seen is a repeat the node sent after an unconfirmed attempt: accepted,
marked duplicate, not counted twice. A reading number that skips ahead reports the
readings in between as lost. The file is replaced atomically, so a crash mid-write
leaves the previous state; two decoders never interleave (fcntl lock).
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

_RECENT = 64     # reading numbers remembered per device to recognise repeats


class ReplayError(ValueError):
    """The frame's counter is not above the last one accepted for this device."""


_LOST_LISTED = 1000   # reading numbers listed per gap; the count is always whole


@dataclass
class Verdict:
    duplicate: bool = False                 # the reading was already delivered
    lost: list[int] = field(default_factory=list)   # readings skipped (the first 1000)
    lost_count: int = 0                     # how many readings the gap skipped


class Ledger:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock_fd: int | None = None
        self.devices: dict[str, dict] = {}

    # --- the lock and the file ----------------------------------------------------------
    def __enter__(self) -> "Ledger":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        self.devices = self._load()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._save()
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _load(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as e:
            raise ValueError(f"decoder state {self.path} is damaged ({e}); it was left as it is") from None
        if not isinstance(data, dict) or not isinstance(data.get("devices"), dict):
            raise ValueError(f"decoder state {self.path} is not a ledger file; it was left as it is")
        return data["devices"]

    def _save(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump({"version": 1, "devices": self.devices}, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    # --- the rules ----------------------------------------------------------------------
    def check(self, dev_eui: str, counter: int) -> None:
        """ReplayError if `counter` is not above the last accepted; changes nothing."""
        last = self.devices.get(dev_eui.upper(), {}).get("counter")
        if last is not None and counter <= last:
            raise ReplayError(f"replay: counter {counter} is not above {last}, the last accepted "
                              f"from {dev_eui.upper()}; the frame was rejected")

    def accept(self, dev_eui: str, counter: int, seq: int) -> Verdict:
        """Record an authentic frame (its tag already verified)."""
        self.check(dev_eui, counter)
        dev = self.devices.setdefault(dev_eui.upper(), {"recent": []})
        dev["counter"] = counter
        verdict = Verdict()
        recent = dev["recent"]
        last_seq = dev.get("seq")
        if seq in recent or (last_seq is not None and seq <= last_seq - _RECENT):
            verdict.duplicate = True
            return verdict
        if last_seq is not None and seq > last_seq + 1:
            verdict.lost_count = seq - last_seq - 1
            verdict.lost = list(range(last_seq + 1, min(seq, last_seq + 1 + _LOST_LISTED)))
            dev["lost"] = dev.get("lost", 0) + verdict.lost_count
        if last_seq is None or seq > last_seq:
            dev["seq"] = seq
        recent.append(seq)
        del recent[:-_RECENT]
        dev["readings"] = dev.get("readings", 0) + 1
        return verdict
