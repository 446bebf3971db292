"""A bundle loads only when every file matches its sha256 and the libraries match; a tampered pickle is never unpickled."""

import json
import pickle
import shutil

import pytest

from worker.engine.artifacts import MANIFEST, load_bundle, save_bundle, verify_bundle
from worker.errors import BundleError, BundleIntegrityError, BundleVersionError
from worker.engine.tagging import Tagger


@pytest.fixture
def bundle_copy(tiny_bundle, tmp_path):
    return shutil.copytree(tiny_bundle, tmp_path / "bundle")


class _Booby:
    """Unpickling this writes a marker file: proof that a pickle was loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_manifest_records_provenance(tiny_bundle):
    manifest = verify_bundle(tiny_bundle)
    assert {"model_version", "trained_at", "libraries", "corpus", "labels", "thresholds", "metrics", "files"} <= set(manifest)
    assert set(manifest["files"]) == {"topics.joblib", "salience.joblib", "aliases.json"}
    assert manifest["libraries"]["scikit-learn"]
    assert len(manifest["corpus"]["digest"]) == 64


def test_a_modified_pickle_is_refused_before_it_is_loaded(bundle_copy, tmp_path):
    marker = tmp_path / "unpickled"
    with open(bundle_copy / "topics.joblib", "wb") as handle:
        pickle.dump(_Booby(str(marker)), handle)
    with pytest.raises(BundleIntegrityError, match="topics.joblib"):
        Tagger.load(bundle_copy)
    assert not marker.exists()


def test_a_flipped_byte_is_refused_naming_the_file(bundle_copy):
    path = bundle_copy / "salience.joblib"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="salience.joblib"):
        load_bundle(bundle_copy)


def test_a_manifest_for_other_library_versions_is_refused(bundle_copy):
    manifest = json.loads((bundle_copy / MANIFEST).read_text())
    manifest["libraries"]["scikit-learn"] = "0.24.2"
    (bundle_copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleVersionError, match="scikit-learn 0.24.2"):
        Tagger.load(bundle_copy)


def test_missing_files_and_missing_bundles_are_clear_errors(bundle_copy, tmp_path):
    (bundle_copy / "aliases.json").unlink()
    with pytest.raises(BundleIntegrityError, match="missing"):
        verify_bundle(bundle_copy)
    with pytest.raises(BundleError, match="autotag train"):
        verify_bundle(tmp_path / "nowhere")


def test_saving_over_a_bundle_replaces_it_whole(tmp_path):
    target = tmp_path / "b"
    save_bundle(target, {"x.joblib": [1]}, {"a.json": {"v": 1}}, {"model_version": "one"})
    save_bundle(target, {"x.joblib": [2]}, {"a.json": {"v": 2}}, {"model_version": "two"})
    manifest, loaded = load_bundle(target)
    assert manifest["model_version"] == "two" and loaded["x.joblib"] == [2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]  # no staging or retired directories left
