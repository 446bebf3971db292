"""Shared fixtures: a tiny corpus drawn from the shipped one, and a bundle trained on it for real."""

import json
from pathlib import Path

import pytest

from worker.engine.tagging import Tagger
from worker.engine.training import TrainingOptions, train

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
SEEDS = sorted((SHARED / "seeds").glob("*.txt"))
EDITOR_ARCHIVE = ROOT / "tests" / "data" / "editor_archive.jsonl"  # an export written for the tests
PER_FILE = 14  # articles taken from each corpus file: ~110 in all, every label and hard negatives


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "tiny.jsonl"
    with open(path, "w", encoding="utf-8") as out:
        for file in sorted((ROOT / "models" / "corpus").glob("*.jsonl")):
            for line in file.read_text(encoding="utf-8").splitlines()[:PER_FILE]:
                out.write(line + "\n")
    return path


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory, tiny_corpus) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    train(tiny_corpus, out, TrainingOptions(folds=3, salience_iterations=60))
    return out


@pytest.fixture(scope="session")
def tiny_tagger(tiny_bundle) -> Tagger:
    return Tagger.load(tiny_bundle)


@pytest.fixture(scope="session")
def shipped_tagger() -> Tagger:
    return Tagger.load(ROOT / "models" / "bundle")


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path
