"""Training on an archive export learns only what editors decided: set tags are positives,
removed tags negatives, everything else (unreviewed model tags, silence) is left out."""

import hashlib
import json

import numpy as np
import pytest

from worker.engine.corpus import Corpus, LabeledArticle
from worker.engine.gazetteer import CountryMatcher, build_alias_table
from worker.engine.regions import find_candidates
from worker.engine.reviewed import load_reviewed
from worker.engine.tagging import Tagger
from worker.engine.text import clean_article
from worker.engine.training import TrainingOptions, train
from worker.engine.trainset import region_rows, topic_rows
from worker.errors import InputError, TrainingError

from .conftest import EDITOR_ARCHIVE, write_jsonl

LABELS = ["arms-deals", "sanctions", "ukraine-front"]
OPTIONS = TrainingOptions(folds=3, salience_iterations=60)
# the kind of story editors removed `sanctions` from every time in the export, in new words
SPORTS_SANCTIONS = (
    "The football association imposed sanctions on the club on Friday after its supporters invaded the pitch, "
    "ordering three home games without fans and a fine. The disciplinary panel said the sanctions were meant as "
    "a warning to every club in the league."
)
STATE_SANCTIONS = (
    "The Treasury imposed sanctions on ten companies and froze their assets, widening export controls and "
    "banning travel for officials accused of evading earlier sanctions."
)


@pytest.fixture(scope="module")
def archive_bundle(tmp_path_factory, tiny_corpus):
    out = tmp_path_factory.mktemp("archive") / "bundle"
    train(tiny_corpus, out, OPTIONS, load_reviewed([EDITOR_ARCHIVE], LABELS))
    return out


def corpus_size(path) -> int:
    """Articles in the tiny corpus (a few from each shipped corpus file: it grows with the corpus)."""
    return len(path.read_text(encoding="utf-8").splitlines())


def test_the_export_is_read_with_bad_lines_reported_and_skipped():
    archive = load_reviewed([EDITOR_ARCHIVE], LABELS)
    assert [(e["line"], e.get("id")) for e in archive.bad_lines] == [(13, None), (22, "arc-bad-02"), (30, "arc-bad-03")]
    assert all(e["file"] == str(EDITOR_ARCHIVE) for e in archive.bad_lines)
    assert archive.lines == 27 and archive.replaced == 1
    assert archive.undecided == 2  # the two articles with model tags only
    assert len(archive.articles) == 24
    assert dict(archive.ignored_topics) == {"climate": 2}
    assert archive.decision_counts() == {"topics": {"set": 12, "removed": 11}, "regions": {"set": 34, "removed": 3}}
    latest = next(a for a in archive.articles if a.id == "arc-sp-01")
    assert "rejected the club's request" in latest.body  # revision 2 superseded revision 1


def test_a_higher_revision_wins_wherever_it_stands(tmp_path):
    newer = {"id": "x", "revision": 5, "title": "t", "body": "Officials met.", "current_tags": {"topics": [{"tag": "sanctions", "by": "editor"}]}}
    older = dict(newer, revision=4, current_tags={"removed_by_editor": {"topics": ["sanctions"]}})
    archive = load_reviewed([write_jsonl(tmp_path / "a.jsonl", [newer, older])], LABELS)
    assert [dict(a.topics) for a in archive.articles] == [{"sanctions": True}]
    with pytest.raises(InputError, match="cannot read"):
        load_reviewed([tmp_path / "absent.jsonl"], LABELS)


