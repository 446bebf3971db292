"""Training is deterministic, and a broken corpus stops with the file and line that broke it."""

import json
from datetime import datetime, timezone

import numpy as np
import pytest

from worker.engine.corpus import load_corpus
from worker.errors import CorpusError, TrainingError
from worker.engine.tagging import ArticleInput, Tagger
from worker.engine.training import TrainingOptions, choose_thresholds, train

from .conftest import write_jsonl


def test_training_twice_gives_the_same_model(tiny_corpus, tiny_bundle, tmp_path):
    again = tmp_path / "again"
    train(tiny_corpus, again, TrainingOptions(folds=3, salience_iterations=60))
    first, second = Tagger.load(tiny_bundle), Tagger.load(again)
    assert first.manifest["thresholds"] == second.manifest["thresholds"]
    assert first.manifest["metrics"] == second.manifest["metrics"]
    articles = [ArticleInput(a.id, a.title, a.body) for a in load_corpus(tiny_corpus).articles[:20]]
    assert first.tag_many(articles) == second.tag_many(articles)


def test_the_model_version_names_the_content_not_the_training_date(tiny_corpus, tiny_bundle, tmp_path):
    """Retraining an identical model gives the same version; the date is kept apart, in trained_at."""
    again = tmp_path / "again"
    train(tiny_corpus, again, TrainingOptions(folds=3, salience_iterations=60))
    first, second = json.loads((tiny_bundle / "manifest.json").read_text()), json.loads((again / "manifest.json").read_text())
    today = datetime.now(timezone.utc).strftime("%Y.%m.%d")
    assert today not in first["model_version"]  # a retraining tomorrow would otherwise be a new version
    assert first["model_version"] == second["model_version"]
    assert datetime.fromisoformat(first["trained_at"]) <= datetime.fromisoformat(second["trained_at"])
    other = tmp_path / "other-options"
    train(tiny_corpus, other, TrainingOptions(folds=3, salience_iterations=40))
    assert json.loads((other / "manifest.json").read_text())["model_version"] != first["model_version"]


def test_a_bundle_with_an_old_style_version_still_loads(tiny_bundle, tmp_path):
    import shutil

    old = shutil.copytree(tiny_bundle, tmp_path / "old")
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["model_version"] = "2026.12.04-d1035eab"
    manifest["created_at"] = manifest.pop("trained_at")
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert Tagger.load(old).model_version == "2026.12.04-d1035eab"


def test_thresholds_come_from_scores_not_defaults():
    scores = np.array([0.1, 0.2, 0.35, 0.6, 0.7, 0.9])
    truth = np.array([0, 0, 1, 1, 1, 1])
    accept, review, metrics = choose_thresholds(scores, truth)
    assert 0.2 < accept <= 0.35 and review <= accept
    assert metrics["f1"] == 1.0


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "invalid JSON"),
        ('{"id": "a", "title": "t", "topics": []}', "'body'"),
        ('{"id": "a", "title": "t", "body": "b", "topics": "sanctions"}', "'topics'"),
        ('{"id": "a", "title": "t", "body": "b", "topics": [], "regions": ["Russia"]}', "ISO 3166-1"),
    ],
)
def test_malformed_corpus_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "ok", "title": "t", "body": "b", "topics": []}\n' + line + "\n")
    with pytest.raises(CorpusError, match=message) as raised:
        load_corpus(path)
    assert "c.jsonl:2" in str(raised.value)


def test_duplicate_ids_and_empty_corpora_are_refused(tmp_path):
    record = {"id": "a", "title": "t", "body": "b", "topics": []}
    with pytest.raises(CorpusError, match="duplicate id"):
        load_corpus(write_jsonl(tmp_path / "d.jsonl", [record, record]))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusError, match="no .jsonl"):
        load_corpus(tmp_path / "empty")


def test_a_label_with_too_few_examples_cannot_train(tmp_path, tiny_corpus):
    records = [json.loads(line) for line in tiny_corpus.read_text().splitlines()]
    records[0]["topics"] = ["rare-label"]
    with pytest.raises(TrainingError, match="rare-label"):
        train(write_jsonl(tmp_path / "c.jsonl", records), tmp_path / "out", TrainingOptions(folds=3))


def test_a_newsroom_taxonomy_trains_from_its_own_labels(tmp_path, tiny_corpus):
    records = [json.loads(line) for line in tiny_corpus.read_text().splitlines()]
    for record in records:
        record["topics"] = ["war-and-weapons"] if {"arms-deals", "ukraine-front"} & set(record["topics"]) else []
    manifest = train(write_jsonl(tmp_path / "c.jsonl", records), tmp_path / "out", TrainingOptions(folds=3, salience_iterations=30))
    assert manifest["labels"] == ["war-and-weapons"]
    assert Tagger.load(tmp_path / "out").labels == ["war-and-weapons"]
