"""`autotag evaluate`'s input: labeled articles, checked before anything is scored.

A line that cannot be read is named with its line number and id; a file with no labels at all,
and labels the model cannot give (a topic not among its labels, a region that is not an ISO
3166-1 alpha-2 code the gazetteer knows), are refused: scoring them would print figures that
look real and mean nothing."""

from __future__ import annotations

from collections import defaultdict
from typing import BinaryIO

from ..errors import InputError
from ..jsonl import read_records
from .evaluation import GoldArticle
from .tagging import ArticleInput, parse_article

LABEL_FIELDS = ("topics", "regions", "regions_optional")
MAX_LINE_BYTES = 64 * 1024 * 1024


def read_gold(stream: BinaryIO, source: str, labels: list[str], known_regions: set[str]) -> tuple[list[GoldArticle], list[ArticleInput]]:
    """(gold labels, articles to tag), in file order; InputError naming the line, id and field
    of the first bad line, or every unknown label with the lines that use it."""
    gold, articles = [], []
    labeled = False
    unknown: dict[tuple[str, str], list[int]] = defaultdict(list)
    for line_no, record, problem in read_records(stream, max_bytes=MAX_LINE_BYTES):
        try:
            if problem:
                raise problem
            article = parse_article(record, max_body_bytes=MAX_LINE_BYTES, line_no=line_no)
            values = {name: _label_list(record, name, article.id, line_no) for name in LABEL_FIELDS}
        except InputError as exc:
            where = f"line {line_no}" + (f" (id {exc.article_id!r})" if exc.article_id is not None else "")
            raise InputError(f"{source}: {where}: {exc}", field=exc.field, article_id=exc.article_id, line_no=line_no) from exc
        labeled = labeled or "topics" in record or "regions" in record
        for topic in values["topics"]:
            if topic not in labels:
                unknown[("topic", topic)].append(line_no)
        for name in ("regions", "regions_optional"):
            for code in values[name]:
                if code not in known_regions:
                    unknown[("region", code)].append(line_no)
        articles.append(article)
        gold.append(GoldArticle(id=str(article.id), topics=set(values["topics"]), regions=set(values["regions"]),
                                regions_optional=set(values["regions_optional"]), story=record.get("story")))
    if not labeled:
        raise InputError(f"{source} holds no labels: no line has 'topics' or 'regions'; evaluate needs labeled articles "
                         "(the training corpus' format: topics, regions, regions_optional)")
    if unknown:
        named = "; ".join(f"{kind} {value!r} ({_lines(lines)})" for (kind, value), lines in sorted(unknown.items()))
        raise InputError(f"{source}: unknown labels: {named}. The model's topics: {', '.join(labels)}; regions are ISO 3166-1 "
                         "alpha-2 codes (GB, not UK)")
    return gold, articles


def _label_list(record: dict, name: str, article_id, line_no: int) -> list[str]:
    value = record.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InputError(f"field {name!r} must be a list of strings", field=name, article_id=article_id, line_no=line_no)
    return value


def _lines(numbers: list[int]) -> str:
    shown = ", ".join(map(str, numbers[:5]))
    return f"line {shown}" if len(numbers) == 1 else f"lines {shown}" + (f" and {len(numbers) - 5} more" if len(numbers) > 5 else "")
