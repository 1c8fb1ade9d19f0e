"""The node's configuration (two copies with a CRC, node/config_store.py) and keys
(/keys.json) on its flash.

    cfg = Settings.load()
    cfg.interval_ms, cfg.dev_eui, cfg.payload_key

Keys are read for use and never printed; an error message never contains one.
"""
import json
from binascii import unhexlify

from node import config_store

CONFIG_FILE = "config"
KEYS_FILE = "keys.json"
_DEFAULTS = {"interval_s": 900, "port": 2, "dr": 3, "adr": True, "queue_max": 288}


class SettingsError(Exception):
    pass


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        raise SettingsError("%s missing: the node is not provisioned" % path)
    except ValueError:
        raise SettingsError("%s is not valid JSON" % path)


def _hex_bytes(d, name, n, where):
    v = d.get(name)
    try:
        b = unhexlify(v)
    except (TypeError, ValueError):
        b = b""
    if len(b) != n:
        raise SettingsError("%s: %s must be %d hex bytes" % (where, name, n))
    return b


class Settings:
    def __init__(self, config, keys):
        c = dict(_DEFAULTS)
        c.update(config)
        self.kind = c.get("kind")
        if not isinstance(self.kind, str):
            raise SettingsError("%s: kind missing" % CONFIG_FILE)
        self.interval_ms = int(c["interval_s"]) * 1000
        if self.interval_ms < 60000:
            raise SettingsError("%s: interval_s below 60" % CONFIG_FILE)
        self.port = int(c["port"])
        if not 1 <= self.port <= 223:
            raise SettingsError("%s: port must be 1..223" % CONFIG_FILE)
        self.dr = int(c["dr"])
        self.adr = bool(c["adr"])
        self.queue_max = int(c["queue_max"])
        self.options = c
        self.dev_eui = _hex_bytes(c, "dev_eui", 8, CONFIG_FILE)
        self.join_eui = _hex_bytes(c, "join_eui", 8, CONFIG_FILE)
        self.app_key = _hex_bytes(keys, "app_key", 16, KEYS_FILE)
        self.payload_key = _hex_bytes(keys, "payload_key", 16, KEYS_FILE)

    @classmethod
    def load(cls):
        config = config_store.load()
        if config is None:
            raise SettingsError("no whole copy of the configuration: the node is not provisioned")
        return cls(config, _read_json(KEYS_FILE))