def test_only_editor_decisions_are_known_labels():
    archive = load_reviewed([EDITOR_ARCHIVE], LABELS)
    corpus = Corpus((LabeledArticle("c", "t", "Sanctions on oil.", ("sanctions",), ("RU",)),), "", ())
    articles = {a.id: a for a in archive.articles}
    chosen = [articles["arc-sn-02"], articles["arc-sp-03"], articles["arc-ar-04"]]
    rows = topic_rows(corpus, [clean_article(a.title, a.body) for a in corpus.articles], chosen,
                      [clean_article(a.title, a.body) for a in chosen], LABELS)
    assert rows.in_archive.tolist() == [False, True, True, True]
    # arc-sn-02: sanctions set by an editor, arms-deals an unreviewed model tag, ukraine-front never mentioned
    assert rows.known[1].tolist() == [False, True, False] and rows.Y[1, 1] == 1
    assert rows.known[2].tolist() == [False, True, False] and rows.Y[2, 1] == 0  # sanctions removed
    assert rows.known[3].tolist() == [True, False, False] and rows.Y[3, 0] == 1  # arms-deals set; ukraine-front a model tag
    assert rows.known[0].all()  # corpus rows keep every label


def test_editor_set_countries_are_must_tags_removed_ones_negatives_the_rest_weigh_nothing():
    archive = load_reviewed([EDITOR_ARCHIVE], LABELS)
    articles = {a.id: a for a in archive.articles}
    chosen = [articles["arc-sn-02"], articles["arc-ar-04"]]  # US, KP set, CN a model tag, HK named / PL, KR set, UA removed
    corpus = Corpus((LabeledArticle("c", "t", "Russian troops shelled Kharkiv in Ukraine.", (), ("UA",), ("RU",)),), "", ())
    matcher = CountryMatcher(build_alias_table())
    rows = region_rows(corpus, [clean_article(a.title, a.body) for a in corpus.articles], chosen,
                       [clean_article(a.title, a.body) for a in chosen], matcher)
    codes = [c.code for a in list(corpus.articles) + chosen for c in find_candidates(clean_article(a.title, a.body), matcher)[0]]
    labeled = {(code, bool(archive_row)): (int(label), float(weight))
               for code, archive_row, label, weight in zip(codes, rows.in_archive, rows.y, rows.weights)}
    assert labeled[("US", True)] == (1, 1.0) and labeled[("KP", True)] == (1, 1.0)
    assert labeled[("CN", True)][1] == 0.0 and labeled[("HK", True)][1] == 0.0
    assert labeled[("PL", True)] == (1, 1.0) and labeled[("UA", True)] == (0, 1.0)
    assert labeled[("UA", False)] == (1, 1.0) and labeled[("RU", False)][1] == 0.0  # the corpus keeps its own rules


def test_a_tag_editors_removed_scores_lower_after_training_on_their_decisions(archive_bundle, tiny_tagger):
    with_archive = Tagger.load(archive_bundle)
    before = tiny_tagger.topic_model.predict_proba([SPORTS_SANCTIONS, STATE_SANCTIONS])[:, 1]
    after = with_archive.topic_model.predict_proba([SPORTS_SANCTIONS, STATE_SANCTIONS])[:, 1]
    assert after[0] < before[0] / 2, (before, after)
    assert after[0] < with_archive.manifest["thresholds"]["topics"]["sanctions"]["review"]
    assert after[1] > with_archive.manifest["thresholds"]["topics"]["sanctions"]["accept"]  # real sanctions stay sanctions


def test_unreviewed_model_tags_change_nothing(archive_bundle, tiny_corpus, tmp_path):
    """The same export with every model tag deleted trains the same models: were model tags read
    as positives or as negatives, the two trainings would differ."""
    lines = []
    for line in EDITOR_ARCHIVE.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            lines.append(line)
            continue
        tags = record.get("current_tags") or {}
        for kind in ("topics", "regions"):
            tags[kind] = [t for t in tags.get(kind, []) if isinstance(t, dict) and t.get("by") == "editor"]
        lines.append(json.dumps(record))
    stripped = tmp_path / "stripped.jsonl"
    stripped.write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = train(tiny_corpus, tmp_path / "bundle", OPTIONS, load_reviewed([stripped], LABELS))
    original = Tagger.load(archive_bundle)
    assert manifest["thresholds"] == original.manifest["thresholds"]
    assert manifest["metrics"] == original.manifest["metrics"]
    texts = [SPORTS_SANCTIONS, STATE_SANCTIONS]
    assert np.array_equal(Tagger.load(tmp_path / "bundle").topic_model.predict_proba(texts), original.topic_model.predict_proba(texts))


