"""Versions of one story: a copy with debris, a rewrite by another outlet and a trimmed copy are
found as one story, a different report on the same subject and day is not, and the versions get
one tag set in the three modes."""

import json

import pytest

from worker.engine.stories import Signature, candidate_keys, group, published_date, similarity, within_window
from worker.engine.tagging import ArticleInput

from .conftest import SEEDS

WIRE = ("Norway agrees to buy K9 howitzers from South Korea",
        "OSLO (Wire) - Norway's defence ministry on Thursday signed a contract worth 1.9 billion crowns with South Korea's "
        "Hanwha Aerospace for 24 K9 Thunder self-propelled howitzers, the largest artillery purchase in the Nordic country's "
        "history. Defence Minister Bjorn Arild Gram said the guns would replace ageing M109 systems and equip the Brigade Nord "
        "in Finnmark, close to the Russian border.\n\n"
        "Deliveries are due to start in 2027 and will include ammunition, training and spare parts, the ministry said. Hanwha, "
        "which has sold the K9 to Poland, Finland and Estonia, will set up a maintenance centre near Bardufoss under the "
        "agreement, Gram told reporters in Oslo.\n\n"
        "Seoul has become one of Europe's main weapons suppliers since Russia's full-scale invasion of Ukraine, and Norwegian "
        "officials said the deal had been negotiated in less than a year. The contract includes an option for a further 12 "
        "howitzers, which Oslo could exercise before 2029.")
DEBRIS = ("<p>Follow us on Facebook</p><article><p>" + WIRE[1].replace("\n\n", "</p><p>") + "</p></article>"
          "<p>CLICK HERE FOR MORE DEFENCE NEWS</p><p>(c) 2026 Wire Services. All rights reserved.</p>")
REWRITE = ("Oslo orders two dozen Korean K9 guns in record artillery deal",
           "Norway will buy 24 K9 Thunder howitzers from Hanwha Aerospace of South Korea under a contract of about 1.9 "
           "billion Norwegian crowns, the government in Oslo announced on Thursday, calling it the biggest artillery order "
           "the country has ever placed.\n\n"
           "The tracked guns are meant for Brigade Nord in Finnmark, the northernmost county bordering Russia, and will take "
           "the place of the army's old M109 howitzers, Defence Minister Bjorn Arild Gram said. First deliveries are planned "
           "for 2027.\n\n"
           "Hanwha has already supplied the K9 to Finland, Estonia and Poland and is to open a service workshop near Bardufoss "
           "as part of the deal, according to the ministry. An option would let Norway add 12 more guns later in the decade.")
TRIMMED = (WIRE[0], WIRE[1].split("\n\n")[0])
SAME_SUBJECT = ("Norway tests new air defence in Finnmark",
                "OSLO (Wire) - Norway's army on Thursday fired NASAMS air-defence missiles for the first time at the Halkavarre "
                "range in Finnmark, a drill officials said showed the country could protect its northern bases. Brigade "
                "Nord commander Colonel Lars Lervik said the test involved 300 soldiers and lasted two days.\n\n"
                "The exercise came as NATO allies stepped up training near the Russian border. Kongsberg, which builds NASAMS "
                "with Raytheon, said the missiles hit all four drone targets over the Barents Sea.\n\n"
                "Norway has increased defence spending sharply and plans to buy long-range drones and new submarines, Lervik "
                "said, adding that air defence was the army's most urgent need in the far north.")


def _signatures(tagger, *articles):
    return tagger.tag_signed([ArticleInput(f"v{i}", title, body) for i, (title, body) in enumerate(articles)])[1]


def test_a_copy_with_debris_a_rewrite_and_a_trimmed_copy_are_one_story(shipped_tagger):
    wire, copy, rewrite, trimmed = _signatures(shipped_tagger, WIRE, ("", DEBRIS), REWRITE, TRIMMED)
    assert similarity(wire, copy) > 0.9
    assert similarity(wire, rewrite) >= 0.4
    assert similarity(wire, trimmed) >= 0.4
    groups = group(["wire", "copy", "rewrite", "trimmed"], [wire, copy, rewrite, trimmed])
    assert len(set(groups.ids)) == 1 and groups.sizes == [4, 4, 4, 4]
    assert groups.ids[0] == group(["wire"], [wire]).ids[0]  # named after the first version: stable


