"""Sealed configuration downlinks, built on the host (docs/payload.md, "Downlinks").

    d = build(dev_eui, ["interval_s=600"], inventory=Path("inventory.csv"),
              state=Path("downlinks.json"))
    d["hex"], d["base64"], d["fport"], d["counter"]

The body is CBOR `[1, {key: value, ...}]` ("set"), sealed like an uplink but with
direction 1 and the city's own downlink counter for the device, kept in a state file
(mode 0600, locked while it is read and written, replaced atomically) so that two
commands never hand out the same counter. Every value is checked against
firmware/node/options.py, the table the node checks it against, before a counter is
taken: a refused command leaves the state file as it was. No key is ever printed.
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import tempfile
from pathlib import Path

import cbor2

from host_tools import envelope, inventory
from host_tools import provision as prov

SET = 1
DEFAULT_FPORT = 2          # the node's `port` setting (node/settings.py); its default


class DownlinkError(ValueError):
    """A downlink that cannot be built; nothing was stored."""


def _dev_eui(text: str) -> bytes:
    try:
        b = bytes.fromhex(text)
    except ValueError:
        b = b""
    if len(b) != 8:
        raise DownlinkError(f"DevEUI {text!r} must be 16 hex digits")
    return b


def changes(pairs: list[str], kind: str | None) -> dict:
    """key=value pairs checked as the node checks them; values CBOR can carry to it."""
    if not pairs:
        raise DownlinkError("set needs key=value pairs, e.g. interval_s=600")
    try:
        out = prov.parse_settings(pairs, kind)
    except ValueError as e:
        raise DownlinkError(f"{e}; no downlink was built") from None
    # Rules between keys (check_config) need the node's whole configuration: the node
    # checks them before it changes anything.
    for key, value in list(out.items()):
        if value is None:
            raise DownlinkError(f"{key}: a downlink sets a value; back to the default is "
                                "`nodectl config set` over serial")
        if isinstance(value, float):
            # The node's CBOR decoder has no floats (firmware/payload/cbor.py).
            if value != int(value):
                raise DownlinkError(f"{key}={value}: a downlink carries whole numbers only; "
                                    "set it over serial with `nodectl config set`")
            out[key] = int(value)
    return out


def body(settings: dict) -> bytes:
    return cbor2.dumps([SET, settings])


class CounterState:
    """The last downlink counter per device: `with CounterState(path) as st: st.take(eui)`."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.counters: dict[str, int] = {}
        self._fd: int | None = None

    def __enter__(self) -> "CounterState":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(str(self.path) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            data = {"version": 1, "downlink_counters": {}}
        except json.JSONDecodeError as e:
            self._unlock()
            raise DownlinkError(f"downlink state {self.path} is damaged ({e}); it was left as "
                                "it is") from None
        if not isinstance(data, dict) or not isinstance(data.get("downlink_counters"), dict):
            self._unlock()
            raise DownlinkError(f"{self.path} is not a downlink state file; it was left as it is")
        self.counters = data["downlink_counters"]
        return self

    def take(self, dev_eui: str) -> int:
        n = self.counters.get(dev_eui.upper(), -1) + 1
        if n > envelope.COUNTER_MAX:
            raise DownlinkError(f"the downlink counter of {dev_eui} is exhausted; the device "
                                "needs a new payload key")
        self.counters[dev_eui.upper()] = n
        return n

    def _save(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name + ".")
        try:
            with os.fdopen(fd, "w") as f:     # mkstemp makes it 0600
                json.dump({"version": 1, "downlink_counters": self.counters}, f, indent=1,
                          sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _unlock(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._save()
        finally:
            self._unlock()


def build(dev_eui: str, pairs: list[str], inventory_path: Path, state_path: Path,
          fport: int = DEFAULT_FPORT) -> dict:
    """The sealed "set" downlink for a device of the inventory, under its next counter."""
    eui = _dev_eui(dev_eui)
    if not 1 <= fport <= 223:
        raise DownlinkError(f"FPort {fport} must be 1..223 (0 is for MAC commands)")
    try:
        row = inventory.read(Path(inventory_path)).get(dev_eui.upper())
    except inventory.InventoryError as e:
        raise DownlinkError(str(e)) from None
    if row is None:
        raise DownlinkError(f"DevEUI {dev_eui.upper()} is not in inventory {inventory_path}")
    settings = changes(pairs, row.get("kind") or None)
    key = bytes.fromhex(row["payload_key"])
    with CounterState(state_path) as st:
        counter = st.take(dev_eui)
        frame = envelope.seal(key, eui, counter, body(settings), envelope.DOWNLINK)
    return {"dev_eui": dev_eui.upper(), "counter": counter, "fport": fport, "set": settings,
            "hex": frame.hex(), "base64": base64.b64encode(frame).decode(), "bytes": len(frame)}
