"""Body schemas: the CBOR array inside a payload envelope, decoded to a reading.

    reading = decode_body(body)   # {"schema": 1, "kind": "climate", "temperature": 21.37, ...}
    body = encode_reading("climate", {"temperature": 21.37, ...}, faults=[])

A body is a CBOR (RFC 8949) array [schema_id, seq, status, channel values...]:
seq numbers the node's readings (a retransmission keeps its seq under a new
counter, so the host can tell a repeat from a gap); channels are scaled integers
in schema order, null when their part failed;
status bit i set means part `faults[i]` of the schema failed. docs/payload.md
shows the table below.

A frame may carry several bodies as one CBOR array of them, `[[2, seq, ...], ...]`:
its first item is an array where a single body's is the schema id (an integer).
`decode_readings(body)` returns every reading of a frame; `decode_body` one alone.
The node record (schema 6, docs/kinds/node.md) is `[6, seq, status, resets, dropped]`.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import cbor2


class SchemaError(ValueError):
    """A body that does not match a known schema; the message says how."""


@dataclass(frozen=True)
class Channel:
    name: str
    divisor: int   # wire integer / divisor = value in `unit`
    unit: str
    # How far a decoded value may lie from the simulated truth, in `unit`: the part's
    # stated accuracy plus the wire's resolution (documented per channel in
    # docs/payload.md, checked by tests/test_kinds_follow_truth.py).
    accuracy: float = 0.0

    @property
    def scale(self) -> float:
        """Value of one wire step in `unit` (0.01 for centidegrees)."""
        return 1 / self.divisor


@dataclass(frozen=True)
class Schema:
    schema_id: int
    kind: str
    version: int
    channels: tuple[Channel, ...]
    faults: tuple[str, ...]   # status bit i set: part faults[i] failed
    # Status bits after the parts' bits that mark the reading rather than a failure
    # (bit len(faults) + j: flags[j], e.g. "heavy_rain"); decoded under "flags".
    flags: tuple[str, ...] = ()
    # "" (the default): one CBOR integer or null per channel. Otherwise the channels are
    # packed into ONE CBOR byte string: big-endian fixed-width integers, one struct code
    # per channel ("h" int16, "H" uint16, "b"/"B" 8-bit, "i"/"I" 32-bit), with the
    # null sentinel of each code (PACKED_NULL: the most negative signed value, the
    # largest unsigned one) for a channel whose part failed (docs/kinds/water.md).
    packed: str = ""
    # A node record (docs/kinds/node.md) instead of channels: the names of its reset
    # counts in wire order, and of its drop reasons (code i + 1: drop_reasons[i]).
    resets: tuple[str, ...] = ()
    drop_reasons: tuple[str, ...] = ()
    # Downlink confirmation statuses (code i: downlink_statuses[i]), docs/payload.md.
    downlink_statuses: tuple[str, ...] = ()

    @property
    def is_record(self) -> bool:
        return bool(self.drop_reasons)


# The value of a packed channel that stands for null (no reading).
PACKED_NULL = {"b": -0x80, "B": 0xFF, "h": -0x8000, "H": 0xFFFF,
               "i": -0x80000000, "I": 0xFFFFFFFF}


def _collect() -> dict[int, Schema]:
    """Every schema of every kind: one module per kind in host_tools/kind_schemas/."""
    import importlib
    import pkgutil
    from pathlib import Path
    found: dict[int, Schema] = {}
    folder = Path(__file__).parent / "kind_schemas"
    for m in sorted(pkgutil.iter_modules([str(folder)]), key=lambda m: m.name):
        for schema in importlib.import_module(f"host_tools.kind_schemas.{m.name}").SCHEMAS:
            if schema.schema_id in found:
                raise RuntimeError(f"schema id {schema.schema_id} defined twice")
            found[schema.schema_id] = schema
    return found


def schema_for_kind(kind: str) -> Schema:
    """The newest schema of a node kind."""
    found = [s for s in SCHEMAS.values() if s.kind == kind]
    if not found:
        known = ", ".join(sorted({s.kind for s in SCHEMAS.values()}))
        raise SchemaError(f"unknown kind {kind!r} (known: {known})")
    return max(found, key=lambda s: s.version)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def decode_items(items) -> dict:
    """Decode an already CBOR-decoded body array into a reading dict."""
    if not isinstance(items, list) or len(items) < 3:
        raise SchemaError("body must be a CBOR array [schema_id, seq, status, channels...]")
    schema_id, seq, status = items[0], items[1], items[2]
    if not _is_int(schema_id) or schema_id not in SCHEMAS:
        raise SchemaError(f"unknown schema id {schema_id!r} (known: {sorted(SCHEMAS)})")
    schema = SCHEMAS[schema_id]
    if not _is_int(seq) or not 0 <= seq <= 0xFFFFFFFF:
        raise SchemaError(f"reading sequence number {seq!r} is not a 32-bit unsigned integer")
    if schema.is_record:
        return _decode_record(schema, items)
    values = items[3:]
    if schema.packed:
        values = _unpack(schema, values)
    if len(values) != len(schema.channels):
        raise SchemaError(
            f"schema {schema_id} ({schema.kind}) has {len(schema.channels)} channels, "
            f"body has {len(values)}")
    if not _is_int(status) or status < 0 or status >> (len(schema.faults) + len(schema.flags)):
        raise SchemaError(
            f"status {status!r} is not a bitfield of the {len(schema.faults) + len(schema.flags)} "
            f"parts of schema {schema_id}")
    reading: dict = {"schema": schema_id, "kind": schema.kind, "seq": seq}
    for channel, raw in zip(schema.channels, values):
        if raw is None:
            reading[channel.name] = None
        elif _is_int(raw):
            if not -2 ** 64 <= raw < 2 ** 64:
                # CBOR ints on our wire are at most 64 bits; a bignum is no reading.
                raise SchemaError(f"channel {channel.name} value is beyond 64 bits")
            # Division, not multiplication by 0.01: gives the double nearest the decimal.
            reading[channel.name] = raw / channel.divisor
        else:
            raise SchemaError(f"channel {channel.name} must be an integer or null, got {raw!r}")
    reading["faults"] = [part for bit, part in enumerate(schema.faults) if status >> bit & 1]
    if schema.flags:
        reading["flags"] = [flag for bit, flag in enumerate(schema.flags, len(schema.faults))
                            if status >> bit & 1]
    return reading


_RECORD_RESETS_MAX = 16      # reset counters a record may carry (names may be added)
_RECORD_RANGES_MAX = 64      # dropped ranges in one record (a frame holds far fewer)


def _decode_record(schema: Schema, items: list) -> dict:
    """[6, seq, status, resets, dropped] -> {"resets": {name: n}, "dropped": [...]}."""
    sid, seq = items[0], items[1]
    if len(items) not in (5, 6):
        raise SchemaError(f"schema {sid} ({schema.kind}) is [{sid}, seq, status, resets, dropped"
                          f"(, downlinks)], body has {len(items)} items")
    status, resets, dropped = items[2], items[3], items[4]
    if not _is_int(status) or not 0 <= status <= 0xFFFFFFFF:
        raise SchemaError(f"status {status!r} is not an unsigned integer")
    if (not isinstance(resets, list) or not 1 <= len(resets) <= _RECORD_RESETS_MAX
            or not all(_is_int(n) and 0 <= n <= 0xFFFFFFFF for n in resets)):
        raise SchemaError(f"resets must be an array of 1..{_RECORD_RESETS_MAX} counts, got {resets!r}")
    if not isinstance(dropped, list) or len(dropped) > _RECORD_RANGES_MAX:
        raise SchemaError(f"dropped must be an array of at most {_RECORD_RANGES_MAX} ranges")
    ranges = []
    for r in dropped:
        if (not isinstance(r, list) or len(r) != 3 or not all(_is_int(v) for v in r)
                or not 0 <= r[0] <= r[1] <= 0xFFFFFFFF):
            raise SchemaError(f"a dropped range is [first_seq, last_seq, reason] with "
                              f"first <= last, got {r!r}")
        if not 1 <= r[2] <= len(schema.drop_reasons):
            raise SchemaError(f"drop reason {r[2]!r} is unknown (known: 1..{len(schema.drop_reasons)})")
        ranges.append({"first": r[0], "last": r[1], "reason": schema.drop_reasons[r[2] - 1]})
    names = [schema.resets[i] if i < len(schema.resets) else f"reset_{i}" for i in range(len(resets))]
    record = {"schema": sid, "kind": schema.kind, "seq": seq, "status": status,
              "resets": dict(zip(names, resets)), "dropped": ranges}
    if len(items) == 6:
        record["downlinks"] = _decode_confirmations(schema, items[5])
    return record


def _decode_confirmations(schema: Schema, confs) -> list[dict]:
    """[[counter, status, [keys]], ...] -> [{"counter", "status", "keys"}]."""
    if not isinstance(confs, list) or not 1 <= len(confs) <= _RECORD_RANGES_MAX:
        raise SchemaError(f"downlinks must be an array of 1..{_RECORD_RANGES_MAX} confirmations")
    out = []
    for c in confs:
        if (not isinstance(c, list) or len(c) != 3 or not _is_int(c[0])
                or not 0 <= c[0] <= 0xFFFFFFFF or not _is_int(c[1])
                or not isinstance(c[2], list) or not all(isinstance(k, str) for k in c[2])):
            raise SchemaError(f"a downlink confirmation is [counter, status, [keys]], got {c!r}")
        if not 0 <= c[1] < len(schema.downlink_statuses):
            raise SchemaError(f"downlink status {c[1]!r} is unknown "
                              f"(known: 0..{len(schema.downlink_statuses) - 1})")
        out.append({"counter": c[0], "status": schema.downlink_statuses[c[1]], "keys": c[2]})
    return out


def _encode_record(schema: Schema, values: dict, seq: int) -> list:
    unknown = set(values) - {"resets", "dropped"}
    if unknown:
        raise SchemaError(f"a node record has resets and dropped, not {', '.join(sorted(unknown))}")
    resets = values.get("resets") or {}
    extra = set(resets) - set(schema.resets)
    if extra:
        raise SchemaError(f"unknown reset name(s) {', '.join(sorted(extra))} "
                          f"(known: {', '.join(schema.resets)})")
    ranges = []
    for r in values.get("dropped") or ():
        first, last, reason = (r["first"], r["last"], r["reason"]) if isinstance(r, dict) else r
        if isinstance(reason, str):
            if reason not in schema.drop_reasons:
                raise SchemaError(f"unknown drop reason {reason!r} "
                                  f"(known: {', '.join(schema.drop_reasons)})")
            reason = schema.drop_reasons.index(reason) + 1
        ranges.append([first, last, reason])
    return [schema.schema_id, seq, 0, [resets.get(n, 0) for n in schema.resets], ranges]


def _unpack(schema: Schema, values: list) -> list:
    fmt = ">" + schema.packed
    size = struct.calcsize(fmt)
    if len(values) != 1 or not isinstance(values[0], bytes) or len(values[0]) != size:
        raise SchemaError(f"schema {schema.schema_id} ({schema.kind}) carries its channels in "
                          f"one {size}-byte CBOR byte string")
    raw = struct.unpack(fmt, values[0])
    return [None if v == PACKED_NULL[code] else v for v, code in zip(raw, schema.packed)]


def _pack(schema: Schema, raw: list) -> bytes:
    out = []
    for v, code, channel in zip(raw, schema.packed, schema.channels):
        if v is None:
            out.append(PACKED_NULL[code])
            continue
        lo, hi = (0, PACKED_NULL[code] - 1) if code.isupper() else (PACKED_NULL[code] + 1, -PACKED_NULL[code] - 1)
        if not lo <= v <= hi:
            raise SchemaError(f"{channel.name}: {v / channel.divisor} {channel.unit} does not fit "
                              f"the wire ({lo / channel.divisor}..{hi / channel.divisor})")
        out.append(v)
    return struct.pack(">" + schema.packed, *out)


_BATCH_MAX = 255    # readings in one frame (242 bytes cannot hold more)


def _load_body(body: bytes):
    fp = io.BytesIO(bytes(body))
    try:
        items = cbor2.CBORDecoder(fp).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError, RecursionError) as e:
        raise SchemaError(f"body is not valid CBOR: {e}") from None
    # cbor2.loads ignores bytes after the first item; a body is exactly one item.
    if fp.tell() != len(body):
        raise SchemaError(f"body has {len(body) - fp.tell()} bytes of trailing data")
    return items


def is_batch(items) -> bool:
    """A frame of several bodies: an array whose first item is an array (a single
    body starts with its schema id, an integer)."""
    return isinstance(items, list) and bool(items) and isinstance(items[0], list)


def decode_body(body: bytes) -> dict:
    """Decode a plaintext body (CBOR bytes) holding one reading into a reading dict;
    SchemaError if it does not fit (a frame of several: use decode_readings)."""
    items = _load_body(body)
    if is_batch(items):
        raise SchemaError(f"body holds {len(items)} readings in one array; "
                          f"decode_readings() returns them all")
    return decode_items(items)


def decode_readings(body: bytes) -> list[dict]:
    """Every reading of a frame's body, in the order the node packed them (the node
    record first, then the readings oldest first); SchemaError if any does not fit."""
    items = _load_body(body)
    if not is_batch(items):
        return [decode_items(items)]
    if len(items) > _BATCH_MAX:
        raise SchemaError(f"a frame of {len(items)} readings is more than {_BATCH_MAX}")
    out = []
    for i, sub in enumerate(items):
        if is_batch(sub):
            raise SchemaError(f"reading {i} of the frame is itself an array of readings")
        try:
            out.append(decode_items(sub))
        except SchemaError as e:
            raise SchemaError(f"reading {i} of the frame: {e}") from None
    return out


def encode_items(kind: str, values: dict, faults=(), seq: int = 0, schema_id: int | None = None) -> list:
    """The body array [schema_id, seq, status, raw...] for a reading in units, in the
    kind's newest schema or in `schema_id` (an older one, e.g. for test vectors)."""
    schema = schema_for_kind(kind)
    if schema_id is not None:
        if SCHEMAS.get(schema_id) is None or SCHEMAS[schema_id].kind != kind:
            raise SchemaError(f"schema {schema_id} is not a schema of {kind}")
        schema = SCHEMAS[schema_id]
    if schema.is_record:
        return _encode_record(schema, values, seq)
    unknown = set(values) - {c.name for c in schema.channels}
    if unknown:
        raise SchemaError(f"{kind} has no channel(s) {', '.join(sorted(unknown))}")
    status = 0
    bits = schema.faults + schema.flags
    for part in faults:
        if part not in bits:
            raise SchemaError(f"{kind} has no part or flag {part!r} (parts: {', '.join(bits)})")
        status |= 1 << bits.index(part)
    raw = []
    for channel in schema.channels:
        v = values.get(channel.name)
        raw.append(None if v is None else round(v * channel.divisor))
    if schema.packed:
        return [schema.schema_id, seq, status, _pack(schema, raw)]
    return [schema.schema_id, seq, status, *raw]


def encode_reading(kind: str, values: dict, faults=(), seq: int = 0,
                   schema_id: int | None = None) -> bytes:
    """The CBOR body for a reading in units (missing or None channels encode as null)."""
    return cbor2.dumps(encode_items(kind, values, faults, seq, schema_id))


SCHEMAS: dict[int, Schema] = _collect()
