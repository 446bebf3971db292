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
    story: str | None = None  # versions of one story share it


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


def story_report(gold: list[GoldArticle], tagger, articles) -> dict:
    """How the stories were found (pairwise precision and recall of "same story" against the
    labels' `story`, and the labelled pairs missed), and what they did: identical topic and
    region sets per labelled multi-version story, and micro-F1 without and with each mode."""
    from .stories import group, pairs_within

    results, signatures = tagger.tag_signed(articles)
    groups = group([a.id for a in articles], signatures)
    found = {frozenset(pair) for pair in pairs_within(groups)}
    labelled = {}
    for index, truth in enumerate(gold):
        if truth.story:
            labelled.setdefault(truth.story, []).append(index)
    wanted = {frozenset((i, j)) for versions in labelled.values() for a, i in enumerate(versions) for j in versions[a + 1 :]}
    report = {"stories_found": sum(1 for v in groups.members.values() if len(v) > 1),
              "articles_in_multi_version_stories": sum(len(v) for v in groups.members.values() if len(v) > 1)}
    if wanted:
        hits = len(found & wanted)
        report["same_story_pairs"] = {"precision": round(hits / len(found), 4) if found else 0.0, "recall": round(hits / len(wanted), 4),
                                      "found": len(found), "labelled": len(wanted), "correct": hits,
                                      "missed": sorted([gold[i].id, gold[j].id] for i, j in map(sorted, wanted - found)),
                                      "wrong": sorted([gold[i].id, gold[j].id] for i, j in map(sorted, found - wanted))}
    multi = [versions for versions in labelled.values() if len(versions) > 1]
    modes = {}
    for mode in ("none", "off", "suggest", "shared"):
        tagged = results if mode == "none" else tagger.tag_many(articles, stories=mode, story_ids=groups.ids)
        metrics = score(gold, tagged, tagger.labels, worst=0)
        modes[mode] = {"topics_micro_f1": metrics["topics"]["micro"]["f1"], "regions_micro_f1": metrics["regions"]["micro"]["f1"]}
        if multi:
            modes[mode]["identical_topic_sets"] = sum(len({frozenset(t["tag"] for t in tagged[i]["topics"]) for i in v}) == 1 for v in multi)
            modes[mode]["identical_region_sets"] = sum(len({frozenset(r["code"] for r in tagged[i]["regions"]) for i in v}) == 1 for v in multi)
            modes[mode]["multi_version_stories"] = len(multi)
    report["by_mode"] = modes
    return report


def format_report(report: dict) -> str:
    """The metrics as a table for a terminal."""
    lines = [f"{'topic':<18}{'precision':>10}{'recall':>8}{'f1':>8}{'tp':>6}{'fp':>5}{'fn':>5}"]
    rows = list(report["topics"]["per_label"].items()) + [("micro", report["topics"]["micro"]), ("regions (micro)", report["regions"]["micro"])]
    for name, m in rows:
        lines.append(f"{name:<18}{m['precision']:>10.3f}{m['recall']:>8.3f}{m['f1']:>8.3f}{m['tp']:>6}{m['fp']:>5}{m['fn']:>5}")
    lines.append(f"topics macro-F1 {report['topics']['macro_f1']:.3f} over {report['articles']} articles")
    stories = report.get("stories")
    if stories:
        lines.append(f"\nstories: {stories['stories_found']} with several versions ({stories['articles_in_multi_version_stories']} articles)")
        pairs = stories.get("same_story_pairs")
        if pairs:
            lines.append(f"  same-story pairs: precision {pairs['precision']:.3f}, recall {pairs['recall']:.3f} "
                         f"({pairs['correct']} of {pairs['labelled']} labelled pairs found, {pairs['found'] - pairs['correct']} wrong)")
            for a, b in pairs["missed"]:
                lines.append(f"    missed: {a} / {b}")
            for a, b in pairs["wrong"]:
                lines.append(f"    wrong:  {a} / {b}")
        lines.append(f"  {'mode':<9}{'topics F1':>10}{'regions F1':>11}{'same topics':>13}{'same regions':>14}")
        for mode, m in stories["by_mode"].items():
            same = (f"{m['identical_topic_sets']:>7}/{m['multi_version_stories']:<5}{m['identical_region_sets']:>8}/{m['multi_version_stories']}"
                    if "identical_topic_sets" in m else "")
            lines.append(f"  {mode:<9}{m['topics_micro_f1']:>10.3f}{m['regions_micro_f1']:>11.3f}{same}")
    if report["worst_errors"]:
        lines.append("\nworst errors:")
        for e in report["worst_errors"]:
            parts = []
            for key, short in (("topics_false_positive", "+topic"), ("topics_missed", "-topic"), ("regions_false_positive", "+region"), ("regions_missed", "-region")):
                if e[key]:
                    parts.append(f"{short} {','.join(e[key])}")
            lines.append(f"  {e['id']}: {'; '.join(parts)}  scores {e['topic_scores']}")
    return "\n".join(lines)
