"""The archive export format: an article's fields plus the tags the CMS holds now, with the
editors' marks. Re-tagging reads it (and keeps every editor decision); training reads it (and
learns from them).

    {"id": "a-42", "revision": 3, "title": "...", "body": "...",
     "current_tags": {"topics": ["sanctions", {"tag": "arms-deals", "by": "editor"}],
                      "regions": [{"code": "RU", "by": "model"}],
                      "removed_by_editor": {"topics": ["ukraine-front"], "regions": ["UA"]}}}

A plain string, or an object without "by", is a tag the model gave and no editor reviewed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Iterator

from ..errors import InputError
from ..jsonl import read_records
from .decisions import KINDS, REMOVED, SET, Decisions
from .tagging import ArticleInput, parse_article


@dataclass
class ArchiveLine:
    line_no: int
    article: ArticleInput
    revision: int | None
    current: dict  # {"topics": {tag: by}, "regions": {code: by}}: what the CMS holds now, and who set it
    removed_by_editor: dict  # {"topics": set, "regions": set}

    def decisions(self) -> Decisions:
        """The editors' marks: tags they set, tags they removed."""
        chosen = {}
        for kind, _ in KINDS:
            marks = {value: SET for value, by in self.current[kind].items() if by == "editor"}
            marks.update({value: REMOVED for value in self.removed_by_editor[kind]})
            chosen[kind] = marks
        return Decisions(chosen["topics"], chosen["regions"])


def read_archive(stream: BinaryIO, *, max_body_bytes: int, errors: list) -> Iterator[ArchiveLine]:
    """Parsed lines, one at a time (a million-line file never sits in memory); bad lines are
    appended to `errors` as {"line", "id"?, "error"} and skipped."""
    for line_no, record, problem in read_records(stream, max_bytes=max_body_bytes + 256 * 1024):
        try:
            if problem:
                raise problem
            article = parse_article(record, max_body_bytes=max_body_bytes, line_no=line_no)
            revision = record.get("revision")
            if revision is not None and (isinstance(revision, bool) or not isinstance(revision, int) or revision < 0):
                raise InputError("field 'revision' must be a non-negative integer", field="revision", article_id=article.id, line_no=line_no)
            current, removed = _current_tags(record.get("current_tags"), article.id, line_no)
            yield ArchiveLine(line_no, article, revision, current, removed)
        except InputError as exc:
            entry = {"line": line_no, "error": str(exc)}
            if exc.article_id is not None:
                entry["id"] = exc.article_id
            errors.append(entry)


def _current_tags(raw, article_id, line_no) -> tuple[dict, dict]:
    current = {"topics": {}, "regions": {}}
    removed = {"topics": set(), "regions": set()}
    if raw is None:
        return current, removed
    if not isinstance(raw, dict):
        raise InputError("field 'current_tags' must be an object", field="current_tags", article_id=article_id, line_no=line_no)
    for kind, key in KINDS:
        for entry in raw.get(kind) or []:
            if isinstance(entry, str):
                current[kind][entry] = "model"
            elif isinstance(entry, dict) and isinstance(entry.get(key), str):
                by = entry.get("by", "model")
                if by not in ("model", "editor"):
                    raise InputError(f"current_tags.{kind}: 'by' must be 'model' or 'editor'", field=f"current_tags.{kind}", article_id=article_id, line_no=line_no)
                current[kind][entry[key]] = by
            else:
                raise InputError(f"current_tags.{kind} entries must be strings or objects with {key!r}", field=f"current_tags.{kind}",
                                 article_id=article_id, line_no=line_no)
        editor_removed = (raw.get("removed_by_editor") or {}).get(kind) or []
        if not isinstance(editor_removed, list) or not all(isinstance(v, str) for v in editor_removed):
            raise InputError(f"current_tags.removed_by_editor.{kind} must be a list of strings", field="current_tags.removed_by_editor",
                             article_id=article_id, line_no=line_no)
        removed[kind] = set(editor_removed)
    return current, removed
