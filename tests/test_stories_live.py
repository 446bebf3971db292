"""Stories live, on the real stack: a later version that changes the story's tags updates the
version already delivered (a signed callback, reason "story", at its own revision), an editor's
decision on one version wins there only, the per-client switch (suggest, off) is honoured, the
index's state expires with the window, and the five seeds published one by one end with one
tag set."""

import math
import time

import pytest

from worker.engine.stories import Signature, group
from worker.service.story_index import StoryIndex

from .conftest import SEEDS
from .stack import Stack
from .test_stories import REWRITE, SAME_SUBJECT, WIRE

SANCTIONS = ("\n\nThe order comes as Norway tightens its own export controls: the government this week added 40 Russian "
             "companies to its sanctions list, froze the assets of two shipping firms accused of breaking the EU embargo on "
             "Russian oil, and banned the sale of machine tools and drone parts to Belarus. Oslo has adopted every EU sanctions "
             "package since 2022.")
WITH_SANCTIONS = (REWRITE[0], REWRITE[1] + SANCTIONS)


def stack_with(tmp_path_factory, mode: str) -> Stack:
    return Stack(tmp_path_factory.mktemp(f"stories-{mode}"), client_config=f'story_tags = "{mode}"').start()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = stack_with(tmp_path_factory, "shared")
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def fresh_index(request):
    """Each test's versions start a story of their own: the index of earlier tests is cleared."""
    if "stack" in request.fixturenames:
        running = request.getfixturevalue("stack")
        for key in running.redis.scan_iter(f"{running.prefix}:story:*"):
            running.redis.delete(key)


def topics(payload, where="topics"):
    return {t["tag"] for t in (payload[where] if where == "topics" else payload["suggested"]["topics"])}


def regions(payload):
    return {r["code"] for r in payload["regions"]}


def publish(stack, article_id, article, revision=1):
    assert stack.publish(article_id, revision, title=article[0], body=article[1]).status_code == 202


def test_a_later_version_updates_the_version_already_delivered(stack):
    before, _ = stack.ledger.counters()
    publish(stack, "lv-a", WIRE)
    (first,) = stack.cms.wait_for("lv-a")
    assert topics(first["payload"]) == {"arms-deals"} and first["payload"]["story"]["versions"] == 1
    publish(stack, "lv-b", WITH_SANCTIONS)
    (second,) = stack.cms.wait_for("lv-b")
    story = second["payload"]["story"]
    assert story == {"id": first["payload"]["story"]["id"], "versions": 2}  # named after its first version
    assert topics(second["payload"]) == {"arms-deals", "sanctions"}

    update = stack.cms.wait_for("lv-a", count=2)[-1]["payload"]
    assert update["reason"] == "story" and update["article"] == {"id": "lv-a", "revision": 1}
    assert update["story"] == story and topics(update) == topics(second["payload"]) and regions(update) == regions(second["payload"])
    gained = next(t for t in update["topics"] if t["tag"] == "sanctions")
    assert gained["evidence"][0] == "story: 1 of 1 other version" and gained["by"] == "model"
    assert stack.cms.wait_for("lv-a", count=2)[-1]["headers"]["webhook-id"] != first["headers"]["webhook-id"]

    time.sleep(1.0)  # nothing more is sent: the story's tags did not change again
    assert len(stack.cms.for_article("lv-a")) == 2 and len(stack.cms.for_article("lv-b")) == 1
    after, _ = stack.ledger.counters()
    grew = {name: after.get(name, 0) - before.get(name, 0) for name in ("events_received", "tasks_done", "story_updates")}
    assert grew == {"events_received": 2, "tasks_done": 2, "story_updates": 1}  # an update is not an event handled


def test_another_story_on_the_same_subject_stays_apart(stack):
    publish(stack, "sa-a", WIRE)
    stack.cms.wait_for("sa-a")
    publish(stack, "sa-other", SAME_SUBJECT)
    (other,) = stack.cms.wait_for("sa-other")
    assert other["payload"]["story"]["versions"] == 1
    time.sleep(1.0)
    assert len(stack.cms.for_article("sa-a")) == 1


