"""Editors' decisions on an article's tags, and the one rule that applies them to a tagging result.

A tag an editor removed is never given again: not among the tags, not among the suggestions. A
tag an editor set (added, or accepted from the model) is always given, marked "by": "editor";
every other tag is the model's ("by": "model"). The publish pipeline applies the decisions the
service remembers from `/v1/feedback`, a re-tag applies those and the export's `current_tags`,
and both go through `apply_decisions`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from .tagging import country_names

KINDS = (("topics", "tag"), ("regions", "code"))  # result key, and the key naming a tag in its objects
SET, REMOVED = "set", "removed"


@dataclass(frozen=True)
class Decisions:
    """Per kind, tag (or country code) -> SET or REMOVED: the latest decision for each tag."""

    topics: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    regions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __bool__(self) -> bool:
        return bool(self.topics or self.regions)

    def of(self, kind: str) -> Mapping[str, str]:
        return self.topics if kind == "topics" else self.regions

    def overridden_by(self, newer: "Decisions") -> "Decisions":
        """These decisions with `newer`'s laid over them, tag by tag."""
        return Decisions({**self.topics, **newer.topics}, {**self.regions, **newer.regions})


NO_DECISIONS = Decisions()


def apply_decisions(result: dict, decisions: Decisions) -> tuple[dict, dict]:
    """(the result with the decisions applied, the decisions that changed the model's output).

    The second value says, per kind, which tags an editor set that the model did not give
    (`set`) and which tags the model gave that an editor had removed (`removed`)."""
    result = dict(result)
    suggested = dict(result["suggested"])
    kept = {kind: {"set": [], "removed": []} for kind, _ in KINDS}
    for kind, key in KINDS:
        chosen = decisions.of(kind)
        tags = []
        for tag in result[kind]:
            decision = chosen.get(tag[key])
            if decision == REMOVED:
                kept[kind]["removed"].append(tag[key])
            else:
                tags.append({**tag, "by": "editor" if decision == SET else "model"})
        given = {tag[key] for tag in tags}
        candidates = {tag[key]: tag for tag in suggested[kind]}
        for value, decision in chosen.items():
            if decision == SET and value not in given:
                base = candidates.get(value) or _unscored(kind, key, value)
                tags.append({**base, "by": "editor"})
                given.add(value)
                kept[kind]["set"].append(value)
        result[kind] = tags
        suggested[kind] = [{**tag, "by": "model"} for tag in suggested[kind] if tag[key] not in chosen]
    result["suggested"] = suggested
    return result, kept


def _unscored(kind: str, key: str, value: str) -> dict:
    """A tag the model did not score at all (an editor added it)."""
    if kind == "regions":
        return {"code": value, "name": country_names().get(value, value), "score": None, "evidence": []}
    return {"tag": value, "score": None, "evidence": []}
