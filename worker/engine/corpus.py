"""The training-corpus format: JSONL articles with topic and region labels (see README).

A corpus is one `.jsonl` file or a directory of them (read in name order). Each line:
    {"id": str, "title": str, "body": str (HTML or text), "topics": [str, ...],
     "regions": [ISO alpha-2, ...], "regions_optional": [ISO alpha-2, ...]}
Other keys (note, outlet_style, debris) are kept but not used. The label set is whatever the
topics lists hold, so a newsroom trains its own taxonomy by writing its own corpus.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import CorpusError

_REQUIRED = {"id": str, "title": str, "body": str, "topics": list}
_OPTIONAL_LISTS = ("regions", "regions_optional")


@dataclass(frozen=True)
class LabeledArticle:
    id: str
    title: str
    body: str
    topics: tuple[str, ...]
    regions: tuple[str, ...] | None  # None: the record carries no region labels
    regions_optional: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Corpus:
    articles: tuple[LabeledArticle, ...]
    digest: str  # sha256 over the files' bytes, in read order
    paths: tuple[str, ...]

    @property
    def labels(self) -> list[str]:
        return sorted({topic for article in self.articles for topic in article.topics})


def corpus_files(path: str | Path) -> list[Path]:
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.jsonl") if p.is_file())
        if not files:
            raise CorpusError("directory holds no .jsonl files", path=path)
        return files
    if not path.is_file():
        raise CorpusError("no such file or directory", path=path)
    return [path]


def load_corpus(path: str | Path) -> Corpus:
    """Read and validate every record; the first malformed line stops with its file and line."""
    files = corpus_files(path)
    digest = hashlib.sha256()
    articles: list[LabeledArticle] = []
    seen_ids: dict[str, str] = {}
    for file in files:
        raw = file.read_bytes()
        digest.update(raw)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CorpusError(f"not UTF-8 ({exc.reason} at byte {exc.start})", path=file) from exc
        for line_no, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            article = parse_record(line, path=file, line_no=line_no)
            if article.id in seen_ids:
                raise CorpusError(f"duplicate id {article.id!r} (first in {seen_ids[article.id]})", path=file, line_no=line_no)
            seen_ids[article.id] = f"{file.name}:{line_no}"
            articles.append(article)
    if not articles:
        raise CorpusError("corpus holds no articles", path=path)
    return Corpus(tuple(articles), digest.hexdigest(), tuple(str(f) for f in files))


def parse_record(line: str, *, path=None, line_no=None) -> LabeledArticle:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise CorpusError(f"invalid JSON: {exc.msg} at column {exc.colno}", path=path, line_no=line_no) from exc
    if not isinstance(record, dict):
        raise CorpusError("a record must be a JSON object", path=path, line_no=line_no)
    for key, kind in _REQUIRED.items():
        if not isinstance(record.get(key), kind):
            raise CorpusError(f"field {key!r} is missing or not a {kind.__name__}", path=path, line_no=line_no)
    lists = {}
    for key in ("topics", *_OPTIONAL_LISTS):
        value = record.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            raise CorpusError(f"field {key!r} must be a list of non-empty strings", path=path, line_no=line_no)
        lists[key] = tuple(value)
    for code in lists.get("regions", ()) + lists.get("regions_optional", ()):
        if len(code) != 2 or not code.isupper():
            raise CorpusError(f"region {code!r} is not an ISO 3166-1 alpha-2 code", path=path, line_no=line_no)
    return LabeledArticle(
        id=record["id"],
        title=record["title"],
        body=record["body"],
        topics=lists["topics"],
        regions=lists.get("regions"),
        regions_optional=lists.get("regions_optional", ()),
    )
