"""manage.py autotag_outbox: send the outbox's due messages to the service, once or in a loop."""

import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections
from django.db.models import Count

from wagtail_autotag import outbox
from wagtail_autotag.models import OutboxMessage


class Command(BaseCommand):
    help = "Send pending autotag events and feedback that are due (retried with backoff until the service takes them)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep running, a pass every --interval seconds")
        parser.add_argument("--interval", type=float, default=5.0, help="seconds between passes with --loop (default 5)")
        parser.add_argument("--limit", type=int, default=200, help="messages per pass (default 200)")
        parser.add_argument("--retry-failed", action="store_true", help="first put refused (4xx) messages back on the schedule")
        parser.add_argument("--status", action="store_true", help="only print how many messages are pending, sent and failed")

    def handle(self, *args, loop, interval, limit, retry_failed, status, **options):
        if status:
            counts = dict(OutboxMessage.objects.values_list("status").annotate(n=Count("id")))
            self.stdout.write(" ".join(f"{name}={counts.get(name, 0)}" for name in ("pending", "sent", "failed")))
            for message in OutboxMessage.objects.filter(status=OutboxMessage.FAILED).order_by("-id")[:20]:
                self.stdout.write(f"failed {message.kind} {message.message_id}: HTTP {message.last_status} {message.last_error}")
            return
        if retry_failed:
            self.stdout.write(f"{outbox.retry_failed()} refused message(s) back on the schedule")
        while True:
            outcomes = outbox.deliver_due(limit=limit)
            if outcomes or not loop:
                self.stdout.write(" ".join(f"{key}={outcomes.get(key, 0)}" for key in (outbox.SENT, outbox.RETRY, outbox.FAILED, outbox.SKIPPED)))
            if not loop:
                return
            close_old_connections()
            time.sleep(interval)