def test_archive_figures_count_only_the_rows_an_editor_decided(archive_bundle, tiny_corpus):
    """Silence is not a negative: a topic's archive rows are its decisions, not every archive article."""
    comparison = Tagger.load(archive_bundle).manifest["metrics"]["comparison"]
    decided = {"arms-deals": (4, 4), "sanctions": (16, 5), "ukraine-front": (3, 3)}  # (decisions, of which set)
    for label, (rows, positives) in decided.items():
        for regime in ("corpus_only", "with_archive"):
            figures = comparison["topics"][label][regime]["archive_rows"]
            assert (figures["rows"], figures["positives"]) == (rows, positives), (label, regime)
            assert comparison["topics"][label][regime]["corpus_rows"]["rows"] == corpus_size(tiny_corpus)
    # the corpus-only column on corpus rows is what the corpus alone ships
    alone = comparison["topics"]["sanctions"]["corpus_only"]
    assert alone["archive_rows"]["fp"] >= comparison["topics"]["sanctions"]["with_archive"]["archive_rows"]["fp"]
    assert comparison["regions"]["with_archive"]["archive_rows"]["articles"] == 24


def test_the_manifest_records_the_archive_it_learned_from(archive_bundle, tiny_bundle, tiny_corpus):
    manifest = Tagger.load(archive_bundle).manifest
    provenance = manifest["archive"]
    assert provenance["digest"] == hashlib.sha256(EDITOR_ARCHIVE.read_bytes()).hexdigest()
    assert provenance["files"] == ["editor_archive.jsonl"]
    assert (provenance["articles"], provenance["lines"], provenance["bad_lines"], provenance["undecided"]) == (24, 27, 3, 2)
    assert provenance["decisions"]["topics"] == {"set": 12, "removed": 11}
    assert provenance["ignored_topics"] == {"climate": 2}
    assert manifest["corpus"]["articles"] == corpus_size(tiny_corpus)
    without = Tagger.load(tiny_bundle).manifest
    assert "archive" not in without and "comparison" not in without["metrics"]


def test_an_archive_without_a_usable_decision_is_refused(tiny_corpus, tmp_path):
    record = {"id": "a", "title": "t", "body": "Officials met.", "current_tags": {"topics": ["sanctions", {"tag": "climate", "by": "editor"}]}}
    with pytest.raises(TrainingError, match="no editor decision"):
        train(tiny_corpus, tmp_path / "out", OPTIONS, load_reviewed([write_jsonl(tmp_path / "a.jsonl", [record])], LABELS))


def test_an_archive_with_country_decisions_only_leaves_the_topic_model_as_it_was(tiny_corpus, tiny_bundle, tmp_path):
    record = {"id": "r1", "title": "Troops shell Kharkiv", "body": "Russian troops shelled Kharkiv overnight, Ukrainian officials said.",
              "current_tags": {"topics": ["ukraine-front"], "regions": [{"code": "UA", "by": "editor"}], "removed_by_editor": {"regions": ["RU"]}}}
    manifest = train(tiny_corpus, tmp_path / "out", OPTIONS, load_reviewed([write_jsonl(tmp_path / "a.jsonl", [record])], LABELS))
    shipped = Tagger.load(tiny_bundle).manifest
    assert manifest["thresholds"]["topics"] == shipped["thresholds"]["topics"]
    assert Tagger.load(tmp_path / "out").manifest["files"]["topics.joblib"] == shipped["files"]["topics.joblib"]
    assert manifest["metrics"]["comparison"]["regions"]["with_archive"]["archive_rows"]["articles"] == 1
