"""The outbox: messages for the service (publish events, editors' feedback) are rows written in
the transaction that caused them, sent after commit, and retried with backoff until the service
takes them. A page's messages go out in order: a row waits while an earlier one of the same page
is pending, so feedback reaches the service before the next publish it should shape.

Sending: right after commit in a short-lived thread (the editor's request never waits on the
service), and by `manage.py autotag_outbox`, which picks up whatever is due (run it from cron or
as a systemd service; see the README).
"""

from __future__ import annotations

import logging
import queue as queue_module
import threading
import time
from collections import Counter
from datetime import datetime, timedelta

from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from . import client
from .conf import AutotagSettings, get_settings
from .models import OutboxMessage

log = logging.getLogger("wagtail_autotag.outbox")

SENT, RETRY, FAILED, SKIPPED = "sent", "retry", "failed", "skipped"


def queue(kind: str, message_id: str, payload: dict, page_id: int | None) -> OutboxMessage:
    """Write a message in the current transaction; after commit, try to send it at once."""
    message = OutboxMessage.objects.create(kind=kind, message_id=message_id, payload=payload, page_id=page_id)
    if get_settings().send_on_commit:
        transaction.on_commit(lambda: _send_in_background(message.pk))
    return message


def deliver_due(limit: int = 200, now: datetime | None = None, conf: AutotagSettings | None = None) -> Counter:
    """One pass over the due messages, oldest first; a page whose message could not go waits."""
    conf = conf or get_settings()
    now = now or timezone.now()
    outcomes: Counter = Counter()
    held_pages: set = set()
    due = OutboxMessage.objects.filter(status=OutboxMessage.PENDING, next_attempt_at__lte=now).order_by("id")[:limit]
    for message in list(due):
        if message.page_id is not None and message.page_id in held_pages:
            outcomes[SKIPPED] += 1
            continue
        outcome = deliver(message.pk, conf)
        outcomes[outcome] += 1
        if outcome in (RETRY, SKIPPED) and message.page_id is not None:
            held_pages.add(message.page_id)
    return outcomes


def deliver_page(page_id: int | None, up_to: int, conf: AutotagSettings | None = None) -> str:
    """Send a page's pending messages up to `up_to` in order, stopping at the first that must wait."""
    conf = conf or get_settings()
    if page_id is None:
        return deliver(up_to, conf)
    outcome = SKIPPED
    for pk in OutboxMessage.objects.filter(page_id=page_id, status=OutboxMessage.PENDING, id__lte=up_to).order_by("id").values_list("pk", flat=True):
        outcome = deliver(pk, conf)
        if outcome in (RETRY, SKIPPED):
            break
    return outcome


def deliver(pk: int, conf: AutotagSettings) -> str:
    """One attempt at one message, if it is due and no earlier message of its page is pending."""
    now = timezone.now()
    message = OutboxMessage.objects.filter(pk=pk, status=OutboxMessage.PENDING).first()
    if message is None or message.next_attempt_at > now:
        return SKIPPED
    if message.page_id is not None and OutboxMessage.objects.filter(
            page_id=message.page_id, status=OutboxMessage.PENDING, id__lt=message.pk).exists():
        return SKIPPED
    # claim it (compare-and-set on the due time) so a concurrent sender leaves it alone
    lease = now + timedelta(seconds=conf.timeout + 30)
    if not OutboxMessage.objects.filter(pk=pk, status=OutboxMessage.PENDING, next_attempt_at=message.next_attempt_at).update(next_attempt_at=lease):
        return SKIPPED
    attempts = message.attempts + 1
    try:
        answer = client.post(conf, message.endpoint, message.payload, message_id=message.message_id)
    except client.ServiceUnavailable as exc:
        return _retry(message, attempts, conf, None, str(exc), None)
    if 200 <= answer.status < 300:
        OutboxMessage.objects.filter(pk=pk).update(status=OutboxMessage.SENT, attempts=attempts, sent_at=timezone.now(),
                                                   last_status=answer.status, last_error="", response=answer.body)
        return SENT
    if answer.status in (408, 429) or answer.status >= 500:
        return _retry(message, attempts, conf, answer.status, answer.error, answer.retry_after)
    # any other 4xx: the service refused this message as it is; retrying cannot help
    log.error("autotag refused %s %s: %s %s", message.kind, message.message_id, answer.status, answer.error)
    OutboxMessage.objects.filter(pk=pk).update(status=OutboxMessage.FAILED, attempts=attempts, last_status=answer.status,
                                               last_error=answer.error, response=answer.body)
    return FAILED


def retry_failed(ids=None) -> int:
    """Put refused messages back on the schedule (after fixing a token or a setting)."""
    rows = OutboxMessage.objects.filter(status=OutboxMessage.FAILED)
    if ids:
        rows = rows.filter(message_id__in=ids)
    return rows.update(status=OutboxMessage.PENDING, next_attempt_at=timezone.now())


def backoff(attempts: int, delays: tuple[float, ...], retry_after: float | None = None) -> float:
    """Seconds before the next attempt after `attempts` failures; the last delay repeats."""
    return max(delays[min(attempts, len(delays)) - 1], retry_after or 0.0)


def _retry(message: OutboxMessage, attempts: int, conf: AutotagSettings, status, error: str, retry_after) -> str:
    delay = backoff(attempts, conf.retry_delays, retry_after)
    log.warning("autotag %s %s not taken (%s); attempt %d, next in %.0fs", message.kind, message.message_id, error, attempts, delay)
    OutboxMessage.objects.filter(pk=message.pk).update(attempts=attempts, last_status=status, last_error=error,
                                                       next_attempt_at=timezone.now() + timedelta(seconds=delay))
    return RETRY


class _Sender:
    """One thread per process sends what was committed, in commit order, so a page's messages
    never race each other; the rows are the durable record, this queue is only a prompt."""

    def __init__(self):
        self.queue: queue_module.Queue = queue_module.Queue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def submit(self, pk: int) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="autotag-outbox-sender", daemon=True)
                self.thread.start()
        self.queue.put(pk)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """True once everything submitted has been tried (for tests and orderly shutdowns)."""
        deadline = time.monotonic() + timeout
        while self.queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.queue.unfinished_tasks

    def _run(self) -> None:
        while True:
            pk = self.queue.get()
            try:
                close_old_connections()
                message = OutboxMessage.objects.filter(pk=pk).values("page_id").first()
                if message is not None:
                    deliver_page(message["page_id"], pk)
            except Exception:  # the row stays pending: `autotag_outbox` sends it later
                log.exception("autotag: sending outbox message %s after commit failed; it stays pending", pk)
            finally:
                connection.close()
                self.queue.task_done()


sender = _Sender()


def _send_in_background(pk: int) -> None:
    """After commit: hand the message to the process' sender thread, so a slow or absent service
    never holds up the editor's request."""
    sender.submit(pk)
