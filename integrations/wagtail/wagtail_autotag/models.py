"""The plugin's own tables: the page's tags and their review state, editors' decisions, the
outbox of messages to the service, and the callbacks received (for idempotency).

Tags live here, keyed by page, not in the page's revisions: applying a callback never saves a
revision nor publishes, so tags can never trigger a new publish.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

TOPIC, REGION = "topic", "region"
KIND_CHOICES = [(TOPIC, "topic"), (REGION, "region")]
BY_MODEL, BY_EDITOR = "model", "editor"


class PageTagState(models.Model):
    """Per page: which revision's tags are applied, and the last preview of its draft."""

    page = models.OneToOneField("wagtailcore.Page", on_delete=models.CASCADE, primary_key=True, related_name="autotag_state")
    applied_revision = models.BigIntegerField(null=True, blank=True)
    applied_event_id = models.CharField(max_length=200, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    # callbacks for a revision up to this one are ignored: the page was unpublished after it
    unpublished_revision = models.BigIntegerField(null=True, blank=True)
    preview = models.JSONField(null=True, blank=True)  # the last POST /v1/tag answer for the draft
    preview_revision = models.BigIntegerField(null=True, blank=True)
    preview_at = models.DateTimeField(null=True, blank=True)
    mirrored = models.JSONField(default=list, blank=True)  # tag names this plugin put in the site's taggit field

    def __str__(self):
        return f"autotag state of page {self.page_id}"


class PageTag(models.Model):
    """One topic or region tag of a page: applied, suggested for review, or removed by an editor
    (kept so that it stays removed)."""

    APPLIED, SUGGESTED, REMOVED = "applied", "suggested", "removed"
    STATUS_CHOICES = [(APPLIED, "applied"), (SUGGESTED, "suggested"), (REMOVED, "removed by an editor")]

    page = models.ForeignKey("wagtailcore.Page", on_delete=models.CASCADE, related_name="autotag_tags")
    kind = models.CharField(max_length=10, choices=KIND_CHOICES)
    tag = models.CharField(max_length=100)  # a topic label or an ISO 3166-1 alpha-2 code
    name = models.CharField(max_length=200, blank=True)  # a region's country name
    score = models.FloatField(null=True, blank=True)  # null for a tag an editor added that no model scored
    evidence = models.JSONField(default=list, blank=True)
    by = models.CharField(max_length=10, choices=[(BY_MODEL, "model"), (BY_EDITOR, "editor")], default=BY_MODEL)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES)
    revision = models.BigIntegerField(null=True, blank=True)  # the revision whose callback or decision set it
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["page", "kind", "tag"], name="wagtail_autotag_one_row_per_tag")]
        indexes = [models.Index(fields=["status", "page"])]
        ordering = ["kind", "-score", "tag"]

    def __str__(self):
        return f"{self.kind} {self.tag} ({self.status}, by {self.by}) on page {self.page_id}"

    @property
    def label(self) -> str:
        return f"{self.tag} {self.name}".strip() if self.kind == REGION else self.tag


class OutboxMessage(models.Model):
    """A message for the service, written in the same transaction as what caused it and sent
    after commit; retried with backoff until the service takes it (202)."""

    EVENT, FEEDBACK = "event", "feedback"
    PENDING, SENT, FAILED = "pending", "sent", "failed"
    ENDPOINTS = {EVENT: "/v1/events", FEEDBACK: "/v1/feedback"}

    message_id = models.CharField(max_length=200, unique=True)  # the event or feedback id; also the webhook-id
    kind = models.CharField(max_length=10, choices=[(EVENT, "event"), (FEEDBACK, "feedback")])
    payload = models.JSONField()
    page_id = models.BigIntegerField(null=True, blank=True, db_index=True)  # no FK: the row outlives a deleted page
    status = models.CharField(max_length=10, default=PENDING, choices=[(PENDING, "pending"), (SENT, "sent"), (FAILED, "failed")])
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)  # the service's last HTTP status
    last_error = models.TextField(blank=True)
    response = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        ordering = ["id"]

    def __str__(self):
        return f"{self.kind} {self.message_id} ({self.status}, {self.attempts} attempts)"

    @property
    def endpoint(self) -> str:
        return self.ENDPOINTS[self.kind]


class TagDecision(models.Model):
    """An editor's decision on one tag, as sent to the service's /v1/feedback."""

    ACCEPTED, REJECTED, ADDED = "accepted", "rejected", "added"

    page = models.ForeignKey("wagtailcore.Page", on_delete=models.CASCADE, related_name="autotag_decisions")
    kind = models.CharField(max_length=10, choices=KIND_CHOICES)
    tag = models.CharField(max_length=100)
    decision = models.CharField(max_length=10, choices=[(ACCEPTED, "accepted"), (REJECTED, "rejected"), (ADDED, "added")])
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    editor = models.CharField(max_length=200)  # what the service is told: "u<user id>"
    revision = models.BigIntegerField()
    score = models.FloatField(null=True, blank=True)
    outbox = models.ForeignKey(OutboxMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="decisions")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.decision} {self.kind} {self.tag} on page {self.page_id} by {self.editor}"


class ReceivedCallback(models.Model):
    """Every signed callback taken, by webhook-id: the same id is applied once."""

    webhook_id = models.CharField(max_length=200, unique=True)
    event_id = models.CharField(max_length=200, blank=True)
    article_id = models.CharField(max_length=200)
    page_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    revision = models.BigIntegerField()
    reason = models.CharField(max_length=20, blank=True)  # publish | retag | story, when the service says
    outcome = models.CharField(max_length=20)  # applied | older | unpublished | no-page
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-id"]

    def __str__(self):
        return f"callback {self.webhook_id} for {self.article_id} rev {self.revision}: {self.outcome}"
