"""The re-tag chunk task, thin like the live ones: a worker tags one chunk of an archive."""

from __future__ import annotations

from celery import shared_task

from ..service.tasks import TRANSIENT, runtime_for
from .queued import process_chunk


@shared_task(name="autotag.retag_chunk", bind=True, autoretry_for=TRANSIENT, retry_backoff=True, retry_backoff_max=30, max_retries=None)
def retag_chunk(self, run_id: str, index: int, lines: list) -> str:
    return process_chunk(runtime_for(self.app), run_id, index, lines)
