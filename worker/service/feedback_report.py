"""`autotag feedback report`: how often editors overrule the model, per tag and model version.

Per tag: model tags editors kept and rejected (editor-judged precision), suggestions accepted
and rejected, tags editors added that the model did not offer, and the accept threshold that
would have matched editors best on the recorded scores. Each article's latest decision on a
tag counts once (an editor who changes their mind counts for the final choice).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .decision_store import LoggedDecision

# below this many scored decisions a best threshold says more about chance than about editors
MIN_SCORED_DECISIONS = 20
_GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)


@dataclass
class TagFigures:
    kind: str
    tag: str
    model_version: str
    kept: int = 0  # model tags editors confirmed
    rejected: int = 0  # model tags editors removed
    suggestions_accepted: int = 0
    suggestions_rejected: int = 0
    added: int = 0  # tags the model did not offer at all
    scored: list = field(default_factory=list)  # (score, editors wanted it)

    def count(self, entry: LoggedDecision) -> None:
        wanted = entry.decision != "rejected"
        if entry.origin == "suggested":
            if wanted:
                self.suggestions_accepted += 1
            else:
                self.suggestions_rejected += 1
        elif entry.origin == "given" or not wanted:
            # a rejection of a tag the service holds no score for is a rejection of a tag the CMS
            # showed, that is of the model's (only model tags and suggestions are shown)
            if wanted:
                self.kept += 1
            else:
                self.rejected += 1
        else:
            self.added += 1
        if entry.score is not None:
            self.scored.append((entry.score, wanted))

    def as_dict(self, current_threshold: float | None) -> dict:
        judged = self.kept + self.rejected
        offered = self.suggestions_accepted + self.suggestions_rejected
        return {
            "kind": self.kind, "tag": self.tag, "model_version": self.model_version,
            "model_tags": {"kept": self.kept, "rejected": self.rejected, "precision": round(self.kept / judged, 3) if judged else None},
            "suggestions": {"accepted": self.suggestions_accepted, "rejected": self.suggestions_rejected,
                            "acceptance": round(self.suggestions_accepted / offered, 3) if offered else None},
            "added_by_editors": self.added,
            "threshold": best_threshold(self.scored, current_threshold),
        }


def best_threshold(scored: list[tuple[float, bool]], current: float | None) -> dict:
    """The accept threshold at which the model would have agreed with most editor decisions
    (wanted tags at or above it, rejected ones below), nearest the current one among ties."""
    positives = sum(wanted for _, wanted in scored)
    answer = {"current": current, "decisions": len(scored), "wanted": positives, "rejected": len(scored) - positives}
    if len(scored) < MIN_SCORED_DECISIONS:
        return {**answer, "best": None, "agreement": None, "note": f"too few: {len(scored)} scored decisions, {MIN_SCORED_DECISIONS} needed"}
    scores = np.array([score for score, _ in scored])
    wanted = np.array([w for _, w in scored])
    agreement = np.array([((scores >= t) == wanted).mean() for t in _GRID])
    ties = _GRID[agreement >= agreement.max() - 1e-9]
    anchor = current if current is not None else 0.5
    best = float(ties[np.argmin(np.abs(ties - anchor))])
    at_current = float(((scores >= current) == wanted).mean()) if current is not None else None
    return {**answer, "best": best, "agreement": round(float(agreement.max()), 3),
            "agreement_at_current": None if at_current is None else round(at_current, 3)}


def build_report(entries, current_threshold: Callable[[str, str], float | None], current_version: str | None,
                 since: float | None = None) -> dict:
    """`entries`: LoggedDecision, oldest first. `current_threshold(kind, tag)`: the accept
    threshold of the model now deployed (`current_version`)."""
    latest: dict[tuple, LoggedDecision] = {}
    clients, total = set(), 0
    for entry in entries:
        total += 1
        clients.add(entry.client)
        latest[(entry.client, str(entry.article), entry.kind, entry.tag)] = entry
    figures: dict[tuple, TagFigures] = {}
    articles = defaultdict(set)
    for entry in latest.values():
        key = (entry.kind, entry.tag, entry.model_version)
        figures.setdefault(key, TagFigures(*key)).count(entry)
        articles[key].add((entry.client, str(entry.article)))
    rows = []
    for key in sorted(figures, key=lambda k: (k[0] != "topic", k[1], k[2])):
        kind, tag, version = key
        current = current_threshold(kind, tag) if version == current_version else None
        rows.append({**figures[key].as_dict(current), "articles": len(articles[key])})
    return {"since": since, "clients": sorted(clients), "decisions_stored": total, "decisions_counted": len(latest),
            "current_model_version": current_version, "min_scored_decisions": MIN_SCORED_DECISIONS, "tags": rows}


def format_report(report: dict) -> str:
    if not report["tags"]:
        return "no editor decisions recorded" + (" in that period" if report["since"] else "")
    lines = [f"{report['decisions_counted']} decisions counted (latest per article and tag; {report['decisions_stored']} stored) "
             f"from {', '.join(report['clients'])}", "",
             f"{'tag':<22}{'model version':<22}{'kept/rej':>10}{'precision':>11}{'sugg acc/rej':>14}{'added':>7}"
             f"{'threshold now':>15}{'best for editors':>28}"]
    for row in report["tags"]:
        model, suggested, threshold = row["model_tags"], row["suggestions"], row["threshold"]
        precision = "-" if model["precision"] is None else f"{model['precision']:.2f}"
        now = "-" if threshold["current"] is None else f"{threshold['current']:.2f}"
        if threshold["best"] is None:
            best = f"too few ({threshold['decisions']})"
        else:
            best = f"{threshold['best']:.2f} ({threshold['decisions']} dec, {threshold['agreement']:.0%} agree)"
        lines.append(f"{row['kind'] + ' ' + row['tag']:<22}{row['model_version'][:21]:<22}{model['kept']:>5}/{model['rejected']:<4}"
                     f"{precision:>11}{suggested['accepted']:>8}/{suggested['rejected']:<5}{row['added_by_editors']:>7}{now:>15}{best:>28}")
    return "\n".join(lines)
