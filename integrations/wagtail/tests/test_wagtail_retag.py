"""manage.py autotag_export -> `autotag retag` -> the tags land through the same callback view."""

import json

from django.core.management import call_command

from wagtail_autotag.conf import get_settings
from wagtail_autotag.decisions import decide
from wagtail_autotag.models import PageTag, ReceivedCallback
from wagtail_pages import make_page, page_tags, sample, wait_for, wait_for_tags


def test_export_then_retag_updates_the_tags_and_keeps_editors_decisions(autotag_service, site_root, tmp_path):
    from django.contrib.auth import get_user_model

    first = make_page(site_root, sample("sample-1"))
    second = make_page(site_root, sample("sample-2"))
    wait_for_tags(first)
    wait_for_tags(second)
    user = get_user_model().objects.create_user("retagger", password="x", is_superuser=True)
    decide(first, user, "remove", "region", "KR", get_settings())
    decide(second, user, "add", "region", "BE", get_settings())
    # an earlier model left tags this one no longer gives, and missed one it gives
    PageTag.objects.create(page=first, kind="topic", tag="ukraine-front", score=0.7, status="applied", by="model")
    PageTag.objects.filter(page=second, kind="topic", tag="sanctions").delete()

    export = tmp_path / "export.jsonl"
    call_command("autotag_export", out=str(export))
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    by_id = {line["id"]: line for line in lines}
    one = by_id[get_settings().article_id(first.pk)]
    assert one["revision"] == first.live_revision_id and one["body"] and one["title"] == first.title
    assert one["current_tags"]["removed_by_editor"]["regions"] == ["KR"]
    assert {"tag": "ukraine-front", "by": "model"} in one["current_tags"]["topics"]
    assert {"code": "BE", "by": "editor"} in by_id[get_settings().article_id(second.pk)]["current_tags"]["regions"]

    result = autotag_service.cli("retag", str(export), "--client", "wagtail", "--rate", "50")
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: ReceivedCallback.objects.filter(page_id__in=[first.pk, second.pk], event_id__startswith="retag-").count() >= 2,
             what="re-tag callbacks")
    retag = ReceivedCallback.objects.get(page_id=first.pk, event_id__startswith="retag-")
    assert retag.outcome == "applied" and retag.reason == "retag"
    assert page_tags(first)["topics"] == ["arms-deals"] and page_tags(first)["regions"] == ["PL"]
    assert PageTag.objects.get(page=first, tag="KR").status == "removed"
    assert page_tags(second)["topics"] == ["sanctions"] and set(page_tags(second)["regions"]) == {"BE", "RU"}
