"""Editors in the loop, end to end on the real stack (Redis, worker, ingress, a loopback CMS that
verifies signatures): a preview answers at once with the tags `autotag tag` gives, feedback is
stored once, the next revision's callback and a re-tag honour it, the report shows it, and bad
feedback gets its 4xx and changes nothing."""

import json
import threading
import time

import pytest

from worker.engine.tagging import ArticleInput

from .conftest import write_jsonl
from .stack import Stack
from .test_pipeline import ARMS

BIG = ARMS[1] + " " + " ".join(f"Paragraph {i} of the background to the contract signed in Warsaw." for i in range(4000))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = Stack(tmp_path_factory.mktemp("feedback-stack"), extra_config="preview_concurrency = 2").start()
    yield running
    running.stop()


def test_a_preview_answers_with_what_autotag_tag_gives(stack, shipped_tagger):
    answer = stack.preview({"id": "draft-1", "title": ARMS[0], "body": ARMS[1]})
    assert answer.status_code == 200, answer.text
    expected = json.loads(json.dumps(shipped_tagger.tag_many([ArticleInput("draft-1", ARMS[0], ARMS[1])], stories="shared")[0]))
    assert answer.json() == expected
    assert [t["tag"] for t in expected["topics"]] == ["arms-deals"] and {r["code"] for r in expected["regions"]} == {"PL", "KR"}


@pytest.mark.parametrize("body, token, status, field", [
    ({"article": {"id": "d", "title": "t", "body": "  "}}, None, 422, "article.body"),
    ({"article": {"title": "t", "body": "text"}}, None, 422, "article.id"),
    ({"article": {"id": "d", "revision": -1, "title": "t", "body": "text"}}, None, 422, "article.revision"),
    ({"nothing": 1}, None, 422, "article"),
    ({"article": {"id": "d", "title": "t", "body": "text"}}, "wrong-token", 401, "authorization"),
])
def test_a_bad_preview_gets_the_same_4xx_as_an_event(stack, body, token, status, field):
    answer = stack.post_raw(json.dumps(body).encode(), path="/v1/tag", token=token)
    assert answer.status_code == status and answer.json()["field"] == field, answer.text


