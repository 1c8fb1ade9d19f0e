"""What a node can say about itself: the firmware files against the manifest, the
modem, the join and uplink state its files record. The provisioning STATUS command
(node/provision.py, docs/provisioning.md) puts these together.

    status.files(manifest)            # {"checked": 48, "differ": [], "differ_count": 0}
    status.modem(board, open_modem)   # {"type", "dev_eui", "joined"} or {"error"}
    status.join(); status.uplink()

Only reads: nothing here writes to the flash.
"""
from binascii import hexlify


def sha256_hex(path):
    import hashlib
    d = hashlib.sha256()
    buf = bytearray(512)
    mv = memoryview(buf)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            d.update(mv[:n])
    return hexlify(d.digest()).decode()


def files(manifest, feed=None):
    """Every file the manifest names, hashed here and compared with it."""
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        return {"checked": 0, "differ": [], "differ_count": 0, "error": "no manifest.json"}
    differ = []
    for path, want in listed.items():
        try:
            got = sha256_hex(path)
        except OSError:
            got = None
        if got != want:
            differ.append(path)
        if feed:
            feed()
    return {"checked": len(listed), "differ": differ[:8], "differ_count": len(differ)}


def modem_dev_eui(modem):
    """The DevEUI the modem holds (its factory one until configured)."""
    get = getattr(modem, "dev_eui", None)
    if get is not None:
        return get()
    name = type(modem).__name__
    if name == "RAK3172":
        v = modem._get("AT+DEVEUI")
    elif name == "RN2483":
        v = modem._get("deveui")
    elif name == "WioE5":
        v = modem._ask("AT+ID=DevEui", "ID").split(",", 1)[-1]
    else:
        return None
    return v.replace(":", "").replace(" ", "").upper()


def modem(board, open_modem):
    """The modem's DevEUI and whether it holds a session; `open_modem()` gives the
    woken driver (or raises)."""
    st = {"type": board.spec.get("modem", {}).get("type")}
    try:
        m = open_modem()
        st["dev_eui"] = modem_dev_eui(m)
        st["joined"] = m.joined()
    except Exception as e:  # noqa: BLE001 - the modem's trouble is the status
        reason = getattr(e, "reason", None)       # a refusal's words, else the exception
        st["error"] = reason if isinstance(reason, str) else "%s %s" % (type(e).__name__, e)
    return st


def join():
    """The join back-off record (node/join_backoff.py): requests unanswered since when."""
    try:
        from node.join_backoff import JoinBackoff
        b = JoinBackoff()
    except Exception as e:  # noqa: BLE001
        return {"error": str(e)}
    if b.start is None:
        return {"failing": False}
    import time
    # Seconds on the node's own clock, and its "now" to read them against.
    return {"failing": True, "since": b.start, "last_request": b.last, "next_allowed": b.next,
            "now": time.time()}


def uplink():
    """Confirmed frames in a row without ACK (node/link.py) and the queue's head state
    (node/queue.py: kept from head_seq, sent up to sent_seq, dropped by reason)."""
    out = {}
    try:
        from node.link import LinkState
        out["unacked_confirmed"] = LinkState.load().fails
    except Exception as e:  # noqa: BLE001
        out["error"] = str(e)
    try:
        from node import queue as q
        best = None
        for path in q._HEADS:
            try:
                with open(path, "rb") as f:
                    st = q._unpack_head(f.read())
            except OSError:
                st = None
            if st is not None and (best is None or st[0] > best[0]):
                best = st
        if best is not None:
            _, head, sent, nxt, ranges = best
            dropped = {"queue_full": 0, "power_cut": 0, "unsendable": 0}
            names = {q.QUEUE_FULL: "queue_full", q.POWER_CUT: "power_cut",
                     q.UNSENDABLE: "unsendable"}
            for first, last, reason in ranges:
                name = names.get(reason, "other")
                dropped[name] = dropped.get(name, 0) + last - first + 1
            out.update({"head_seq": head, "sent_seq": sent, "next_seq": nxt, "dropped": dropped})
    except Exception as e:  # noqa: BLE001 - a queue of another layout
        out["queue_error"] = "%s %s" % (type(e).__name__, e)
    return out
