"""Configuration by downlink: a sealed command from the city, verified before it is
applied, and confirmed in the next node record (docs/payload.md, "Downlinks").

    from node import downlink
    downlink.receive(modem, settings)   # after the sends: handles modem.downlinks
    downlink.confirmations()            # [[counter, status, [keys]], ...] not yet reported
    downlink.reported(n)                # the first n went out in an ACKed node record

A downlink on the node's port is an envelope with direction 1 and the city's own
downlink counter; its body is `[1, {key: value, ...}]` ("set"). It is applied only if
the tag is right, the counter is above the last one accepted, and every key and value
passes node/options.py (each key, then the whole configuration): all or nothing,
written through the two-copy store (node/config_store.py). Each downlink, applied or
not, leaves a confirmation for the next node record.

Power cuts: the configuration is written first, then the last accepted counter (the
state file is written aside and renamed, so it is old or new, never torn). A cut
between the two leaves the new configuration with the old counter: the same frame
heard again would only write the same values once more.
"""
from micropython import const
import json
import os

from node.flashfs import ensure_dir
from node.log import log

_FILE = "state/downlink"
_TMP = "state/downlink.new"
SET = 1                 # command id of "set"
# Confirmation statuses (docs/payload.md, "Downlinks"; host_tools/kind_schemas/node.py).
APPLIED = 0
BAD_FRAME = 1           # bad tag, truncated, unknown version: forged or corrupted
REPLAY = 2              # counter not above the last accepted
INVALID = 3             # a key or value the node refuses; keys: the offending one
UNKNOWN = 4             # not a command this firmware knows
_KEEP = const(4)               # confirmations kept until reported; beyond, the oldest goes


def _load():
    try:
        with open(_FILE) as f:
            st = json.load(f)
    except (OSError, ValueError):
        st = None
    if not isinstance(st, dict) or not isinstance(st.get("last"), int) \
            or not isinstance(st.get("confirm"), list):
        st = {"last": -1, "confirm": []}
    return st


def _save(st):
    ensure_dir("state")
    with open(_TMP, "w") as f:
        json.dump(st, f)
    os.rename(_TMP, _FILE)


def confirmations():
    return _load()["confirm"]


def reported(n):
    """The oldest `n` confirmations went out in a node record that was ACKed."""
    if n <= 0:
        return
    st = _load()
    st["confirm"] = st["confirm"][n:]
    _save(st)


def _command(body):
    """The changes of a "set" body; ValueError(reason, status)."""
    from payload import cbor
    try:
        cmd = cbor.loads(body)
    except ValueError as e:
        raise ValueError("body is not CBOR (%s)" % e, UNKNOWN)
    if not isinstance(cmd, list) or len(cmd) != 2 or cmd[0] != SET \
            or not isinstance(cmd[1], dict) or not cmd[1]:
        raise ValueError("not a set command [1, {key: value}]", UNKNOWN)
    return cmd[1]


def _apply(changes):
    """Check every change, then write them all; ValueError(reason, status, key)."""
    from node import config_store, options
    cfg = config_store.load()
    if cfg is None:
        raise ValueError("no whole configuration to change", INVALID, None)
    new = dict(cfg)
    for key in changes:
        if not isinstance(key, str):
            raise ValueError("a key must be text", INVALID, None)
        try:
            new[key] = options.check(key, changes[key], cfg.get("kind"))
        except ValueError as e:
            raise ValueError(str(e), INVALID, key)
    try:
        options.check_config(new)
    except ValueError as e:
        raise ValueError(str(e), INVALID, None)
    config_store.save(new)
    return new


def _settle(settings, cfg):
    """The wake's settings follow the new configuration (the interval from this sleep)."""
    settings.options = dict(settings.options)
    settings.options.update(cfg)
    settings.interval_ms = int(settings.options.get("interval_s", 900)) * 1000
    settings.queue_max = int(settings.options.get("queue_max", settings.queue_max))


def _handle(frame, settings, st):
    """The confirmation [counter, status, keys] of one downlink frame."""
    from payload import envelope
    counter = 0
    if len(frame) >= 2 and 2 + ((frame[0] >> 3) & 3) <= len(frame):
        for b in frame[1:2 + ((frame[0] >> 3) & 3)]:
            counter = (counter << 8) | b       # as the header says; unauthenticated
    try:
        counter, body = envelope.unseal(settings.payload_key, settings.dev_eui, frame,
                                        envelope.DOWNLINK)
    except ValueError as e:
        log("downlink counter=%d rejected: %s", counter, e)
        return [counter, BAD_FRAME, []]
    if counter <= st["last"]:
        log("downlink counter=%d rejected: replay (last accepted %d)", counter, st["last"])
        return [counter, REPLAY, []]
    try:
        changes = _command(body)
        cfg = _apply(changes)
    except ValueError as e:
        key = e.args[2] if len(e.args) > 2 else None
        log("downlink counter=%d rejected: %s; nothing changed", counter, e.args[0])
        # A refused command is not applied, but it was authentic: its counter is spent.
        st["last"] = counter
        return [counter, e.args[1], [key] if key else []]
    st["last"] = counter
    _settle(settings, cfg)
    keys = sorted(changes)
    log("downlink counter=%d applied %s", counter, ",".join(keys))
    return [counter, APPLIED, keys]


def receive(modem, settings):
    """Handle the downlinks the modem received on the node's port; others stay."""
    mine = [d for d in modem.downlinks if d[0] == settings.port]
    if not mine:
        return 0
    modem.downlinks = [d for d in modem.downlinks if d[0] != settings.port]
    st = _load()
    for _, frame in mine:
        try:
            conf = _handle(bytes(frame), settings, st)
        except Exception as e:  # noqa: BLE001 - a bad downlink must not cost the wake
            log("downlink error: %s %s", type(e).__name__, e)
            conf = [0, BAD_FRAME, []]
        st["confirm"] = (st["confirm"] + [conf])[-_KEEP:]
        _save(st)
    return len(mine)