def test_an_editors_decision_on_one_version_wins_there_and_does_not_spread(stack):
    publish(stack, "ed-a", WIRE)
    stack.cms.wait_for("ed-a")
    assert stack.feedback({"id": "fb-ed-a", "article": {"id": "ed-a", "revision": 1},
                           "decisions": [{"kind": "region", "tag": "KR", "decision": "rejected"},
                                         {"kind": "topic", "tag": "sanctions", "decision": "rejected"}]}).status_code == 202
    publish(stack, "ed-b", WITH_SANCTIONS)
    (b,) = stack.cms.wait_for("ed-b")
    assert "KR" in regions(b["payload"]) and "sanctions" in topics(b["payload"])
    update = stack.cms.wait_for("ed-a", count=2)[-1]["payload"]
    # the story's countries reach it (which ones is the model's call; the retrained model reads
    # Russia in the sanctions paragraph as passing, so no longer a new country by name)...
    assert update["reason"] == "story" and regions(update) == regions(b["payload"]) - {"KR"}
    assert "KR" not in regions(update) and "sanctions" not in topics(update) | topics(update, "suggested")  # ...its editor's choices stay


def test_the_story_index_expires_with_the_window_and_stays_small(stack):
    publish(stack, "bd-a", WIRE)
    stack.cms.wait_for("bd-a")
    keys = list(stack.redis.scan_iter(f"{stack.prefix}:story:newsroom:*"))
    assert keys and all(0 < stack.redis.ttl(key) <= 3 * 24 * 3600 for key in keys if not key.endswith(b":lock"))
    entry = stack.ledger.key("story", "newsroom", "entry", "bd-a")
    assert stack.redis.memory_usage(entry) < 8192
    assert sum(1 for key in stack.redis.scan_iter(f"{stack.prefix}:story:newsroom:key:*") if stack.redis.sismember(key, '"bd-a"')) <= 16


@pytest.mark.parametrize("mode", ["suggest", "off"])
def test_the_switch_says_whether_other_versions_tags_are_shared(tmp_path_factory, mode):
    stack = stack_with(tmp_path_factory, mode)
    try:
        publish(stack, "sw-a", WIRE)
        stack.cms.wait_for("sw-a")
        publish(stack, "sw-b", WITH_SANCTIONS)
        (b,) = stack.cms.wait_for("sw-b")
        assert b["payload"]["story"]["versions"] == 2 and topics(b["payload"]) == {"arms-deals", "sanctions"}
        if mode == "suggest":
            update = stack.cms.wait_for("sw-a", count=2)[-1]["payload"]
            assert topics(update) == {"arms-deals"} and "sanctions" in topics(update, "suggested")
        else:
            time.sleep(1.5)
            assert len(stack.cms.for_article("sw-a")) == 1
    finally:
        stack.stop()


@pytest.mark.skipif(len(SEEDS) != 5, reason="the seed articles live in ../shared/seeds")
def test_the_five_seeds_published_one_by_one_end_with_one_tag_set(stack):
    for index, path in enumerate(SEEDS):
        assert stack.publish(f"seed-{index}", 1, title="", body=path.read_text(encoding="utf-8")).status_code == 202
        stack.cms.wait_for(f"seed-{index}")
    time.sleep(2.0)  # the last version's updates of the earlier ones
    final = {index: stack.cms.for_article(f"seed-{index}")[-1]["payload"] for index in range(5)}
    sets = {(frozenset(topics(p)), frozenset(regions(p))) for p in final.values()}
    assert len(sets) == 1, sets
    tags, codes = next(iter(sets))
    assert tags == {"arms-deals", "sanctions", "ukraine-front"} and {"KP", "RU"} <= codes
    assert len({p["story"]["id"] for p in final.values()}) == 1
    # a version is sent again only when its tags change, not to update the count of versions
    assert final[4]["story"]["versions"] == 5


def test_the_live_index_joins_the_next_closest_story_as_a_batch_does(stack):
    """The closest look-alike's story began too far away (a version of it drifted towards another
    subject): the article joins the next closest story, in Redis as in a batch."""
    half = math.sqrt(0.5)
    signatures = {"origin": Signature({"k9": 1.0}, {"hanwha": 1.0}),
                  "drift": Signature({"k9": half, "f16": half}, {"hanwha": half, "lockheed": half}),
                  "other": Signature({"f16": 0.8, "rafale": 0.6}, {"lockheed": 0.8, "dassault": 0.6}),
                  "late": Signature({"f16": 0.9818, "k9": 0.19}, {"lockheed": 0.9818, "hanwha": 0.19})}
    index = StoryIndex(stack.redis, f"{stack.prefix}:next-closest", window_days=3)
    placed = {}
    for article_id, signature in signatures.items():
        result = {"id": article_id, "model_version": "m", "topics": [], "regions": [], "suggested": {"topics": [], "regions": []}}
        placed[article_id] = index.place("newsroom", article_id, 1, signature, result).story_id
    assert placed["drift"] == placed["origin"] != placed["other"] == placed["late"]
    assert list(placed.values()) == group(list(signatures), list(signatures.values())).ids
    for key in stack.redis.scan_iter(f"{stack.prefix}:next-closest:*"):
        stack.redis.delete(key)
