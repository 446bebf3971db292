"""Builds the Celery app from Settings, every option written out in one place.

No loss by construction: a task is acknowledged only after it ran (late acks), a task whose
worker died is put back (reject on worker lost), a worker holds one task at a time
(prefetch 1), messages are JSON only, and the hard time limit stays below Redis' visibility
timeout so a slow task is killed before Redis would hand it to a second worker.
"""

from __future__ import annotations

from celery import Celery

from .redis_connect import broker_transport_options, broker_url
from .settings import Settings, load_settings

TAG_QUEUE = "autotag.tag"
DELIVER_QUEUE = "autotag.deliver"
RETAG_QUEUE = "autotag.retag"  # its own queue: a bulk re-tag never delays a live publish


def create_app(settings: Settings, *, redis_url: str | None = None, queue_prefix: str = "") -> Celery:
    url = redis_url or settings.redis_url
    if not url:
        raise ValueError("no Redis URL: configure redis_url, or run `autotag up` to start an embedded Redis")
    # fixups=[]: Celery's Django fix-up would load whatever DJANGO_SETTINGS_MODULE names, and a
    # worker run beside a Django CMS (the same container, a shared shell) would die on import
    # a sentinel:// URL goes to kombu's Sentinel transport in its spelling, with the master's name
    app = Celery("autotag", broker=broker_url(url), include=["worker.service.tasks", "worker.retag.tasks"], fixups=[])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,  # a task that raised is recorded by the task, not retried forever
        worker_prefetch_multiplier=1,
        task_time_limit=settings.task_time_limit,
        task_soft_time_limit=max(1, settings.task_time_limit - 10),
        # a task held by a worker that died is handed out again once the visibility timeout has
        # passed, looked for every 10 s (kombu's default looks every 100 s)
        broker_transport_options={"visibility_timeout": settings.visibility_timeout, "unacked_restore_interval": 10,
                                  "unacked_restore_throttle": 1, **broker_transport_options(url, settings.redis_master_name)},
        broker_connection_retry_on_startup=True,
        # the ingress must answer 503 quickly when Redis is away, not hang in publish retries
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        broker_connection_max_retries=None,  # a worker keeps reconnecting while Redis is away
        # a task running when the connection broke cannot be acknowledged: stop it; Redis hands
        # it out again after the visibility timeout (every task is idempotent)
        worker_cancel_long_running_tasks_on_connection_loss=True,
        task_default_queue=queue_prefix + TAG_QUEUE,
        task_routes={
            "autotag.tag_event": {"queue": queue_prefix + TAG_QUEUE},
            "autotag.deliver": {"queue": queue_prefix + DELIVER_QUEUE},
            "autotag.retag_chunk": {"queue": queue_prefix + RETAG_QUEUE},
        },
        worker_hijack_root_logger=False,
        # task events cost a Redis publish per task state; Flower switches them on when it
        # starts (enable_events), so they are off until someone watches
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    app.autotag_settings = settings
    app.autotag_redis_url = url  # as configured (broker_url is kombu's spelling of it)
    app.autotag_queue_prefix = queue_prefix
    return app


def app_from_environment() -> Celery:
    """The app `autotag worker` and `celery -A worker.worker_app:celery_app` run: Settings from
    $AUTOTAG_CONFIG and the environment (AUTOTAG_REDIS_URL, AUTOTAG_QUEUE_PREFIX, ...)."""
    import os

    return create_app(load_settings(), queue_prefix=os.environ.get("AUTOTAG_QUEUE_PREFIX", ""))
