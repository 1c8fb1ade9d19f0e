"""The node inventory: one CSV row per node with its identifiers and keys.

The file holds secrets, so it is created with mode 0600 (owner read/write only) and
its mode is re-asserted on every append. Columns: dev_eui, join_eui, app_key,
payload_key, kind, board, site, created.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path

COLUMNS = ["dev_eui", "join_eui", "app_key", "payload_key", "kind", "board", "site", "created"]


class InventoryError(ValueError):
    pass


def append(path: Path, row: dict) -> None:
    path = Path(path)
    missing = [c for c in ("dev_eui", "app_key", "payload_key") if not row.get(c)]
    if missing:
        raise InventoryError(f"inventory row lacks {', '.join(missing)}")
    if path.exists() and row["dev_eui"].upper() in read(path):
        raise InventoryError(f"{path}: DevEUI {row['dev_eui']} is already in the inventory; "
                             f"nothing was written")
    new = not path.exists() or path.stat().st_size == 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.fchmod(fd, 0o600)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        if new:
            w.writeheader()
        w.writerow({c: row.get(c, "") for c in COLUMNS})
        os.write(fd, buf.getvalue().encode())
    finally:
        os.close(fd)


def read(path: Path) -> dict[str, dict]:
    """Rows by upper-case DevEUI."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InventoryError(f"inventory {path} does not exist") from None
    rows = {}
    for row in csv.DictReader(io.StringIO(text)):
        if not row.get("dev_eui"):
            continue
        rows[row["dev_eui"].upper()] = row
    return rows


def payload_key(path: Path, dev_eui: str) -> bytes:
    row = read(path).get(dev_eui.upper())
    if row is None:
        raise InventoryError(f"DevEUI {dev_eui} is not in inventory {path}")
    return bytes.fromhex(row["payload_key"])
