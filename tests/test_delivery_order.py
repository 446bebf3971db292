"""Revision order under concurrency, with the real stack: two worker processes, a slow and a
failing loopback CMS. The CMS must never receive an article's older revision after it accepted
a newer one, and every article must end on its latest revision, whoever posts what when: a
retry batch in flight, two workers' first attempts, a re-tag."""

import json
import time

import pytest

from .stack import Stack, wait_until

ONE_STORY_EACH = 'story_tags = "off"'  # these tests are about revisions; stories have their own


def body(article_id: str, revision: int) -> str:
    return f"Report {article_id} revision {revision}: the council of {article_id} met on Tuesday about road repairs."


def test_a_retry_batch_in_flight_stands_down_for_a_newer_revision(tmp_path):
    """Revision 1 of 25 articles fails once and waits on the retry schedule; the dispatcher hands
    the 25 out as one batch to a worker posting to a CMS that takes 0.3 s a callback; meanwhile
    revision 2 of every article is published and delivered by the other worker. The batch
    re-checks each delivery right before posting it, so no revision 1 follows a revision 2."""
    stack = Stack(tmp_path, workers=2, retry_delays=(2.0, 2.0, 2.0), client_config=ONE_STORY_EACH).start()
    try:
        articles = [f"batch-{n}" for n in range(25)]
        stack.cms.default_status = 500  # every first attempt of revision 1 fails at once
        for article in articles:
            assert stack.publish(article, 1, body=body(article, 1)).status_code == 202
        wait_until(lambda: len(stack.cms.received) >= 25, 30, "25 failed first attempts")
        stack.cms.default_status, stack.cms.delay = 200, 0.3  # then the CMS works, slowly
        wait_until(lambda: any(r["status"] == 200 for r in stack.cms.received), 30, "the retry batch to start")
        for article in articles:
            assert stack.publish(article, 2, body=body(article, 2)).status_code == 202
        wait_until(lambda: all(stack.cms.final_revisions().get(a) == 2 for a in articles)
                   and stack.redis.zcard(stack.ledger.key("due")) == 0, 60, "every article's revision 2")
        time.sleep(1.0)  # anything still on the wire arrives
        assert stack.cms.older_after_newer() == []
        assert {a: stack.cms.final_revisions()[a] for a in articles} == {a: 2 for a in articles}
        first_revisions_accepted = sum(1 for r in stack.cms.received if r["status"] == 200 and r["payload"]["article"]["revision"] == 1)
        assert 0 < first_revisions_accepted < 25  # the batch was on the wire, and stood down for the rest
    finally:
        stack.stop()


def test_two_workers_never_deliver_an_older_revision_last(tmp_path):
    """Revisions 1 and 2 of 300 articles published back to back, two worker processes, no
    failures: the first attempt of revision 1 may still be on the wire when revision 2 is ready;
    revision 2 waits for it (the article's post lease) or revision 1 stands down."""
    stack = Stack(tmp_path, workers=2, client_config=ONE_STORY_EACH).start()
    try:
        stack.cms.delay = 0.002
        articles = [f"race-{n}" for n in range(300)]
        for article in articles:
            stack.publish(article, 1, body=body(article, 1))
            stack.publish(article, 2, body=body(article, 2))
        wait_until(lambda: all(stack.cms.final_revisions().get(a) == 2 for a in articles), 120, "every article's revision 2")
        time.sleep(1.0)
        assert stack.cms.older_after_newer() == []
        assert {stack.cms.final_revisions()[a] for a in articles} == {2}
    finally:
        stack.stop()


def test_under_load_with_a_flaky_cms_every_article_ends_on_its_latest_revision(tmp_path):
    """Many articles, several revisions each, a CMS answering 500 to a fifth of all callbacks at
    random: whatever is retried, superseded or raced, the last callback each article's CMS
    accepts is its latest revision, and none arrives after a newer one was accepted."""
    stack = Stack(tmp_path, workers=2, retry_delays=(0.2, 0.3, 0.5, 0.5, 1.0, 1.0, 2.0, 2.0)).start()
    try:
        stack.cms.fail_rate = 0.2
        articles = [f"load-{n}" for n in range(80)]
        for revision in range(1, 5):
            for article in articles:
                stack.publish(article, revision, body=body(article, revision))
        wait_until(lambda: all(stack.cms.final_revisions().get(a) == 4 for a in articles)
                   and stack.redis.zcard(stack.ledger.key("due")) == 0, 120, "every article's revision 4")
        time.sleep(1.0)
        assert stack.cms.older_after_newer() == []
        assert {stack.cms.final_revisions()[a] for a in articles} == {4}
        counters, _ = stack.ledger.counters()
        assert counters.get("deliveries_retried", 0) > 0  # the CMS did fail
    finally:
        stack.stop()


@pytest.mark.parametrize("local", [False, True], ids=["queued", "local"])
def test_a_retag_never_delivers_an_older_revision_than_the_service_has_seen(tmp_path, local):
    """Article `a` published at revision 5 (its callback arrives), `u` unpublished at revision 2;
    a re-tag export names `a` at revision 2, `u` at revision 1 and `fresh` (never published) at
    3: only `fresh` gets a callback, and the run report counts the other two as superseded."""
    stack = Stack(tmp_path, client_config=ONE_STORY_EACH).start()
    try:
        stack.publish("a", 5, body=body("a", 5))
        stack.cms.wait_for("a")
        stack.publish("u", 1, body=body("u", 1))
        stack.cms.wait_for("u")
        stack.publish("u", 2, type="article.unpublished")
        wait_until(lambda: stack.redis.hget(stack.ledger.key("article", "newsroom", "u"), "unpublished") == b"2", 20, "the unpublish")
        export = tmp_path / "export.jsonl"
        export.write_text("".join(json.dumps(line) + "\n" for line in [
            {"id": "a", "revision": 2, "title": "Old", "body": body("a", 2), "current_tags": {}},
            {"id": "u", "revision": 1, "title": "Gone", "body": body("u", 1), "current_tags": {}},
            {"id": "fresh", "revision": 3, "title": "New", "body": body("fresh", 3), "current_tags": {}},
        ]))
        before = len(stack.cms.received)
        report = tmp_path / "report.json"
        run = stack.cli("retag", "--client", "newsroom", *(["--local"] if local else []), "--report", str(report), str(export),
                        home=tmp_path / "home")
        assert run.returncode == 0, run.stderr
        stack.cms.wait_for("fresh")
        time.sleep(1.0)
        later = [(r["payload"]["article"]["id"], r["payload"]["article"]["revision"]) for r in stack.cms.received[before:]]
        assert later == [("fresh", 3)]
        assert json.loads(report.read_text())["superseded"] == 2
        assert "2 callbacks not sent" in run.stdout
        assert stack.cms.older_after_newer() == []
    finally:
        stack.stop()
