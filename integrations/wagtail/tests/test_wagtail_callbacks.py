"""The callback view refuses forged, stale and replayed callbacks, and ignores older revisions."""

import json
from datetime import datetime, timezone

import httpx

from wagtail_autotag.models import PageTag, ReceivedCallback
from wagtail_callbacks import STALE, callback_payload, post_signed_callback, signed_headers
from wagtail_pages import make_page, page_tags, republish, sample, wait_for_tags

ARMS = [{"tag": "arms-deals", "score": 0.99, "evidence": ["tanks"], "by": "model"}]


def test_forged_and_stale_callbacks_are_refused(autotag_service, site_root, live_server):
    """A wrong secret, a missing signature or an old timestamp is a 401 and changes nothing."""
    from autotag_stack import new_secret

    page = make_page(site_root, sample("sample-3"))
    state = wait_for_tags(page)
    before = page_tags(page)
    forged = post_signed_callback(live_server.url, new_secret(), page, state.applied_revision, topics=ARMS)
    assert forged.status_code == 401 and forged.json()["error"] == "bad webhook signature"
    stale = post_signed_callback(live_server.url, autotag_service.callback_secret, page, state.applied_revision, topics=ARMS,
                                 at=datetime.now(timezone.utc) - STALE)
    assert stale.status_code == 401 and "stale" in stale.json()["error"]
    unsigned = httpx.post(live_server.url + "/autotag/callback/", json=callback_payload(page, state.applied_revision, topics=ARMS))
    assert unsigned.status_code == 401
    # a body altered after signing
    raw = json.dumps(callback_payload(page, state.applied_revision))
    headers = signed_headers(autotag_service.callback_secret, raw, "msg_tampered")
    tampered = httpx.post(live_server.url + "/autotag/callback/", content=raw.replace('"topics": []', '"topics": ' + json.dumps(ARMS)), headers=headers)
    assert tampered.status_code == 401
    assert page_tags(page) == before
    assert not ReceivedCallback.objects.filter(webhook_id="msg_tampered").exists()


def test_replayed_callback_is_applied_once_and_older_revisions_are_ignored(autotag_service, site_root, live_server):
    """The service's own callback replayed (same webhook-id) is a no-op; a callback for an older
    revision than the applied one, even freshly signed, changes nothing."""
    page = make_page(site_root, sample("sample-1"))
    first = wait_for_tags(page)
    first_callback = ReceivedCallback.objects.get(page_id=page.pk, revision=first.applied_revision)
    revision = republish(page, sample("sample-2"))
    wait_for_tags(page, revision.pk)
    assert page_tags(page)["topics"] == ["sanctions"]
    # replay: the first callback's exact payload and webhook-id, validly signed
    raw = json.dumps(first_callback.payload)
    replay = httpx.post(live_server.url + "/autotag/callback/", content=raw,
                        headers=signed_headers(autotag_service.callback_secret, raw, first_callback.webhook_id))
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    # the same old revision under a new webhook-id
    older = post_signed_callback(live_server.url, autotag_service.callback_secret, page, first.applied_revision, topics=ARMS)
    assert older.status_code == 200 and older.json()["status"] == "older"
    assert page_tags(page)["topics"] == ["sanctions"]
    assert ReceivedCallback.objects.filter(page_id=page.pk, outcome="applied").count() == 2


def test_malformed_signed_payload_is_a_422_naming_the_field(autotag_service, site_root, live_server):
    page = make_page(site_root, sample("sample-3"))
    state = wait_for_tags(page)
    answer = post_signed_callback(live_server.url, autotag_service.callback_secret, page, state.applied_revision,
                                  topics=[{"tag": "arms-deals", "score": "high"}])
    assert answer.status_code == 422 and answer.json()["field"] == "topics[0].score"


def test_unknown_fields_are_tolerated_and_null_scores_kept(autotag_service, site_root, live_server):
    """`story`, `reason` and other new fields are ignored; an editor tag's null score is stored as such."""
    page = make_page(site_root, sample("sample-3"))
    state = wait_for_tags(page)
    raw = json.dumps({**callback_payload(page, state.applied_revision, topics=[{"tag": "sanctions", "score": None, "evidence": [], "by": "editor"}]),
                      "story": {"id": "s-1", "versions": 2}, "reason": "story", "something_new": [1, 2]})
    answer = httpx.post(live_server.url + "/autotag/callback/", content=raw,
                        headers=signed_headers(autotag_service.callback_secret, raw, "msg_unknown_fields"))
    assert answer.status_code == 200 and answer.json()["status"] == "applied"
    row = PageTag.objects.get(page=page, kind="topic", tag="sanctions")
    assert row.score is None and row.by == "editor" and row.status == "applied"
    assert ReceivedCallback.objects.get(webhook_id="msg_unknown_fields").reason == "story"
