"""The parts that need no running service: the taggit mirror, the body sent for a StreamField
page, settings errors, and the outbox's backoff."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from wagtail.models import Site
from wagtail.rich_text import RichText

from wagtail_autotag.article import page_article
from wagtail_autotag.callbacks import apply_callback, parse_callback
from wagtail_autotag.conf import get_settings
from wagtail_autotag.outbox import backoff


@pytest.fixture
def article(db):
    from wagtail_autotag.demo.models import ArticlePage

    parent = Site.objects.get(is_default_site=True).root_page
    page = parent.add_child(instance=ArticlePage(title="Seoul ships shells", slug="seoul-ships-shells",
                                                 body=[("heading", "Deal signed"), ("paragraph", RichText("<p>South Korea & Poland.</p>"))]))
    page.save_revision().publish()  # inside the test's transaction: the outbox row is never sent
    page.refresh_from_db()
    return page


def callback(page, revision, topics=(), regions=()):
    conf = get_settings()
    return {"type": "article.tags", "event_id": f"evt-{revision}", "article": {"id": conf.article_id(page.pk), "revision": revision},
            "model_version": "m1", "topics": list(topics), "regions": list(regions), "suggested": {"topics": [], "regions": []}}


def live_tags(page):
    return sorted(page.__class__.objects.get(pk=page.pk).tags.names())


def test_taggit_mirror_writes_the_live_tags_keeps_the_sites_own_and_survives_a_publish(article, settings):
    settings.AUTOTAG = {**settings.AUTOTAG, "TAGGIT_MIRROR": {"autotag_demo.ArticlePage": "tags"}}
    conf = get_settings()
    article.tags.add("opinion")  # the site's own tag, set by an editor
    article.save()
    payload = callback(article, article.live_revision_id, topics=[{"tag": "arms-deals", "score": 1.0, "evidence": [], "by": "model"}],
                       regions=[{"code": "KR", "name": "South Korea", "score": 0.99, "evidence": [], "by": "model"}])
    assert apply_callback("msg-1", parse_callback(payload), payload, conf) == "applied"
    assert live_tags(article) == ["South Korea", "arms-deals", "opinion"]
    revisions = article.revisions.count()
    # a new revision published from the editor's content (without our tags) gets them again
    page = article.__class__.objects.get(pk=article.pk)
    page.save_revision().publish()
    assert live_tags(article) == ["South Korea", "arms-deals", "opinion"]
    # the model stops giving KR: the mirror removes what it added, never the site's own tag
    payload = callback(article, page.live_revision_id, topics=[{"tag": "arms-deals", "score": 1.0, "evidence": [], "by": "model"}])
    assert apply_callback("msg-2", parse_callback(payload), payload, conf) == "applied"
    assert live_tags(article) == ["arms-deals", "opinion"]
    assert article.revisions.count() == revisions + 1  # only the publish above made one


def test_the_event_body_is_the_streamfield_rendered_to_html(article):
    sent = page_article(article, article.live_revision_id, get_settings())
    assert sent["title"] == "Seoul ships shells" and sent["revision"] == article.live_revision_id
    assert sent["body"] == "<p>Deal signed</p>\n<p>South Korea & Poland.</p>"
    assert sent["id"] == get_settings().article_id(article.pk) and sent["language"] == "en"


def test_settings_errors_name_the_key(settings):
    settings.AUTOTAG = {**settings.AUTOTAG, "CALLBACK_SECRET": "not-a-secret"}
    with pytest.raises(ImproperlyConfigured, match="CALLBACK_SECRET"):
        get_settings()
    settings.AUTOTAG = {**settings.AUTOTAG, "CALLBACK_SECRET": "whsec_eA==", "SERVCE_URL": "x"}
    with pytest.raises(ImproperlyConfigured, match="SERVCE_URL"):
        get_settings()


def test_backoff_follows_the_delays_repeats_the_last_and_honours_retry_after():
    delays = (10.0, 30.0, 3600.0)
    assert [backoff(n, delays) for n in (1, 2, 3, 4, 50)] == [10.0, 30.0, 3600.0, 3600.0, 3600.0]
    assert backoff(1, delays, retry_after=120.0) == 120.0 and backoff(2, delays, retry_after=5.0) == 30.0


def test_the_plugins_country_names_are_the_services():
    from worker.engine.tagging import country_names as service_names

    from wagtail_autotag.countries import country_names

    assert country_names() == service_names()
