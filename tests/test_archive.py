"""Every shape `current_tags` may take in an export line: the documented ones parse, any other is
one error naming the line, the id and the field, and the lines after it still parse."""

import io
import json

import pytest

from worker.engine.archive import read_archive

ARTICLE = {"title": "Cold front", "body": "A cold front crosses Boston."}


def parse(*current_tags_values):
    lines = [json.dumps({"id": f"a{i}", **ARTICLE, "current_tags": value}) for i, value in enumerate(current_tags_values)]
    lines.append(json.dumps({"id": "after", **ARTICLE}))
    errors: list = []
    parsed = list(read_archive(io.BytesIO("\n".join(lines).encode()), max_body_bytes=1 << 20, errors=errors))
    return parsed, errors


def test_the_documented_shapes_parse():
    (line, after), errors = parse({"topics": ["sanctions", {"tag": "arms-deals", "by": "editor"}, {"tag": "x"}],
                                   "regions": [{"code": "RU", "by": "model"}, "PL"],
                                   "removed_by_editor": {"topics": ["ukraine-front"], "regions": ["UA"]}})
    assert errors == []
    assert line.current == {"topics": {"sanctions": "model", "arms-deals": "editor", "x": "model"}, "regions": {"RU": "model", "PL": "model"}}
    assert line.removed_by_editor == {"topics": {"ukraine-front"}, "regions": {"UA"}}
    (empty, _), errors = parse({"topics": None, "regions": [], "removed_by_editor": {"topics": None}})
    assert errors == [] and empty.current == {"topics": {}, "regions": {}}


@pytest.mark.parametrize("current_tags, field", [
    ({"removed_by_editor": ["US"]}, "current_tags.removed_by_editor"),
    ({"removed_by_editor": "US"}, "current_tags.removed_by_editor"),
    ({"removed_by_editor": {"regions": "US"}}, "current_tags.removed_by_editor.regions"),
    ({"removed_by_editor": {"regions": ["US", 5]}}, "current_tags.removed_by_editor.regions[1]"),
    ({"removed_by_editor": {"region": ["US"]}}, "current_tags.removed_by_editor"),
    ({"regions": 5}, "current_tags.regions"),
    ({"regions": {"US": "model"}}, "current_tags.regions"),
    ({"topics": "sanctions"}, "current_tags.topics"),
    ({"topics": ["sanctions", ""]}, "current_tags.topics[1]"),
    ({"topics": [["sanctions"]]}, "current_tags.topics[0]"),
    ({"topics": [{"code": "sanctions"}]}, "current_tags.topics[0].tag"),
    ({"topics": [{"tag": "sanctions", "by": "robot"}]}, "current_tags.topics[0].by"),
    ({"regions": [{"code": 5}]}, "current_tags.regions[0].code"),
    ({"topic": ["sanctions"]}, "current_tags"),
    (["sanctions"], "current_tags"),
    ("sanctions", "current_tags"),
])
def test_a_malformed_shape_is_one_error_naming_line_id_and_field(current_tags, field):
    parsed, errors = parse(current_tags)
    assert [line.article.id for line in parsed] == ["after"]  # the bad line is skipped, the next one still read
    (error,) = errors
    assert error["line"] == 1 and error["id"] == "a0" and error["field"] == field
    assert field in error["error"]
