"""An archive export's editor decisions as partial training labels (`autotag train --archive`).

Only what an editor decided is a label: a topic or country an editor set ("by": "editor") is a
positive, one an editor removed (`removed_by_editor`) a negative. Everything else is unknown,
and training leaves it out of that label's fit, threshold search and figures:

- A model tag nobody reviewed (a plain string, or "by": "model") says what an older model
  thought, not what is true; learning from it would teach the model its own mistakes.
- A tag nobody mentioned is unknown too, even on an article where an editor decided other
  tags. The export carries no "reviewed" marker: an editor who added `sanctions` may never
  have considered `arms-deals`, and a CMS screen shows the tags the model gave, not the ones it
  left out. Reading that silence as "no" would teach the model that every topic editors did
  not think to add is absent, pulling recall down. (Were a CMS to export a marker that an editor
  reviewed an article's whole tag set, silence there could become a negative.)
- The same holds for countries: an editor-set country is a must-tag, an editor-removed one a
  must-not, and the article's other mentioned countries weigh nothing (as `regions_optional`
  do in the corpus).

Topics outside the corpus' taxonomy (the corpus defines the labels) are ignored and counted in
`ignored_topics` for a warning; so are region codes that are not ISO 3166-1 alpha-2. An
article left with no usable decision would add nothing but its words, so it is left out
(`undecided`). An id seen twice keeps its higher revision (without revisions, its later line):
one article has one set of labels, and never sits on both sides of a cross-validation fold.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..errors import InputError
from .archive import ArchiveLine, read_archive
from .decisions import SET
from .tagging import DEFAULT_MAX_BODY_BYTES


@dataclass(frozen=True)
class ReviewedArticle:
    """An archive article and its editors' decisions: tag -> True (set) or False (removed)."""

    id: str | int
    title: str
    body: str
    topics: Mapping[str, bool]
    regions: Mapping[str, bool]


@dataclass
class ReviewedArchive:
    """The articles training uses, the export's provenance, and what was skipped and why."""

    articles: list[ReviewedArticle]
    digest: str  # sha256 over the files' bytes, in the order given
    paths: list[str]
    lines: int = 0  # good lines read
    bad_lines: list[dict] = field(default_factory=list)  # {"file", "line", "id"?, "error"}, as `retag` reports them
    undecided: int = 0  # articles with no usable decision, left out
    replaced: int = 0  # lines dropped because another line of the same article won
    ignored_topics: Counter = field(default_factory=Counter)  # decisions per unknown topic, over every good line
    ignored_regions: Counter = field(default_factory=Counter)

    def decision_counts(self) -> dict:
        """{"topics": {"set": n, "removed": n}, "regions": {...}} over the articles used."""
        counts = {}
        for kind in ("topics", "regions"):
            values = [decided for article in self.articles for decided in getattr(article, kind).values()]
            counts[kind] = {"set": sum(values), "removed": len(values) - sum(values)}
        return counts

    def provenance(self) -> dict:
        """What the bundle's manifest records about the archive it learned from."""
        return {
            "digest": self.digest,
            "files": [Path(p).name for p in self.paths],
            "articles": len(self.articles),
            "decisions": self.decision_counts(),
            "lines": self.lines,
            "bad_lines": len(self.bad_lines),
            "undecided": self.undecided,
            "replaced": self.replaced,
            "ignored_topics": dict(sorted(self.ignored_topics.items())),
            "ignored_regions": dict(sorted(self.ignored_regions.items())),
        }


    def summary(self) -> str:
        """One line: what was read, and what of it training uses."""
        counts = self.decision_counts()
        files = ", ".join(Path(p).name for p in self.paths)
        parts = [f"archive: {len(self.articles)} articles with editor decisions from {self.lines} good lines of {files}",
                 f"topics {counts['topics']['set']} set / {counts['topics']['removed']} removed, "
                 f"regions {counts['regions']['set']} set / {counts['regions']['removed']} removed"]
        if self.bad_lines:
            parts.append(f"{len(self.bad_lines)} bad lines skipped")
        if self.undecided:
            parts.append(f"{self.undecided} without a usable decision left out")
        if self.replaced:
            parts.append(f"{self.replaced} superseded by another line of the same article")
        return "; ".join(parts)

    def warnings(self) -> list[str]:
        """A line per kind of decision training had to ignore, naming what it ignored."""
        lines = []
        if self.ignored_topics:
            named = ", ".join(f"{tag} ({n})" for tag, n in sorted(self.ignored_topics.items()))
            lines.append(f"archive: ignored decisions on topics the corpus does not have (its taxonomy is the corpus'): {named}")
        if self.ignored_regions:
            named = ", ".join(f"{code} ({n})" for code, n in sorted(self.ignored_regions.items()))
            lines.append(f"archive: ignored decisions on region codes that are not ISO 3166-1 alpha-2: {named}")
        return lines


def load_reviewed(paths: list[str | Path], labels: list[str], *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> ReviewedArchive:
    """Read every export (bad lines recorded and skipped) and keep each article's usable decisions."""
    digest = hashlib.sha256()
    archive = ReviewedArchive([], "", [str(p) for p in paths])
    chosen: dict[str | int, tuple[tuple, ReviewedArticle | None]] = {}
    order = 0
    for path in paths:
        errors: list[dict] = []
        try:
            stream = open(path, "rb")
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from exc
        with stream:
            for line in read_archive(_Hashing(stream, digest), max_body_bytes=max_body_bytes, errors=errors):
                archive.lines += 1
                order += 1
                article = _reviewed(line, set(labels), archive)
                rank = (line.revision if line.revision is not None else -1, order)
                previous = chosen.get(line.article.id)
                if previous is not None:
                    archive.replaced += 1
                    if previous[0] > rank:
                        continue
                chosen[line.article.id] = (rank, article)
        archive.bad_lines += [{"file": str(path), **error} for error in errors]
    archive.articles = [article for _, article in chosen.values() if article is not None]
    archive.undecided = sum(article is None for _, article in chosen.values())
    archive.digest = digest.hexdigest()
    return archive


def _reviewed(line: ArchiveLine, labels: set[str], archive: ReviewedArchive) -> ReviewedArticle | None:
    decisions = line.decisions()
    topics, regions = {}, {}
    for tag, decision in decisions.topics.items():
        if tag in labels:
            topics[tag] = decision == SET
        else:
            archive.ignored_topics[tag] += 1
    for code, decision in decisions.regions.items():
        if len(code) == 2 and code.isascii() and code.isupper():
            regions[code] = decision == SET
        else:
            archive.ignored_regions[code] += 1
    if not topics and not regions:
        return None
    return ReviewedArticle(line.article.id, line.article.title, line.article.body, topics, regions)


class _Hashing:
    """A binary stream that feeds every byte read through it into a digest: the digest is of
    exactly the bytes training read."""

    def __init__(self, stream, digest):
        self._stream = stream
        self._digest = digest

    def readline(self, limit: int = -1) -> bytes:
        data = self._stream.readline(limit)
        self._digest.update(data)
        return data
