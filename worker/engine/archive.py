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
    appended to `errors` as {"line", "id"?, "field"?, "error"} and skipped."""
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
            if exc.field:
                entry["field"] = exc.field
            errors.append(entry)


CURRENT_TAGS_KEYS = ("topics", "regions", "removed_by_editor")


def _current_tags(raw, article_id, line_no) -> tuple[dict, dict]:
    """`current_tags` checked shape by shape: a line that breaks the format is an InputError
    naming the field (a string where a list belongs must not become one-letter tags)."""
    current = {"topics": {}, "regions": {}}
    removed = {"topics": set(), "regions": set()}
    if raw is None:
        return current, removed

    def refuse(field: str, message: str):
        return InputError(f"field '{field}' {message}", field=field, article_id=article_id, line_no=line_no)

    if not isinstance(raw, dict):
        raise refuse("current_tags", "must be an object with topics, regions and removed_by_editor")
    unknown = sorted(set(raw) - set(CURRENT_TAGS_KEYS))
    if unknown:
        raise refuse("current_tags", f"has unknown key(s) {', '.join(map(repr, unknown))} (known: {', '.join(CURRENT_TAGS_KEYS)})")
    editor_removed_all = raw.get("removed_by_editor")
    if editor_removed_all is None:
        editor_removed_all = {}
    if not isinstance(editor_removed_all, dict):
        raise refuse("current_tags.removed_by_editor", 'must be an object like {"topics": [...], "regions": [...]}')
    unknown = sorted(set(editor_removed_all) - {kind for kind, _ in KINDS})
    if unknown:
        raise refuse("current_tags.removed_by_editor", f"has unknown key(s) {', '.join(map(repr, unknown))} (known: topics, regions)")
    for kind, key in KINDS:
        field = f"current_tags.{kind}"
        entries = raw.get(kind)
        if entries is None:
            entries = []
        if not isinstance(entries, list):
            raise refuse(field, f"must be a list of tags, not {_json_type(entries)}")
        for position, entry in enumerate(entries):
            if isinstance(entry, dict):
                value, by = entry.get(key), entry.get("by", "model")
                if not _is_tag(value):
                    raise refuse(f"{field}[{position}].{key}", "must be a non-empty string")
                if by not in ("model", "editor"):
                    raise refuse(f"{field}[{position}].by", "must be 'model' or 'editor'")
            elif _is_tag(entry):
                value, by = entry, "model"
            else:
                raise refuse(f"{field}[{position}]", f"must be a non-empty string or an object with {key!r}, not {_json_type(entry)}")
            current[kind][value] = by
        field = f"current_tags.removed_by_editor.{kind}"
        editor_removed = editor_removed_all.get(kind)
        if editor_removed is None:
            editor_removed = []
        if not isinstance(editor_removed, list):
            raise refuse(field, f"must be a list of strings, not {_json_type(editor_removed)}")
        for position, value in enumerate(editor_removed):
            if not _is_tag(value):
                raise refuse(f"{field}[{position}]", f"must be a non-empty string, not {_json_type(value)}")
        removed[kind] = set(editor_removed)
    return current, removed


def _is_tag(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _json_type(value) -> str:
    """How the export wrote a value, in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"a string ({value[:40]!r})"
    if isinstance(value, list):
        return "a list"
    return "an object"
