"""The decoder's memory of each device: the last frame counter it accepted and the
readings it has seen, kept safely across runs.

    with Ledger(path) as ledger:            # takes an exclusive lock on path + ".lock"
        verdict = ledger.accept(dev_eui, counter, seq)
        verdicts = ledger.accept_frame(dev_eui, counter, readings)   # a frame of several

A frame whose counter is not above the last accepted one is a replay and is rejected
(design.md: "a counter not above the last one it accepted"). A fresh counter carrying a
reading already seen is a repeat the node sent after an unconfirmed attempt: accepted,
marked duplicate, not counted twice. A reading number that skips ahead leaves the
readings in between as lost, "not received"; one that arrives later (the node sends
again what no ACK confirmed) is taken back out of the lost. A node record (schema 6)
names readings the node dropped, with the reason: those are "dropped by the node"
(queue full, power cut, unsendable), whether the gap was seen before the record or
after. A reading that was delivered stays delivered whatever a record says. The file
is replaced atomically, so a crash mid-write leaves the previous state; two decoders
never interleave (fcntl lock).
"""
from __future__ import annotations

import fcntl
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

_RECENT = 64         # reading numbers remembered per device (older state files have them)
_LOST_LISTED = 1000  # reading numbers listed per gap; the count is always whole
_RANGES_KEPT = 512   # gap and dropped-ahead ranges kept per device; beyond, the oldest go


class ReplayError(ValueError):
    """The frame's counter is not above the last one accepted for this device."""


@dataclass
class Verdict:
    duplicate: bool = False                 # the reading was already delivered
    lost: list[int] = field(default_factory=list)   # readings skipped (the first 1000)
    lost_count: int = 0                     # how many readings the gap skipped, not dropped
    late: bool = False                      # it fills a gap seen earlier
    # Readings this frame reported dropped by the node: [first, last, reason]; and those
    # of the gap that a record had already named.
    dropped: list[list] = field(default_factory=list)


def _add(ranges: list, first: int, last: int, *tag) -> None:
    if ranges and ranges[-1][1] + 1 == first and list(ranges[-1][2:]) == list(tag):
        ranges[-1][1] = last
    else:
        ranges.append([first, last, *tag])
    del ranges[:-_RANGES_KEPT]


def _cut(ranges: list, first: int, last: int) -> list:
    """Remove [first, last] from `ranges`; return the pieces removed [[a, b, *tag]]."""
    keep, taken = [], []
    for r in ranges:
        a, b = r[0], r[1]
        if b < first or a > last:
            keep.append(r)
            continue
        if a < first:
            keep.append([a, first - 1, *r[2:]])
        if b > last:
            keep.append([last + 1, b, *r[2:]])
        taken.append([max(a, first), min(b, last), *r[2:]])
    ranges[:] = keep
    return taken


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
        """Record an authentic frame (its tag already verified) carrying one reading."""
        return self.accept_frame(dev_eui, counter, [{"seq": seq}])[0]

    def accept_frame(self, dev_eui: str, counter: int, readings: list[dict]) -> list[Verdict]:
        """Record an authentic frame carrying `readings` (decoded bodies, each with its
        "seq"; a node record's "dropped" ranges are applied): one Verdict each."""
        self.check(dev_eui, counter)
        dev = self.devices.setdefault(dev_eui.upper(), {"recent": []})
        dev["counter"] = counter
        # In seq order: a frame carries the node record first, and the record's seq is
        # newer than the readings after it (they were queued before it was numbered).
        verdicts = [None] * len(readings)
        for i in sorted(range(len(readings)), key=lambda i: readings[i]["seq"]):
            reading = readings[i]
            verdict = self._reading(dev, reading["seq"])
            if reading.get("kind") == "node":
                dev["records"] = dev.get("records", 0) + 1
                for r in reading.get("dropped", ()):
                    verdict.dropped += self._dropped(dev, r["first"], r["last"], r["reason"])
            verdicts[i] = verdict
        return verdicts

    def _reading(self, dev: dict, seq: int) -> Verdict:
        verdict = Verdict()
        last_seq = dev.get("seq")
        gaps = dev.setdefault("gaps", [])
        recent = dev.setdefault("recent", [])
        if last_seq is not None and seq <= last_seq:
            if not _cut(gaps, seq, seq):
                verdict.duplicate = True
                return verdict
            verdict.late = True               # sent again after no ACK: not lost after all
            dev["lost"] = dev.get("lost", 0) - 1
        elif last_seq is not None and seq > last_seq + 1:
            first, last = last_seq + 1, seq - 1
            named = _cut(dev.setdefault("ahead", []), first, last)
            for a, b, reason in named:
                self._count_dropped(dev, a, b, reason)
                verdict.dropped.append([a, b, reason])
            missing = [first, last]
            for a, b, _ in sorted(named):
                if a > missing[0]:
                    self._lose(dev, verdict, missing[0], a - 1)
                missing[0] = b + 1
            if missing[0] <= last:
                self._lose(dev, verdict, missing[0], last)
        if last_seq is None or seq > last_seq:
            dev["seq"] = seq
            dev.setdefault("first", seq)
        recent.append(seq)
        del recent[:-_RECENT]
        dev["readings"] = dev.get("readings", 0) + 1
        return verdict

    def _lose(self, dev: dict, verdict: Verdict, first: int, last: int) -> None:
        n = last - first + 1
        verdict.lost_count += n
        room = _LOST_LISTED - len(verdict.lost)
        verdict.lost += list(range(first, first + min(n, max(0, room))))
        dev["lost"] = dev.get("lost", 0) + n
        _add(dev.setdefault("gaps", []), first, last)

    def _count_dropped(self, dev: dict, first: int, last: int, reason: str) -> None:
        counts = dev.setdefault("dropped", {})
        counts[reason] = counts.get(reason, 0) + last - first + 1
        _add(dev.setdefault("dropped_ranges", []), first, last, reason)

    def _dropped(self, dev: dict, first: int, last: int, reason: str) -> list[list]:
        """The node reports [first, last] dropped: what was lost becomes dropped with the
        reason, what is still ahead is remembered; delivered readings stay delivered."""
        named = []
        seen_from = dev.get("first")
        if seen_from is not None and first < seen_from:
            # Before the first reading this ledger saw: never delivered here.
            self._count_dropped(dev, first, min(last, seen_from - 1), reason)
            named.append([first, min(last, seen_from - 1), reason])
            dev["first"] = first
        for a, b in _cut(dev.setdefault("gaps", []), first, last):
            dev["lost"] = dev.get("lost", 0) - (b - a + 1)
            self._count_dropped(dev, a, b, reason)
            named.append([a, b, reason])
        last_seq = dev.get("seq")
        ahead_from = first if last_seq is None else max(first, last_seq + 1)
        if ahead_from <= last:
            ahead = dev.setdefault("ahead", [])
            _cut(ahead, ahead_from, last)     # a second report of the same seqs wins
            _add(ahead, ahead_from, last, reason)
            ahead.sort()
        return named

    def account(self, dev_eui: str) -> dict:
        """What the ledger knows of a device: readings delivered, lost (not received),
        dropped by the node per reason, and the gap ranges of each."""
        dev = self.devices.get(dev_eui.upper(), {})
        return {"readings": dev.get("readings", 0), "records": dev.get("records", 0),
                "lost": dev.get("lost", 0), "dropped": dict(dev.get("dropped", {})),
                "gaps": [list(r) for r in dev.get("gaps", [])],
                "dropped_ranges": [list(r) for r in dev.get("dropped_ranges", [])],
                "seq": dev.get("seq")}
