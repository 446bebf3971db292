"""The shortcuts that sign and group a batch quickly give what the plain definitions give, to the
last digit: names from the set of lower-case tokens, terms and names normalised one dict at a
time with `round`, and stories found by scoring every earlier article with `similarity`."""

import math
import random
import re
from collections import Counter

import numpy as np
import pytest

from worker.engine import stories
from worker.engine.corpus import load_corpus
from worker.engine.stories import (NAMES_KEPT, TERMS_KEPT, Signature, _normalised, _rounded, _written_in_lower_case,
                                   group, joins, similarity, story_id)
from worker.engine.tagging import ArticleInput, _bounded
from worker.engine.text import clean_article

from .conftest import ROOT

TRICKY = ("Putin's envoy met Putin. The minister said: \"Minister Vučić's plan\" was the minister's.\n\n"
          "NATO and Nato; ex-Minister O''s Hanwha'\tİstanbul istanbul, (london) London! said.\"), Said k9 K9's"
          " BAE\u2019s bae\u2019s Türkiye türkiye o'' o'. Additionally, Kirby left. Afterward Kirby (Reuters) spoke:\n"
          "Stressing unity, Ms Kallas \u201cHello\u201d Vantorin; Meridale")


@pytest.fixture(scope="module")
def corpus_articles():
    corpus = load_corpus(ROOT / "models" / "corpus")
    return [ArticleInput(a.id, a.title, a.body) for a in corpus.articles]


def _plain_names(signer, text):
    """The names' definition, written out: capitalised words after a word, a comma or a closing
    mark and one space, less the set of lower-case tokens; a Counter of words."""
    lower = {token.strip(stories._PUNCTUATION) for token in text.split() if token[0].islower()}
    capitalised = re.finditer(r"\b[A-ZÀ-ÖØ-ÞĀ-ž][\w'\u2019\-]*\w", text)
    before = [(text[found.start() - 2 : found.start()], found[0]) for found in capitalised]
    inside_sentences = [word for two, word in before
                        if len(two) == 2 and two[1] == " " and (two[0].isalnum() or two[0] in "_,;'\u2019\u201d\")]")]
    counts = Counter(re.sub(r"['\u2019]s$", "", word) for word in inside_sentences)
    weights = {}
    for word, count in counts.items():
        word = word.lower()
        if word in stories._COMMON or word in lower or word in signer.country_words:
            continue
        idf = signer.idf.get(word.replace("'", ""), signer.max_idf)
        if idf >= stories._NAME_FLOOR:
            weights[word] = (1.0 + math.log(count)) * idf
    return weights


def test_rounding_in_bulk_is_round_to_four_places():
    generator = random.Random(7)
    values = [generator.random() for _ in range(20000)] + [1.0, 0.0, 0.03125, 0.00005, 0.00015, 0.99995, 0.5]
    halves = [(k + 0.5) / 10000 for k in range(0, 10000, 7)]
    values += halves + [math.nextafter(v, 0.0) for v in halves] + [math.nextafter(v, 1.0) for v in halves]
    assert _rounded(np.asarray(values)) == [round(v, 4) for v in values]


def test_a_word_written_in_lower_case_is_found_as_the_token_set_finds_it():
    text = TRICKY
    lower = {token.strip(stories._PUNCTUATION) for token in text.split() if token[0].islower()}
    words = {word.lower() for word in re.findall(r"\w[\w'\u2019\-]*", text)} | {"said", "o'", "minister's", "bae\u2019s", "k9"}
    for word in words:
        assert _written_in_lower_case(text, word) == (word in lower), word


def test_names_are_what_the_plain_definition_gives(shipped_tagger, corpus_articles):
    signer = shipped_tagger.signer
    texts = [TRICKY] + [_bounded(clean_article(a.title, a.body)).text for a in corpus_articles]
    for text in texts + texts:  # the second time from what the signer remembers of each word
        assert signer._names(text) == _plain_names(signer, text)
    assert "hanwha" in signer._names(TRICKY) and "minister" not in signer._names(TRICKY)
    # a sentence's first word is capitalised whatever it is: only words inside sentences count
    assert {"kirby", "kallas", "vantorin", "meridale"} <= set(signer._names(TRICKY))
    assert not {"additionally", "afterward", "stressing", "hello"} & set(signer._names(TRICKY))


