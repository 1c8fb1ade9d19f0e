"""Counts of the resets that were not a wake from deep sleep, since install.

    counts = count_reset(machine.reset_cause(), steps.slept())   # {"pwron": 3, "wdt": 1}
    totals()        # [pwron, hard, wdt, soft, brownout, other]: the node record's order

A wake from deep sleep is the normal cycle and costs no flash write; any other reset
(power on, watchdog, hard reset) is worth knowing about in the field, and is rare.

What the ports report (docs/watchdog.md):
- esp32: PWRON_RESET, HARD_RESET (the EN pin), WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET
  (machine.reset, a panic), 0 for the rest. A brownout comes back as WDT_RESET
  (ports/esp32/modmachine.c maps RTCWDT_BROWN_OUT_RESET there), so "brownout" stays 0.
- rp2: only PWRON_RESET and WDT_RESET exist, and a wake from deep sleep reports
  WDT_RESET too: rp2's deepsleep ends in a watchdog reboot (ports/rp2/modmachine.c,
  micropython#19409). `slept` (the step record says the last run went to deep sleep as
  planned) tells the two apart.
"""
import json
import os

import machine

from node.flashfs import ensure_dir

_FILE = "state/resets.json"
_TMP = "state/resets.new"
# The node record's order (docs/kinds/node.md); new names go at the end, never between.
NAMES = ("pwron", "hard", "wdt", "soft", "brownout", "other")
_CAUSES = (("PWRON_RESET", "pwron"), ("HARD_RESET", "hard"), ("WDT_RESET", "wdt"),
           ("SOFT_RESET", "soft"), ("BROWNOUT_RESET", "brownout"))


def name_of(cause, slept=False):
    """The counter a reset cause goes to, or None for a wake from deep sleep."""
    deepsleep = getattr(machine, "DEEPSLEEP_RESET", None)
    if deepsleep is not None and cause == deepsleep:
        return None
    if deepsleep is None and slept and cause == machine.WDT_RESET:
        return None      # rp2: the reboot that ends every deep sleep
    for attr, name in _CAUSES:
        value = getattr(machine, attr, None)
        if value is not None and cause == value:
            return name
    return "other"


def counts():
    """The counts by name (only the names seen so far)."""
    try:
        with open(_FILE) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return dict((k, v) for k, v in data.items() if k in NAMES and isinstance(v, int) and v >= 0)


def totals():
    """The counts as a list in NAMES order (the node record's `resets` array)."""
    data = counts()
    return [data.get(name, 0) for name in NAMES]


def count_reset(cause, slept=False):
    """Count this boot's reset (nothing for a deep-sleep wake); the counts, or None."""
    name = name_of(cause, slept)
    if name is None:
        return None
    data = counts()
    data[name] = data.get(name, 0) + 1
    try:
        ensure_dir("state")
        # Written aside and renamed (atomic on littlefs): a power cut keeps the old counts.
        with open(_TMP, "w") as f:
            json.dump(data, f)
        os.rename(_TMP, _FILE)
    except OSError:
        pass   # a full or failing flash must not stop the wake
    return data
