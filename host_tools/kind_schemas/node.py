"""The node record (docs/payload.md, docs/kinds/node.md): not a measurement but the
node's own account, [6, seq, status, resets, dropped].

- resets: total reset counts since install, in this order (firmware/node/resets.py
  NAMES; new names are only ever appended, so an older decoder names the extra ones
  `reset_<i>`);
- dropped: [first_seq, last_seq, reason] ranges of readings the node dropped since
  the last record it had sent; reason 1, 2, 3 are the names below;
- downlinks (only when there are some; firmware/node/downlink.py): [counter, status,
  [keys]] per configuration downlink since the last record; status 0..4 as named below.
"""
from host_tools.schemas import Schema

SCHEMAS = (
    Schema(
        schema_id=6, kind="node", version=1,
        channels=(),
        faults=(),
        resets=("pwron", "hard", "wdt", "soft", "brownout", "other"),
        drop_reasons=("queue full", "power cut", "unsendable"),
        downlink_statuses=("applied", "bad frame", "replay", "invalid", "unknown command"),
    ),
)