def test_a_batch_is_signed_as_its_articles_one_at_a_time(shipped_tagger, corpus_articles):
    articles = corpus_articles[:300]
    cleaned = [_bounded(clean_article(a.title, a.body)) for a in articles]
    rows = shipped_tagger.topic_model.vectorize([c.text for c in cleaned]).articles
    countries = [{"UA": 3, "RU": 3, "US": 1}, {}] + [{"PL": i % 5 + 1} for i in range(len(articles) - 2)]
    signatures = shipped_tagger.signer.sign_many(cleaned, [None] * len(articles), rows, countries)
    signer = shipped_tagger.signer
    for index, (article, signature) in enumerate(zip(cleaned, signatures)):
        features, weights = rows.indices[rows.indptr[index] : rows.indptr[index + 1]], rows.data[rows.indptr[index] : rows.indptr[index + 1]]
        keep = signer.keep_feature[features]
        features, weights = features[keep], weights[keep]
        if len(features) > TERMS_KEPT:
            strongest = np.argpartition(-weights, TERMS_KEPT)[:TERMS_KEPT]
            features, weights = features[strongest], weights[strongest]
        terms = _normalised(dict(zip(signer.feature_names[features].tolist(), weights.tolist())), TERMS_KEPT)
        assert list(signature.terms.items()) == list(terms.items())  # the order too: index keys come first
        assert list(signature.names.items()) == list(_normalised(_plain_names(signer, article.text), NAMES_KEPT).items())
        assert list(signature.countries.items()) == list(_normalised(countries[index], stories.COUNTRIES_KEPT).items())


def _plain_group(article_ids, signatures):
    """Stories by the definition: every earlier article scored with `similarity`, each earlier
    story tried from the closest look-alike's down."""
    story_of, first_of = [], []
    for i, signature in enumerate(signatures):
        scores = [similarity(signature, earlier) for earlier in signatures[:i]]
        for j in sorted(range(i), key=lambda j: (-scores[j], j)):
            if joins(scores[j], scores[first_of[story_of[j]]]):
                story_of.append(story_of[j])
                break
        else:
            story_of.append(len(first_of))
            first_of.append(i)
    return [story_id(article_ids[first_of[story]]) for story in story_of]


def test_stories_in_a_batch_are_those_every_pair_scored_gives(shipped_tagger, corpus_articles):
    articles = corpus_articles[:400]
    _, signatures = shipped_tagger.tag_signed(articles)
    ids = [a.id for a in articles]
    groups = group(ids, signatures)
    for article, signature in list(zip(articles, signatures))[:40]:  # one at a time, as a live worker signs
        (alone,) = shipped_tagger.tag_signed([article])[1]
        assert [list(alone.terms.items()), list(alone.names.items()), list(alone.countries.items())] == \
            [list(signature.terms.items()), list(signature.names.items()), list(signature.countries.items())]
    assert groups.ids == _plain_group(ids, signatures)
    assert max(groups.sizes) >= 2 and sum(size >= 2 for size in groups.sizes) >= 10  # the corpus holds versions
    assert sorted(i for versions in groups.members.values() for i in versions) == list(range(len(articles)))


def test_an_article_whose_closest_story_began_too_far_away_joins_the_next_closest():
    half = math.sqrt(0.5)
    # "drift" joins "origin"'s story (0.5 each); "late" is closest to "drift" but far from "origin"
    origin = Signature({"k9": 1.0}, {"hanwha": 1.0})
    drift = Signature({"k9": half, "f16": half}, {"hanwha": half, "lockheed": half})
    other = Signature({"f16": 0.8, "rafale": 0.6}, {"lockheed": 0.8, "dassault": 0.6})
    late = Signature({"f16": 0.9818, "k9": 0.19}, {"lockheed": 0.9818, "hanwha": 0.19})
    signatures, ids = [origin, drift, other, late], ["origin", "drift", "other", "late"]
    assert similarity(other, drift) >= 0.2 and similarity(other, origin) == 0
    assert similarity(late, drift) > similarity(late, other) >= 0.2 > similarity(late, origin)
    found = group(ids, signatures).ids
    assert found[1] == found[0] != found[2]  # "other" starts its own story
    assert found[3] == found[2]  # not "drift"'s story, whose first version is too far: the next closest's
    assert found == _plain_group(ids, signatures)


def test_an_article_as_close_to_two_stories_joins_the_earlier():
    half = math.sqrt(0.5)
    first, second = Signature({"k9": 1.0}, {"hanwha": 1.0}), Signature({"f16": 1.0}, {"lockheed": 1.0})
    between = Signature({"k9": half, "f16": half}, {"hanwha": half, "lockheed": half})
    assert similarity(between, first) == similarity(between, second) > 0.25 > similarity(first, second)
    ids = group(["first", "second", "between"], [first, second, between]).ids
    assert ids[2] == ids[0] != ids[1] and ids == _plain_group(["first", "second", "between"], [first, second, between])