def test_previews_beyond_the_limit_get_429_with_retry_after_never_a_pile_up(stack):
    """Two previews at a time (this stack's preview_concurrency); a burst of long articles gets
    its answers at once: 200s and 429s, no 5xx, no request left waiting."""
    answers, started = [], time.monotonic()

    def one(i):
        answers.append(stack.post_raw(json.dumps({"article": {"id": f"big-{i}", "title": "t", "body": BIG}}).encode(), path="/v1/tag"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {200, 429} and 200 in statuses and 429 in statuses, statuses
    assert all(a.headers["retry-after"] == "1" for a in answers if a.status_code == 429)
    assert time.monotonic() - started < 30


def test_feedback_is_honoured_by_the_next_revision_and_by_a_retag(stack, tmp_path):
    stack.publish("fb-a1", 1, title=ARMS[0], body=ARMS[1])
    (first,) = stack.cms.wait_for("fb-a1")
    assert [t["tag"] for t in first["payload"]["topics"]] == ["arms-deals"]
    assert all(t["by"] == "model" for t in first["payload"]["topics"] + first["payload"]["regions"])
    assert first["payload"]["reason"] == "publish"

    feedback = {"id": "fb-1", "article": {"id": "fb-a1", "revision": 1}, "model_version": first["payload"]["model_version"],
                "decisions": [{"kind": "topic", "tag": "arms-deals", "decision": "rejected", "editor": "u17"},
                              {"kind": "topic", "tag": "sanctions", "decision": "added", "editor": "u17"},
                              {"kind": "region", "tag": "KR", "decision": "rejected", "editor": "u17"},
                              {"kind": "region", "tag": "PL", "decision": "accepted", "editor": "u17"},
                              {"kind": "region", "tag": "FR", "decision": "added", "editor": "u17"}]}
    answer = stack.feedback(feedback)
    assert answer.status_code == 202 and answer.json() == {"feedback_id": "fb-1", "status": "stored", "decisions": 5}
    assert stack.feedback(feedback).json()["status"] == "duplicate"

    stack.publish("fb-a1", 2, title=ARMS[0], body=ARMS[1])
    second = stack.cms.wait_for("fb-a1", count=2)[-1]["payload"]
    assert second["article"]["revision"] == 2
    _assert_honoured(second)

    preview = stack.preview({"id": "fb-a1", "title": ARMS[0], "body": ARMS[1]}).json()
    _assert_honoured(preview)

    export = write_jsonl(tmp_path / "export.jsonl", [{"id": "fb-a1", "revision": 2, "title": ARMS[0], "body": ARMS[1]}])
    run = stack.cli("retag", export, "--rate", "50")
    assert run.returncode == 0, run.stderr
    retagged = stack.cms.wait_for("fb-a1", count=3)[-1]["payload"]
    assert retagged["reason"] == "retag"
    _assert_honoured(retagged)

    report = json.loads(stack.cli("feedback", "report", "--json").stdout)
    rows = {(row["kind"], row["tag"]): row for row in report["tags"]}
    assert rows[("topic", "arms-deals")]["model_tags"] == {"kept": 0, "rejected": 1, "precision": 0.0}
    assert rows[("topic", "sanctions")]["added_by_editors"] == 1
    assert rows[("region", "PL")]["model_tags"]["kept"] == 1 and rows[("region", "KR")]["model_tags"]["rejected"] == 1
    assert rows[("region", "FR")]["added_by_editors"] == 1
    assert rows[("topic", "arms-deals")]["threshold"]["best"] is None  # one decision: too few to say
    table = stack.cli("feedback", "report").stdout
    assert "topic arms-deals" in table and "too few" in table

    metrics = stack.http.get("/metrics").text
    assert 'autotag_feedback_decisions_total{kind="topic",tag="arms-deals",decision="rejected"} 1' in metrics


def _assert_honoured(result: dict) -> None:
    topics = {t["tag"]: t for t in result["topics"]}
    regions = {r["code"]: r for r in result["regions"]}
    assert "arms-deals" not in topics and "arms-deals" not in {t["tag"] for t in result["suggested"]["topics"]}
    assert topics["sanctions"]["by"] == "editor"
    assert "KR" not in regions and "KR" not in {r["code"] for r in result["suggested"]["regions"]}
    assert regions["PL"]["by"] == "editor" and regions["PL"]["score"] > 0.9  # the model's score kept
    assert regions["FR"] == {"code": "FR", "name": "France", "score": None, "evidence": [], "by": "editor"}


def test_the_latest_decision_for_a_tag_wins_and_an_older_revisions_does_not(stack):
    stack.publish("fb-a2", 5, title=ARMS[0], body=ARMS[1])
    stack.cms.wait_for("fb-a2")
    decide = lambda fid, revision, decision: stack.feedback({  # noqa: E731
        "id": fid, "article": {"id": "fb-a2", "revision": revision},
        "decisions": [{"kind": "region", "tag": "KR", "decision": decision, "editor": "u1"}]}).status_code
    assert decide("l1", 5, "rejected") == 202
    assert decide("l2", 5, "accepted") == 202  # changed their mind: KR stays
    assert decide("l3", 4, "rejected") == 202  # a late decision about an older revision: stored, not applied
    stack.publish("fb-a2", 6, title=ARMS[0], body=ARMS[1])
    payload = stack.cms.wait_for("fb-a2", count=2)[-1]["payload"]
    assert {r["code"]: r["by"] for r in payload["regions"]}["KR"] == "editor"


@pytest.mark.parametrize("change, status, field", [
    (lambda f: f["decisions"][0].update(decision="maybe"), 422, "decisions[0].decision"),
    (lambda f: f["decisions"][0].update(kind="person"), 422, "decisions[0].kind"),
    (lambda f: f["decisions"][1].update(tag="XX"), 422, "decisions[1].tag"),
    (lambda f: f["decisions"][1].update(tag="fr"), 422, "decisions[1].tag"),
    (lambda f: f["decisions"][0].update(tag="elections"), 422, "decisions[0].tag"),
    (lambda f: f["decisions"][0].update(score=7), 422, "decisions[0].score"),
    (lambda f: f["article"].pop("id"), 422, "article.id"),
    (lambda f: f["article"].pop("revision"), 422, "article.revision"),
    (lambda f: f.pop("id"), 422, "id"),
    (lambda f: f.update(decisions=[]), 422, "decisions"),
    (lambda f: f.update(padding="x" * 300_000), 413, "body"),
])
def test_bad_feedback_gets_its_4xx_and_changes_nothing(stack, change, status, field):
    feedback = {"id": "bad-1", "article": {"id": "fb-bad", "revision": 1},
                "decisions": [{"kind": "topic", "tag": "sanctions", "decision": "rejected", "editor": "u1"},
                              {"kind": "region", "tag": "FR", "decision": "added", "editor": "u1"}]}
    change(feedback)
    before = _feedback_state(stack)
    answer = stack.feedback(feedback)
    assert answer.status_code == status and answer.json()["field"] == field, answer.text
    assert _feedback_state(stack) == before


def test_feedback_with_a_wrong_token_is_a_401_and_changes_nothing(stack):
    before = _feedback_state(stack)
    answer = stack.feedback({"id": "bad-2", "article": {"id": "fb-bad", "revision": 1},
                             "decisions": [{"kind": "topic", "tag": "sanctions", "decision": "rejected"}]}, token="not-ours")
    assert answer.status_code == 401 and answer.json()["field"] == "authorization"
    assert _feedback_state(stack) == before


def _feedback_state(stack) -> dict:
    """Everything a stored feedback would change: its dedupe key, the log, the article's state, counters."""
    return {"claimed": stack.redis.exists(stack.ledger.key("feedback", "newsroom", "bad-1")),
            "log": stack.redis.xlen(stack.ledger.key("decisions", "newsroom")),
            "state": stack.redis.hgetall(stack.ledger.key("editor", "newsroom", "fb-bad")),
            "counts": stack.redis.hgetall(stack.ledger.key("feedback_decisions"))}
