"""Model bundles: a directory of joblib files plus manifest.json (provenance, thresholds, sha256).

A bundle is written to a sibling temporary directory and renamed into place, so a reader
never sees half a bundle. Loading checks every file's sha256 and the library versions against
the manifest *before* unpickling anything: a modified pickle is refused, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import joblib

from ..errors import BundleError, BundleIntegrityError, BundleVersionError

MANIFEST = "manifest.json"
BUNDLE_FORMAT = 2  # bump whenever the pickled classes change shape
# How closely the running libraries must match the ones that wrote the pickles.
_VERSION_MATCH = {"scikit-learn": 3, "numpy": 2, "scipy": 2, "joblib": 2}


def library_versions() -> dict[str, str]:
    versions = {name: metadata.version(name) for name in _VERSION_MATCH}
    versions["python"] = platform.python_version()
    return versions


def default_bundle_path() -> Path:
    """models/bundle beside the package in a checkout, unless AUTOTAG_MODEL points elsewhere."""
    configured = os.environ.get("AUTOTAG_MODEL")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "models" / "bundle"


def save_bundle(out_dir: str | Path, objects: dict[str, object], json_files: dict[str, object], manifest: dict) -> Path:
    """Write objects (joblib) and json_files, then the manifest with their hashes; swap in atomically."""
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; a bundle is read by other users' workers
        for name, obj in objects.items():
            joblib.dump(obj, staging / name, compress=3)
        for name, data in json_files.items():
            (staging / name).write_text(json.dumps(data, ensure_ascii=False, sort_keys=True), encoding="utf-8")
        files = {path.name: _sha256(path) for path in sorted(staging.iterdir())}
        full_manifest = {
            "format": BUNDLE_FORMAT,
            "model_version": content_version(files, manifest),
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "libraries": library_versions(),
            **manifest,
            "files": files,
        }
        (staging / MANIFEST).write_text(json.dumps(full_manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        for path in staging.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        _swap_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def content_version(files: dict[str, str], manifest: dict) -> str:
    """The model version names the content alone: the files' sha256 and what training put in the
    manifest (labels, thresholds, corpus digest, options, figures). Retraining the same corpus
    with the same options gives the same version; any change, a new one. The training date
    lives in `trained_at`, beside it. (Bundles written before this carry a dated version,
    e.g. 2026.12.04-d1035eab, and `created_at`; they load as they are.)"""
    content = json.dumps({"format": BUNDLE_FORMAT, "files": files, "manifest": manifest}, sort_keys=True, ensure_ascii=False)
    return "m-" + hashlib.sha256(content.encode()).hexdigest()[:12]


def read_manifest(bundle_dir: str | Path) -> dict:
    path = Path(bundle_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BundleError(f"no model bundle at {bundle_dir} ({MANIFEST} missing); run `autotag train`", path=path) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleIntegrityError(f"{path} is not valid JSON: {exc}", path=path) from exc
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleVersionError(f"{path}: bundle format {manifest.get('format')!r}, this version reads {BUNDLE_FORMAT}", path=path)
    return manifest


def verify_bundle(bundle_dir: str | Path) -> dict:
    """Check library versions and every file's sha256; return the manifest. Loads nothing."""
    bundle_dir = Path(bundle_dir)
    manifest = read_manifest(bundle_dir)
    running = library_versions()
    for name, parts in _VERSION_MATCH.items():
        wanted = manifest.get("libraries", {}).get(name, "?")
        if wanted.split(".")[:parts] != running[name].split(".")[:parts]:
            raise BundleVersionError(
                f"{bundle_dir / MANIFEST}: bundle was built with {name} {wanted}, this environment has "
                f"{running[name]}; install {name}=={wanted} or retrain with `autotag train`",
                path=bundle_dir / MANIFEST,
            )
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleIntegrityError(f"{bundle_dir / MANIFEST}: lists no files", path=bundle_dir / MANIFEST)
    for name, expected in files.items():
        path = bundle_dir / name
        if Path(name).name != name:
            raise BundleIntegrityError(f"{bundle_dir / MANIFEST}: file name {name!r} is not plain", path=path)
        if not path.is_file():
            raise BundleIntegrityError(f"{path}: listed in the manifest but missing", path=path)
        if _sha256(path) != expected:
            raise BundleIntegrityError(f"{path}: sha256 does not match the manifest; refusing to load it", path=path)
    return manifest


def load_bundle(bundle_dir: str | Path) -> tuple[dict, dict[str, object]]:
    """(manifest, {file name: loaded object}) for a verified bundle."""
    bundle_dir = Path(bundle_dir)
    manifest = verify_bundle(bundle_dir)
    loaded: dict[str, object] = {}
    for name in manifest["files"]:
        path = bundle_dir / name
        if name.endswith(".joblib"):
            loaded[name] = joblib.load(path)
        elif name.endswith(".json"):
            loaded[name] = json.loads(path.read_text(encoding="utf-8"))
    return manifest, loaded


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _swap_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
        return
    retired = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.rename(target, retired)
    os.rename(staging, target)
    shutil.rmtree(retired, ignore_errors=True)
