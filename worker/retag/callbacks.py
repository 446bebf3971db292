"""A re-tag's callbacks go through the ledger like live ones: scheduled under the article's
revision rules (a line older than the revision the service last saw, or at or before an
unpublish, is superseded and never sent), then posted under the article's post lease, so a
re-tag can never land an older revision's tags over a newer one. Shared by queued chunks and
local runs that reach the service's Redis."""

from __future__ import annotations

from collections import Counter

from ..service.pipeline import post_in_lanes
from .export import callback_payload

# a chunk posting its own callbacks holds them off the dispatcher's schedule this much longer
# than their last slot (if the worker dies, the dispatcher delivers them after that)
INLINE_HOLD = 60.0


def retag_event_id(run_id: str, article_id) -> str:
    return f"retag-{run_id}-{article_id}"


def deliver_retag_callbacks(runtime, client, run_id: str, pending: list, slots: list[float], *, inline: bool, now: float,
                            on_scheduled=None) -> Counter:
    """Schedule the callbacks of (line, result) pairs at their slots and, when `inline`, post
    them here over the client's `callback_connections`. Returns outcomes counted: 'superseded'
    (never sent), 'delivered', 'scheduled' (left to the dispatcher: paced later, failed once and
    retrying, or not reached), 'dead'."""
    ledger = runtime.ledger
    hold = (max(slots) + INLINE_HOLD + runtime.settings.callback_timeout) if inline and slots else None
    entries = [{"client_id": client.id, "event_id": retag_event_id(run_id, result["id"]), "article_id": result["id"],
                "revision": line.revision, "payload": callback_payload(result, run_id), "received_at": now,
                "due_at": hold if hold is not None else max(slot, now)}
               for (line, result), slot in zip(pending, slots)]
    outcomes = Counter()
    scheduled = ledger.schedule_many(entries, done_ttl=runtime.settings.idempotency_ttl, counter="")
    if on_scheduled is not None:
        on_scheduled()
    live = [(message_id, slot) for (message_id, outcome), slot in zip(scheduled, slots) if outcome != "superseded"]
    outcomes["superseded"] = len(scheduled) - len(live)
    if superseded := outcomes["superseded"]:
        ledger.count("deliveries_superseded", superseded)
    if not inline:
        outcomes["scheduled"] += len(live)
        return outcomes
    records = ledger.deliveries([message_id for message_id, _ in live])
    ready = [(record, slot) for record, slot in zip(records, (slot for _, slot in live)) if record and record["state"] == "pending"]
    outcomes["delivered"] += sum(1 for record in records if record and record["state"] == "delivered")  # a chunk run again
    if ready:
        posted = post_in_lanes(runtime, [r for r, _ in ready], [slot for _, slot in ready], client.callback_connections)
        for outcome in posted:
            outcomes[outcome if outcome in ("delivered", "superseded", "dead") else "scheduled"] += 1
    return outcomes
