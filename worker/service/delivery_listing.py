"""What `autotag deliveries` shows of a delivery: fields named for what they hold, every
timestamp in ISO 8601 UTC (the ledger keeps epoch seconds, and `created_at` there is the
first due time, not a creation time)."""

from __future__ import annotations

import time
from datetime import datetime, timezone


def iso_utc(epoch_seconds) -> str | None:
    """Epoch seconds (a number or its string) as 2026-12-04T08:15:02Z; None when unknown."""
    if epoch_seconds in (None, ""):
        return None
    return datetime.fromtimestamp(float(epoch_seconds), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def delivery_row(state: str, record: dict) -> dict:
    """One delivery from `Ledger.listing`, for people and scripts: `due_at` (pending: when the next
    try is due), `received_at` (when the service received the event), `last_attempt_at` (when
    the last failed try was made, if recorded), `died_at` (dead: when it went to the dead letters)."""
    return {
        "list": state, "id": record["id"], "client": record.get("client"), "article": record.get("article"),
        "revision": record.get("revision"), "event": record.get("event"), "attempts": record.get("attempts", 0),
        "received_at": iso_utc(record.get("received_at")),
        "due_at": iso_utc(record["score"]) if state == "pending" else None,
        "last_attempt_at": iso_utc(record.get("last_attempt_at")),
        "died_at": iso_utc(record.get("died_at") or (record["score"] if state == "dead" else None)),
        "last_error": record.get("last_error", ""),
    }


def format_row(row: dict, now: float | None = None) -> str:
    """One line: state, id, where it goes, tries, and when it is due or died."""
    now = time.time() if now is None else now
    if row["list"] == "pending":
        due = datetime.strptime(row["due_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        when = f"due {row['due_at']} (in {max(0, due - now):.0f}s)"
    else:
        when = f"died {row['died_at']}"
    return (f"{row['list']:<8}{row['id']}  client {row['client']}  article {row['article']} rev {row['revision']}  "
            f"tries {row['attempts']}  {when}  {row['last_error']}").rstrip()
