"""Country salience is learned: a country the story is about outscores one it only mentions."""

import numpy as np
import pytest

from worker.engine.regions import FEATURES, SalienceClassifier, find_candidates
from worker.engine.tagging import parse_article
from worker.engine.text import clean_article

POLAND_STORY = (
    "Poland buys air defence batteries",
    "WARSAW — Poland will buy eight more air defence batteries, the Polish defence ministry said on Tuesday. "
    "The deal was signed in Warsaw.\n\nPolish officials said the systems would protect the eastern border. "
    "Poland has sharply raised military spending.\n\nThe announcement came a day after a summit in France.",
)


def test_candidates_describe_how_and_where_a_country_is_named(tiny_tagger):
    candidates, features = find_candidates(clean_article(*POLAND_STORY), tiny_tagger.matcher)
    assert [c.code for c in candidates] == ["PL", "FR"]
    row = dict(zip(FEATURES, features[0]))
    assert row["in_title"] == 1.0 and row["is_top"] == 1.0 and row["in_lead"] == 1.0
    france = dict(zip(FEATURES, features[1]))
    assert france["in_title"] == 0.0 and france["last_half_only"] == 1.0


@pytest.mark.parametrize("body, dateline", [
    ("KYIV, Ukraine (AP) — Russian drones hit a power plant overnight, officials said.", {"UA"}),
    ("Zurich (AFP) - FIFA on Thursday banned Russia from the tournament, the body said.", {"CH"}),
    ("NYON, Switzerland -- UEFA punished three clubs from Romania, Hungary and Slovenia.", {"CH"}),
    ("Ukraine's President Volodymyr Zelensky (pictured) said the front held near Bakhmut.", set()),
    ("Officials said on Monday that Poland - not Germany - would host the summit.", set()),
])
def test_a_place_in_the_dateline_is_marked(tiny_tagger, body, dateline):
    candidates, features = find_candidates(clean_article("Headline", body), tiny_tagger.matcher)
    marked = {c.code for c, row in zip(candidates, features) if row[FEATURES.index("dateline")] == 1.0}
    assert marked == dateline


def test_a_dateline_after_cms_debris_is_still_a_dateline(tiny_tagger):
    body = "Published Aug. 5, 2014 12:48 p.m. ET\n\nNYON, Switzerland -- UEFA fined three clubs on Tuesday."
    candidates, features = find_candidates(clean_article("UEFA fines clubs", body), tiny_tagger.matcher)
    assert [c.code for c, row in zip(candidates, features) if row[FEATURES.index("dateline")] == 1.0] == ["CH"]


def test_salience_trained_on_the_tiny_corpus_ranks_the_subject_first(tiny_tagger):
    _, features = find_candidates(clean_article(*POLAND_STORY), tiny_tagger.matcher)
    poland, france = tiny_tagger.salience_model.salience(features)
    assert poland > tiny_tagger.region_accept > france


def test_packed_tree_walk_equals_scikit_learn(tiny_tagger):
    rng = np.random.default_rng(0)
    X = rng.random((200, len(FEATURES))) * np.array([3, 1, 1, 1, 8, 10, 1, 3, 1, 1, 4, 1, 1, 1, 5, 9, 1, 1, 1, 1, 1])
    model = tiny_tagger.salience_model
    assert np.allclose(model.salience(X), model.predict_proba(X)[:, 1], atol=1e-12)


def test_salience_classifier_fits_a_learnable_rule():
    rng = np.random.default_rng(1)
    X = rng.random((400, len(FEATURES)))
    y = (X[:, 0] + X[:, 6] > 1.0).astype(int)
    model = SalienceClassifier(max_iter=80).fit(X[:300], y[:300])
    accuracy = ((model.salience(X[300:]) >= 0.5) == y[300:]).mean()
    assert accuracy > 0.85


@pytest.mark.parametrize("body, expected", [
    ("South Korea agreed to sell artillery shells to Poland.", {"KR", "PL"}),  # the buyer is a subject too
    ("Japan will buy 400 Tomahawk missiles from the United States, the defence ministry in Tokyo said.", {"JP", "US"}),
    ("Halve four ripe Georgia peaches, brush them with butter and grill for four minutes.", {"US"}),  # the state, not the country
])
def test_countries_in_short_copy(shipped_tagger, body, expected):
    (result,) = shipped_tagger.tag_many([parse_article({"id": "brief", "title": "", "body": body})])
    assert {region["code"] for region in result["regions"]} == expected
