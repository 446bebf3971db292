"""`autotag evaluate`: precision, recall and F1 of a tagger against labeled articles.

Topics: per label, micro and macro. Regions: micro over articles, where a predicted code in
`regions_optional` is neither a hit nor a false positive (the guideline's "either is fine").
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    def as_dict(self) -> dict:
        return prf(self.tp, self.fp, self.fn)


@dataclass
class GoldArticle:
    id: str
    topics: set[str]
    regions: set[str]
    regions_optional: set[str] = field(default_factory=set)


def prf(tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "tp": tp, "fp": fp, "fn": fn}


def score(gold: list[GoldArticle], predicted: list[dict], labels: list[str], worst: int = 10) -> dict:
    """Metrics for predictions (tag results in `gold` order) against gold labels."""
    per_label = {label: Counts() for label in labels}
    regions = Counts()
    errors = []
    for truth, result in zip(gold, predicted, strict=True):
        predicted_topics = {t["tag"] for t in result["topics"]}
        predicted_regions = {r["code"] for r in result["regions"]}
        for label in labels:
            hit, wanted = label in predicted_topics, label in truth.topics
            counts = per_label[label]
            counts.tp += hit and wanted
            counts.fp += hit and not wanted
            counts.fn += wanted and not hit
        region_fp = predicted_regions - truth.regions - truth.regions_optional
        region_fn = truth.regions - predicted_regions
        regions.tp += len(predicted_regions & truth.regions)
        regions.fp += len(region_fp)
        regions.fn += len(region_fn)
        topic_fp = sorted(predicted_topics - truth.topics)
        topic_fn = sorted(truth.topics - predicted_topics)
        weight = 2 * (len(topic_fp) + len(topic_fn)) + len(region_fp) + len(region_fn)
        if weight:
            errors.append(
                {
                    "id": truth.id,
                    "weight": weight,
                    "topics_false_positive": topic_fp,
                    "topics_missed": topic_fn,
                    "regions_false_positive": sorted(region_fp),
                    "regions_missed": sorted(region_fn),
                    "topic_scores": {t["tag"]: t["score"] for t in result["topics"] + result["suggested"]["topics"]},
                }
            )
    micro = Counts(*(sum(getattr(c, key) for c in per_label.values()) for key in ("tp", "fp", "fn")))
    label_metrics = {label: counts.as_dict() for label, counts in per_label.items()}
    macro_f1 = sum(m["f1"] for m in label_metrics.values()) / len(labels) if labels else 0.0
    errors.sort(key=lambda e: (-e["weight"], e["id"]))
    return {
        "articles": len(gold),
        "topics": {"per_label": label_metrics, "micro": micro.as_dict(), "macro_f1": round(macro_f1, 4)},
        "regions": {"micro": regions.as_dict()},
        "worst_errors": errors[:worst],
    }


def format_report(report: dict) -> str:
    """The metrics as a table for a terminal."""
    lines = [f"{'topic':<18}{'precision':>10}{'recall':>8}{'f1':>8}{'tp':>6}{'fp':>5}{'fn':>5}"]
    rows = list(report["topics"]["per_label"].items()) + [("micro", report["topics"]["micro"]), ("regions (micro)", report["regions"]["micro"])]
    for name, m in rows:
        lines.append(f"{name:<18}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['tp']:>6}{m['fp']:>5}{m['fn']:>5}")
    lines.append(f"topics macro-F1 {report['topics']['macro_f1']:.3f} over {report['articles']} articles")
    if report["worst_errors"]:
        lines.append("\nworst errors:")
        for e in report["worst_errors"]:
            parts = []
            for key, short in (("topics_false_positive", "+topic"), ("topics_missed", "-topic"), ("regions_false_positive", "+region"), ("regions_missed", "-region")):
                if e[key]:
                    parts.append(f"{short} {','.join(e[key])}")
            lines.append(f"  {e['id']}: {'; '.join(parts)}  scores {e['topic_scores']}")
    return "\n".join(lines)
