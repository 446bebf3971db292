"""Editors' decisions reach the service's /v1/feedback through the outbox, and the next revision honours them."""


from django.contrib.auth import get_user_model
from wagtail.models import PageLogEntry

from wagtail_autotag.conf import get_settings
from wagtail_autotag.decisions import DecisionError, decide
from wagtail_autotag.models import OutboxMessage, PageTag, ReceivedCallback, TagDecision
from wagtail_pages import make_page, page_tags, republish, sample, wait_for, wait_for_tags


def editor():
    return get_user_model().objects.create_user("editor-" + str(get_user_model().objects.count()), password="x", is_superuser=True)


def test_reject_accept_add_reach_the_service_and_the_next_revision_honours_them(autotag_service, site_root):
    record = sample("fa50-malaysia")
    page = make_page(site_root, record)
    wait_for_tags(page)
    assert page_tags(page)["topics"] == ["arms-deals"] and page_tags(page)["suggested"]["topics"] == ["sanctions"]
    user = editor()
    conf = get_settings()
    decide(page, user, "reject", "topic", "arms-deals", conf)
    decide(page, user, "accept", "topic", "sanctions", conf)
    decide(page, user, "add", "region", "fr", conf)  # normalised to FR
    assert PageTag.objects.get(page=page, tag="FR").name == "France"  # named at once, before any callback
    sent = wait_for(lambda: list(OutboxMessage.objects.filter(page_id=page.pk, kind="feedback", status="sent")) if
                    OutboxMessage.objects.filter(page_id=page.pk, kind="feedback", status="sent").count() == 3 else None,
                    what="three feedback messages taken")
    assert {m.response["status"] for m in sent} == {"stored"}
    assert [d["decision"] for m in sent for d in m.payload["decisions"]] == ["rejected", "accepted", "added"]
    assert all(m.payload["decisions"][0]["editor"] == f"u{user.pk}" for m in sent)
    # audited in Wagtail's log and in the plugin's own table
    assert PageLogEntry.objects.filter(page=page, action__startswith="wagtail_autotag.").count() == 3
    assert TagDecision.objects.filter(page=page).count() == 3
    # the service's report counts them
    report = autotag_service.cli("feedback", "report", "--json")
    assert report.returncode == 0, report.stderr
    assert "arms-deals" in report.stdout and "FR" in report.stdout

    # the next revision (same text): the service's own callback now honours the decisions
    revision = republish(page, record)
    wait_for_tags(page, revision.pk)
    payload = ReceivedCallback.objects.get(page_id=page.pk, revision=revision.pk).payload
    given = [t["tag"] for t in payload["topics"] + payload["suggested"]["topics"]]
    assert "arms-deals" not in given
    assert {"tag": "sanctions", "by": "editor"}.items() <= next(t for t in payload["topics"] if t["tag"] == "sanctions").items()
    assert next(r for r in payload["regions"] if r["code"] == "FR")["by"] == "editor"
    tags = page_tags(page)
    assert tags["topics"] == ["sanctions"] and "FR" in tags["regions"]
    assert PageTag.objects.get(page=page, tag="FR").name == "France"
    assert PageTag.objects.get(page=page, tag="arms-deals").status == "removed"


def test_editor_decisions_survive_a_callback_sent_before_the_service_knew_them(autotag_service, site_root, live_server):
    """A callback that still carries a tag an editor removed (it was on its way) does not bring it back."""
    from wagtail_callbacks import post_signed_callback

    page = make_page(site_root, sample("sample-1"))
    state = wait_for_tags(page)
    decide(page, editor(), "remove", "region", "KR", get_settings())
    late = post_signed_callback(live_server.url, autotag_service.callback_secret, page, state.applied_revision,
                                topics=[{"tag": "arms-deals", "score": 1.0, "evidence": [], "by": "model"}],
                                regions=[{"code": "KR", "name": "South Korea", "score": 0.99, "evidence": [], "by": "model"},
                                         {"code": "PL", "name": "Poland", "score": 0.99, "evidence": [], "by": "model"}])
    assert late.json()["status"] == "applied"
    assert page_tags(page)["regions"] == ["PL"]


def test_bad_decisions_are_refused_with_a_message_and_nothing_is_queued(autotag_service, site_root):
    page = make_page(site_root, sample("sample-3"))
    wait_for_tags(page)
    user, conf = editor(), get_settings()
    for action, kind, tag in [("add", "region", "France"), ("add", "region", "UK"), ("add", "region", "ZZ"), ("add", "topic", "Not A Label!"), ("accept", "topic", "sanctions"),
                              ("remove", "topic", "arms-deals"), ("explode", "topic", "x")]:
        try:
            decide(page, user, action, kind, tag, conf)
        except DecisionError as exc:
            assert str(exc)
        else:
            raise AssertionError(f"{action} {kind} {tag} was accepted")
    assert not OutboxMessage.objects.filter(page_id=page.pk, kind="feedback").exists()


def test_a_topic_the_service_does_not_know_is_kept_and_shown_as_refused(autotag_service, site_root):
    """The service answers 422 for a topic outside its model: the row is failed (not retried
    forever), the decision stays recorded, and --retry-failed can send it again."""
    from django.core.management import call_command

    page = make_page(site_root, sample("sample-3"))
    wait_for_tags(page)
    decide(page, editor(), "add", "topic", "local-elections", get_settings())
    message = wait_for(lambda: OutboxMessage.objects.filter(page_id=page.pk, kind="feedback", status="failed").first(), what="refused")
    assert message.last_status == 422 and "decisions[0].tag" in message.last_error
    assert PageTag.objects.get(page=page, tag="local-elections").status == "applied"
    call_command("autotag_outbox", "--retry-failed")
    assert OutboxMessage.objects.get(pk=message.pk).status == "failed" and OutboxMessage.objects.get(pk=message.pk).attempts == 2


def test_an_editor_who_types_uk_is_pointed_at_gb(autotag_service, site_root):
    page = make_page(site_root, sample("sample-3"))
    wait_for_tags(page)
    try:
        decide(page, editor(), "add", "region", "uk", get_settings())
    except DecisionError as exc:
        assert str(exc) == "UK is not a country code (ISO 3166-1 alpha-2). Did you mean GB (United Kingdom)?"
    else:
        raise AssertionError("UK was accepted")
