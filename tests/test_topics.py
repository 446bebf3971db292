"""The topic classifier learns the corpus' labels, explains itself, and its fast transform is exact."""

import json

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from worker.engine.corpus import load_corpus
from worker.engine.tagging import parse_article
from worker.engine.text import clean_article
from worker.engine.topics import TopicClassifier, analyze, readable_evidence, tokenize

from .conftest import ROOT, SEEDS


def test_tokenize_folds_case_and_accents():
    assert tokenize("Türkiye's T-72 tanks, 2024") == ["turkiye", "s", "t-72", "tanks", "2024"]
    assert tokenize("Front-line “shelling” -- in Київ - -x y-") == ["front-line", "shelling", "in", "x", "y"]
    assert analyze("Arms deal signed") == ["arms", "deal", "signed", "arms deal", "deal signed"]


def test_fast_transform_equals_the_fitted_vectoriser(tiny_corpus, tiny_tagger):
    texts = [clean_article(a.title, a.body).text for a in load_corpus(tiny_corpus).articles]
    texts += ["", "zzzz qqqq", "sanctions sanctions sanctions"]
    model = tiny_tagger.topic_model
    fast, reference = model.transform(texts), model.vectorizer_.transform(texts)
    assert fast.shape == reference.shape
    assert abs(fast - reference).max() < 1e-6


def test_labels_come_from_the_corpus_and_cross_validation_is_recorded(tiny_tagger):
    assert tiny_tagger.labels == ["arms-deals", "sanctions", "ukraine-front"]
    metrics = tiny_tagger.manifest["metrics"]["cross_validated"]["topics"]
    for label in tiny_tagger.labels:
        assert metrics[label]["f1"] > 0.6, metrics[label]
        thresholds = tiny_tagger.manifest["thresholds"]["topics"][label]
        assert 0 < thresholds["review"] <= thresholds["accept"] < 1


def test_a_tiny_corpus_is_enough_to_separate_the_topics(tiny_tagger):
    texts = [
        "The government agreed to buy 24 fighter jets and missiles from France in an arms deal worth billions, "
        "the defence ministry said, adding that the weapons contract includes training.",
        "The Treasury imposed sanctions on ten companies and froze their assets, widening export controls "
        "and banning travel for officials accused of evading earlier sanctions.",
        "Russian troops attacked Ukrainian positions near the front line overnight, shelling the town as "
        "Ukraine's forces repelled an assault and drones struck a Russian depot.",
    ]
    scores = tiny_tagger.topic_model.predict_proba(texts)
    assert list(np.argmax(scores, axis=1)) == [0, 1, 2]


def test_evidence_names_terms_of_the_article_that_push_towards_the_label(tiny_tagger):
    model = tiny_tagger.topic_model
    X = model.transform(["Washington imposed sanctions and an asset freeze on the bank."])
    evidence = model.evidence(X, 0, 1)
    assert evidence and "sanctions" in evidence
    assert all(term.split(" ")[0] in "washington imposed sanctions and an asset freeze on the bank" for term in evidence)


def test_fit_rejects_a_label_matrix_of_the_wrong_shape():
    import pytest

    with pytest.raises(ValueError):
        TopicClassifier().fit(["a b", "c d"], np.zeros((2, 2)), ["x"])


