"""Publish, update and unpublish through Wagtail's own publish path, against the real service."""

import time

from django.db import transaction
from django.utils import timezone
from wagtail.models import Revision

from wagtail_autotag.models import OutboxMessage, PageTag, PageTagState, ReceivedCallback
from wagtail_pages import make_page, page_tags, republish, sample, tool_tags, wait_for, wait_for_tags


def test_publish_puts_the_service_tags_on_the_page(autotag_service, site_root):
    """A published page gets exactly the tags `autotag tag` gives its article, with scores and evidence, and no new revision."""
    record = sample("fa50-malaysia")
    page = make_page(site_root, record)
    state = wait_for_tags(page)
    expected = autotag_service.tag({"id": "x", "title": record["title"], "body": record["body"]})
    assert page_tags(page) == tool_tags(expected)
    assert page_tags(page)["suggested"]["topics"] == ["sanctions"]
    arms = PageTag.objects.get(page=page, kind="topic", tag="arms-deals")
    assert arms.status == "applied" and arms.by == "model" and arms.score > 0.9 and arms.evidence
    assert state.model_version == expected["model_version"]
    # applying tags saved no revision and published nothing: one event went out, not two
    assert Revision.objects.filter(object_id=str(page.pk)).count() == 1
    time.sleep(0.5)
    assert OutboxMessage.objects.filter(page_id=page.pk).count() == 1
    event = OutboxMessage.objects.get(page_id=page.pk)
    assert event.status == "sent" and event.response["status"] == "queued" and event.payload["type"] == "article.published"
    assert event.payload["article"]["revision"] == page.live_revision_id


def test_update_gives_the_new_revisions_tags(autotag_service, site_root):
    """Republishing with new text replaces the model's tags with the new revision's."""
    page = make_page(site_root, sample("sample-1"))
    wait_for_tags(page)
    assert page_tags(page)["topics"] == ["arms-deals"]
    revision = republish(page, sample("sample-2"))
    wait_for_tags(page, revision.pk)
    assert page_tags(page)["topics"] == ["sanctions"] and page_tags(page)["regions"] == ["RU"]
    events = OutboxMessage.objects.filter(page_id=page.pk).order_by("id")
    assert [e.payload["type"] for e in events] == ["article.published", "article.updated"]


def test_unpublish_reaches_the_service_and_later_callbacks_for_that_revision_are_ignored(autotag_service, site_root, live_server):
    """Unpublishing sends article.unpublished; a callback for the unpublished revision does not change the page."""
    from wagtail_callbacks import post_signed_callback

    page = make_page(site_root, sample("sample-2"))
    wait_for_tags(page)
    page.unpublish()
    message = wait_for(lambda: OutboxMessage.objects.filter(page_id=page.pk, payload__type="article.unpublished", status="sent").first(),
                       what="unpublish event sent")
    assert message.response["status"] == "queued"
    wait_for(lambda: autotag_service.metric("autotag_events_unpublished_total") >= 1, what="the service took the unpublish")
    state = PageTagState.objects.get(page=page)
    assert state.unpublished_revision == page.latest_revision_id
    answer = post_signed_callback(live_server.url, autotag_service.callback_secret, page, state.unpublished_revision,
                                  topics=[{"tag": "arms-deals", "score": 0.99, "evidence": [], "by": "model"}])
    assert answer.status_code == 200 and answer.json()["status"] == "unpublished"
    assert page_tags(page)["topics"] == ["sanctions"]


def test_a_rolled_back_publish_leaves_no_event(autotag_service, site_root):
    """The outbox row is written in the publish's transaction: a rollback takes both away."""
    page = make_page(site_root, sample("sample-3"), publish=False)
    try:
        with transaction.atomic():
            page.save_revision().publish()
            assert OutboxMessage.objects.filter(page_id=page.pk).count() == 1
            raise RuntimeError("the editor's request failed after the publish")
    except RuntimeError:
        pass
    time.sleep(0.3)
    assert OutboxMessage.objects.filter(page_id=page.pk).count() == 0
    assert not ReceivedCallback.objects.filter(page_id=page.pk).exists()


def test_service_down_at_publish_then_delivered_from_the_outbox(autotag_service, site_root):
    """With the service down the publish returns at once, the event waits in the outbox, and
    `autotag_outbox` delivers it once the service is back."""
    from django.core.management import call_command

    autotag_service.stop_ingress()
    try:
        started = time.monotonic()
        page = make_page(site_root, sample("sample-1"))
        assert time.monotonic() - started < 3  # the editor is not held up by the service
        message = wait_for(lambda: OutboxMessage.objects.filter(page_id=page.pk, attempts__gte=1).first(), what="a failed attempt")
        assert message.status == "pending" and message.last_error
        call_command("autotag_outbox")  # still down: stays pending, attempt counted
        assert OutboxMessage.objects.get(pk=message.pk).status == "pending"
    finally:
        autotag_service.start_ingress()
    wait_for(lambda: OutboxMessage.objects.filter(pk=message.pk, next_attempt_at__lte=timezone.now()).exists(), what="the retry is due")
    call_command("autotag_outbox")
    assert OutboxMessage.objects.get(pk=message.pk).status == "sent"
    wait_for_tags(page)
    assert page_tags(page)["topics"] == ["arms-deals"]


def test_scheduled_publication_sends_nothing_until_live(autotag_service, site_root):
    """A revision scheduled for later fires page_published but is not live: no event yet."""
    from datetime import timedelta

    page = make_page(site_root, sample("sample-3"), publish=False)
    page.go_live_at = timezone.now() + timedelta(days=1)
    page.save_revision().publish()
    time.sleep(0.3)
    assert not OutboxMessage.objects.filter(page_id=page.pk).exists()
