"""Body schemas: the CBOR array inside a payload envelope, decoded to a reading.

    reading = decode_body(body)   # {"schema": 1, "kind": "climate", "temperature": 21.37, ...}
    body = encode_reading("climate", {"temperature": 21.37, ...}, faults=[])

A body is a CBOR (RFC 8949) array [schema_id, seq, status, channel values...]:
seq numbers the node's readings (a retransmission keeps its seq under a new
counter, so the host can tell a repeat from a gap); channels are scaled integers
in schema order, null when their part failed;
status bit i set means part `faults[i]` of the schema failed. docs/payload.md
shows the table below.
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


def decode_body(body: bytes) -> dict:
    """Decode a plaintext body (CBOR bytes) into a reading dict; SchemaError if it does not fit."""
    fp = io.BytesIO(bytes(body))
    try:
        items = cbor2.CBORDecoder(fp).decode()
    except (cbor2.CBORDecodeError, ValueError, TypeError) as e:
        raise SchemaError(f"body is not valid CBOR: {e}") from None
    # cbor2.loads ignores bytes after the first item; a body is exactly one item.
    if fp.tell() != len(body):
        raise SchemaError(f"body has {len(body) - fp.tell()} bytes of trailing data")
    return decode_items(items)


def encode_items(kind: str, values: dict, faults=(), seq: int = 0, schema_id: int | None = None) -> list:
    """The body array [schema_id, seq, status, raw...] for a reading in units, in the
    kind's newest schema or in `schema_id` (an older one, e.g. for test vectors)."""
    schema = schema_for_kind(kind)
    if schema_id is not None:
        if SCHEMAS.get(schema_id) is None or SCHEMAS[schema_id].kind != kind:
            raise SchemaError(f"schema {schema_id} is not a schema of {kind}")
        schema = SCHEMAS[schema_id]
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