def test_cells_not_known_are_left_out_of_the_fit_whatever_they_hold(tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    labels = corpus.labels
    texts = [clean_article(a.title, a.body).text for a in corpus.articles]
    Y = np.array([[label in a.topics for label in labels] for a in corpus.articles], dtype=np.int8)
    known = np.ones(Y.shape, dtype=bool)
    known[::4, 0] = False  # a quarter of the rows say nothing about the first label
    flipped = Y.copy()
    flipped[~known] = 1 - flipped[~known]
    one = TopicClassifier().fit(texts, Y, labels, known=known)
    other = TopicClassifier().fit(texts, flipped, labels, known=known)
    assert np.array_equal(one.coef_, other.coef_)
    assert np.array_equal(one.stage2_coef_, other.stage2_coef_)
    assert np.array_equal(one.predict_proba(texts[:10]), other.predict_proba(texts[:10]))
    # and the cells do count once they are known
    assert not np.array_equal(TopicClassifier().fit(texts, flipped, labels).coef_, one.coef_)


def test_a_mask_with_every_cell_known_fits_exactly_as_no_mask(tiny_corpus):
    corpus = load_corpus(tiny_corpus)
    texts = [clean_article(a.title, a.body).text for a in corpus.articles]
    Y = np.array([[label in a.topics for label in corpus.labels] for a in corpus.articles], dtype=np.int8)
    plain = TopicClassifier().fit(texts, Y, corpus.labels)
    masked = TopicClassifier().fit(texts, Y, corpus.labels, known=np.ones(Y.shape, dtype=bool))
    assert np.array_equal(plain.coef_, masked.coef_) and np.array_equal(plain.stage2_coef_, masked.stage2_coef_)


def test_evidence_is_words_and_phrases_an_editor_reads_as_reasons():
    """Fragments (stop-word-led or -ended phrases, possessive stubs, two-letter tokens, bare
    verbs) never show; a word inside a chosen phrase is not repeated beside it."""
    strongest_first = ["us", "the eu", "sanctions on", "ukraine s", "imposed", "sanctions", "korea", "north korea", "2024",
                       "arms embargo", "embargo", "frozen assets"]
    assert readable_evidence(strongest_first) == ["sanctions", "north korea", "arms embargo", "frozen assets"]


def _readable(term: str) -> bool:
    words = term.split()
    return all(len(w) > 2 and not w.isdigit() for w in words) and words[0] not in ENGLISH_STOP_WORDS and words[-1] not in ENGLISH_STOP_WORDS


def test_shipped_model_evidence_on_the_seeds_and_a_corpus_sample_is_readable(shipped_tagger):
    articles = [{"id": path.stem, "title": "", "body": path.read_text(encoding="utf-8")} for path in SEEDS]
    for file in sorted((ROOT / "models" / "corpus").glob("*.jsonl")):
        articles += [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()[:8]]
    results = shipped_tagger.tag_many([parse_article(a) for a in articles])
    shown = [term for result in results for tag in result["topics"] for term in tag["evidence"] if not term.startswith("story:")]
    assert len(shown) > 100
    assert [term for term in shown if not _readable(term)] == []
    assert all(tag["evidence"] for result in results for tag in result["topics"])


def test_integer_table_finds_what_a_binary_search_finds():
    """The bigram hash table: every key found, absent keys -1, keys whose home slot was taken too."""
    from worker.engine.topics import IntegerTable

    rng = np.random.default_rng(3)
    keys = np.unique(rng.integers(0, 10**8, 5000))
    values = rng.integers(0, 50_000, len(keys))
    table = IntegerTable(keys, values)
    assert table._overflow  # some keys share a home slot: the overflow is exercised
    queries = np.concatenate([keys, rng.integers(0, 10**8, 5000), [0, 10**8 - 1]])
    slot = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    assert table.find(queries).tolist() == np.where(keys[slot] == queries, values[slot], -1).tolist()
    assert IntegerTable(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)).find(queries).tolist() == [-1] * len(queries)


def test_a_second_fit_forgets_what_was_derived_from_the_first():
    """Lookups worked out on first use (bigram table, per-word tables, evidence terms, window
    weights) belong to one fit: refitting the same object must not read the old ones."""
    from worker.engine.topics import TopicClassifier

    first = ["missile deal signed", "sanctions on banks imposed", "front line shelling reported"] * 4
    second = ["tank contract signed", "export ban on oil imposed", "troops advance near the river"] * 4
    Y = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]] * 4)
    model = TopicClassifier(min_df=1, max_df=1.0).fit(first, Y, ["a", "b", "c"])
    model.scores(model.vectorize(first))
    model.evidence(model.transform(first), 0, 0)
    refit = model.fit(second, Y, ["a", "b", "c"])
    fresh = TopicClassifier(min_df=1, max_df=1.0).fit(second, Y, ["a", "b", "c"])
    assert np.array_equal(refit.predict_proba(second), fresh.predict_proba(second))
    assert refit.evidence(refit.transform(second), 0, 0) == fresh.evidence(fresh.transform(second), 0, 0)