def test_another_story_on_the_same_subject_and_day_is_not_a_version(shipped_tagger):
    wire, rewrite, other = _signatures(shipped_tagger, WIRE, REWRITE, SAME_SUBJECT)
    assert similarity(wire, other) < 0.25
    groups = group(["wire", "rewrite", "other"], [wire, rewrite, other])
    assert groups.ids[0] == groups.ids[1] != groups.ids[2]


def test_dates_further_apart_than_the_window_keep_look_alikes_apart():
    a = Signature({"k9": 1.0}, {"hanwha": 1.0}, "2026-11-02")
    assert within_window(a, Signature({}, {}, "2026-11-04")) and within_window(a, Signature({}, {}, None))
    assert not within_window(a, Signature({}, {}, "2027-11-02"))
    twin = Signature({"k9": 1.0}, {"hanwha": 1.0}, "2027-11-02")
    assert similarity(a, twin) == 1.0 and len(set(group(["a", "b"], [a, twin]).ids)) == 2


def test_signatures_are_small_and_keys_few(shipped_tagger):
    (wire,) = _signatures(shipped_tagger, WIRE)
    assert len(json.dumps(wire.as_json())) < 1500 and len(candidate_keys(wire)) <= 16
    assert Signature.from_json(json.loads(json.dumps(wire.as_json()))) == wire


def test_publication_dates_come_from_the_record_or_its_url():
    assert published_date({"published_at": "2026-11-22T10:00:00Z"}) == "2026-11-22"
    assert published_date({"url": "https://example.com/news/2023/09/14/f-35-jets-land"}) == "2023-09-14"
    assert published_date({"url": "https://example.com/a/123"}) is None


def test_versions_get_one_tag_set_in_a_batch_and_the_modes_say_how(shipped_tagger):
    articles = [ArticleInput("wire", *WIRE), ArticleInput("rewrite", *REWRITE), ArticleInput("trimmed", *TRIMMED),
                ArticleInput("other", *SAME_SUBJECT)]
    own = shipped_tagger.tag_many(articles)
    shared = shipped_tagger.tag_many(articles, stories="shared")
    sets = {(frozenset(t["tag"] for t in r["topics"]), frozenset(r["code"] for r in r["regions"])) for r in shared[:3]}
    assert len(sets) == 1 and "arms-deals" in next(iter(sets))[0] and {"NO", "KR"} <= next(iter(sets))[1]
    assert [r["story"]["versions"] for r in shared] == [3, 3, 3, 1]
    assert shared[3]["topics"] == own[3]["topics"] and shared[3]["regions"] == own[3]["regions"]
    for result, before in zip(shared[:3], own[:3]):
        gained = {t["tag"] for t in result["topics"]} - {t["tag"] for t in before["topics"]}
        for tag in (t for t in result["topics"] if t["tag"] in gained):
            assert tag["evidence"][0].startswith("story: ") and tag["by"] == "model"

    suggest = shipped_tagger.tag_many(articles, stories="suggest")
    off = shipped_tagger.tag_many(articles, stories="off")
    for mine, s, o in zip(own, suggest, off):
        assert s["topics"] == mine["topics"] and s["regions"] == mine["regions"]  # own tags untouched...
        assert o["topics"] == mine["topics"] and o["suggested"] == mine["suggested"]
        assert o["story"] == s["story"]  # ...and the story is said in every mode
    story_only = {t["tag"] for r in shared[:3] for t in r["topics"]} - {t["tag"] for t in own[2]["topics"]}
    assert story_only <= {t["tag"] for t in suggest[2]["suggested"]["topics"]}  # ...the story's others are suggestions


@pytest.mark.skipif(len(SEEDS) != 5, reason="the seed articles live in ../shared/seeds")
def test_the_five_seed_versions_get_one_tag_set_with_every_topic(shipped_tagger):
    articles = [ArticleInput(path.stem, "", path.read_text(encoding="utf-8")) for path in SEEDS]
    results = shipped_tagger.tag_many(articles, stories="shared")
    sets = {(frozenset(t["tag"] for t in r["topics"]), frozenset(r["code"] for r in r["regions"])) for r in results}
    assert len(sets) == 1
    topics, regions = next(iter(sets))
    assert topics == {"arms-deals", "sanctions", "ukraine-front"} and {"KP", "RU"} <= regions
