"""Counts of the resets that were not a wake from deep sleep.

    counts = count_reset(machine.reset_cause())   # {"pwron": 3, "wdt": 1, ...}

A wake from deep sleep is the normal cycle and costs no flash write; any other reset
(power on, watchdog, hard reset) is worth knowing about in the field, and is rare.
"""
import json

import machine

from node.flashfs import ensure_dir

_FILE = "state/resets.json"
_NAMES = {
    machine.PWRON_RESET: "pwron",
    machine.HARD_RESET: "hard",
    machine.WDT_RESET: "wdt",
    machine.SOFT_RESET: "soft",
}


def counts():
    try:
        with open(_FILE) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def count_reset(cause):
    if cause == machine.DEEPSLEEP_RESET:
        return None
    data = counts()
    name = _NAMES.get(cause, "other")
    data[name] = data.get(name, 0) + 1
    try:
        ensure_dir("state")
        with open(_FILE, "w") as f:
            json.dump(data, f)
    except OSError:
        pass   # a full or failing flash must not stop the wake
    return data
