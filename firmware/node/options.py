"""The settings a technician may change, with their types and ranges: one table that
the node (node/provision.py) and the host (host_tools/provision.py, `nodectl config
set`) both check values against, so both refuse the same things.

    value = options.check("interval_s", 600, "climate")      # ValueError(reason) if bad
    options.check_config(cfg)                                  # rules between keys

Written in the subset CPython and MicroPython share (no f-strings, no typing), and
imports nothing, so the host loads this very file. The kind keys are the ones the kind
modules read (docs/kinds/<kind>.md, "Config keys"); the general ones are read by
node/settings.py and node/delivery.py.
"""

# key: (type, low, high, kind or None). Types: "int", "num" (int or float), "bool",
# "str" (low..high characters, no control characters), "map" (sonde register map).
OPTIONS = {
    "interval_s": ("int", 60, 86400, None),
    "port": ("int", 1, 223, None),
    "dr": ("int", 0, 5, None),
    "adr": ("bool", None, None, None),
    "queue_max": ("int", 1, 1000, None),
    "confirm_after": ("int", 1, 1000, None),
    "airtime_s_per_day": ("num", 1, 3600, None),
    "downlinks_per_day": ("int", 0, 100, None),
    "site": ("str", 1, 40, None),
    "lat": ("num", -90, 90, None),
    "lon": ("num", -180, 180, None),
    "rain_mm_per_tip": ("num", 0.01, 10, "climate"),
    "rain_alarm_mm_h": ("num", 1, 500, "climate"),
    "rain_alarm_clear_mm_h": ("num", 0, 500, "climate"),
    "rain_alarm_rearm_min": ("int", 5, 1440, "climate"),
    "soil_sdi12_crc": ("bool", None, None, "soil"),
    "sonde_unit": ("int", 1, 247, "water"),
    "sonde_timeout_ms": ("int", 50, 5000, "water"),
    "sonde_map": ("map", None, None, "water"),
    "glass_wake_mg": ("int", 16, 2000, "glass"),
    "glass_impact_mg": ("int", 16, 4000, "glass"),
    "glass_quiet_mg": ("int", 1, 2000, "glass"),
    "glass_loud_mg": ("int", 16, 4000, "glass"),
    "glass_tilt_deg": ("num", 1, 90, "glass"),
    "glass_quiet_s": ("num", 1, 600, "glass"),
    "glass_capacity": ("int", 10, 100000, "glass"),
    "glass_pour_base_s": ("num", 0.1, 600, "glass"),
    "glass_pour_full_s": ("num", 0.1, 600, "glass"),
    "glass_low_mv": ("int", 500, 6000, "glass"),
    "glass_critical_mv": ("int", 500, 6000, "glass"),
}

# Set by their own provisioning commands, never as an option.
IDENTITY = ("kind", "dev_eui", "join_eui")
_ORDERS = ("ABCD", "CDAB", "BADC", "DCBA")


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return (_is_int(v) or isinstance(v, float)) and v == v and v not in (float("inf"), float("-inf"))


def _range(key, v, lo, hi):
    if v < lo or v > hi:
        raise ValueError("%s must be %s..%s, not %s" % (key, lo, hi, v))
    return v


def _check_map(v):
    if not isinstance(v, dict):
        raise ValueError("sonde_map must be an object")
    for k in v:
        if k not in ("model", "function", "order", "block", "params"):
            raise ValueError("sonde_map: unknown field %r" % k)
    if v.get("function", 3) not in (3, 4):
        raise ValueError("sonde_map: function must be 3 or 4")
    if v.get("block", 2) not in (2, 8):
        raise ValueError("sonde_map: block must be 2 or 8")
    if v.get("order", "ABCD") not in _ORDERS:
        raise ValueError("sonde_map: order must be one of %s" % ", ".join(_ORDERS))
    params = v.get("params")
    if not isinstance(params, list) or not 1 <= len(params) <= 32:
        raise ValueError("sonde_map: params must be a list of 1..32 entries")
    for p in params:
        ok = (isinstance(p, list) and len(p) == 5 and isinstance(p[0], str)
              and _is_int(p[1]) and 0 <= p[1] <= 0xFFFF
              and (p[2] is None or _is_int(p[2])) and _is_num(p[3]) and _is_num(p[4])
              and p[3] < p[4])
        if not ok:
            raise ValueError("sonde_map: each param is [name, address, parameter id or "
                             "null, low, high]")
    return v


def check(key, value, kind):
    """`value` for `key` on a node of `kind`, or ValueError saying what is wrong."""
    if key in IDENTITY:
        raise ValueError("%s is set when the node is provisioned, not as an option" % key)
    spec = OPTIONS.get(key)
    if spec is None:
        raise ValueError("unknown setting %r" % key)
    typ, lo, hi, only = spec
    if only is not None and only != kind:
        raise ValueError("%s is a %s setting; this node is a %s node" % (key, only, kind))
    if typ == "int":
        if not _is_int(value):
            raise ValueError("%s must be a whole number" % key)
        return _range(key, value, lo, hi)
    if typ == "num":
        if not _is_num(value):
            raise ValueError("%s must be a number" % key)
        return _range(key, value, lo, hi)
    if typ == "bool":
        if not isinstance(value, bool):
            raise ValueError("%s must be true or false" % key)
        return value
    if typ == "str":
        if not isinstance(value, str) or not lo <= len(value) <= hi:
            raise ValueError("%s must be text of %d..%d characters" % (key, lo, hi))
        for c in value:
            if ord(c) < 32 or ord(c) == 127:
                raise ValueError("%s must not hold control characters" % key)
        return value
    return _check_map(value)


def check_config(cfg):
    """Rules between keys of a whole configuration; ValueError if one is broken."""
    alarm = cfg.get("rain_alarm_mm_h", 15)
    clear = cfg.get("rain_alarm_clear_mm_h")
    if clear is not None and clear > alarm:
        raise ValueError("rain_alarm_clear_mm_h (%s) must not be above rain_alarm_mm_h (%s)"
                         % (clear, alarm))
    low = cfg.get("glass_low_mv", 3300)
    critical = cfg.get("glass_critical_mv", 2500)
    if critical >= low:
        raise ValueError("glass_critical_mv (%s) must be below glass_low_mv (%s)" % (critical, low))
    if ("lat" in cfg) != ("lon" in cfg):
        raise ValueError("lat and lon go together")
