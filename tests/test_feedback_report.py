"""The feedback report: each article's latest decision counts once, model tags and suggestions are
told apart, and the best threshold separates what editors kept from what they removed."""

from worker.service.decision_store import LoggedDecision
from worker.service.feedback_report import MIN_SCORED_DECISIONS, best_threshold, build_report


def entry(article, decision, score, origin="given", tag="sanctions", kind="topic", version="v1", at=0.0):
    return LoggedDecision(at=at, client="c", feedback=f"f-{article}-{at}", article=article, revision=1, model_version=version,
                          kind=kind, tag=tag, decision=decision, editor="u", score=score, origin=origin)


def test_editors_who_keep_high_scores_and_remove_low_ones_move_the_threshold_between_them():
    scored = [(0.9 - i * 0.01, True) for i in range(15)] + [(0.6 - i * 0.01, False) for i in range(15)]
    found = best_threshold(scored, current=0.5)
    assert 0.6 < found["best"] <= 0.76 and found["agreement"] == 1.0
    assert found["agreement_at_current"] == 0.633 and found["decisions"] == 30  # 11 rejected tags scored 0.50-0.60


def test_below_the_floor_the_report_says_too_few():
    found = best_threshold([(0.9, True)] * (MIN_SCORED_DECISIONS - 1), current=0.5)
    assert found["best"] is None and "too few" in found["note"]


def test_the_latest_decision_per_article_counts_and_kinds_of_decision_are_told_apart():
    entries = [
        entry("a1", "rejected", 0.8, at=1), entry("a1", "accepted", 0.8, at=2),  # changed their mind: kept
        entry("a2", "rejected", 0.7),
        entry("a3", "accepted", 0.4, origin="suggested"), entry("a4", "rejected", 0.35, origin="suggested"),
        entry("a5", "added", None, origin="unscored"),
        entry("a6", "rejected", 0.9, version="v0"),
        entry("a1", "added", None, origin="unscored", kind="region", tag="FR"),
    ]
    report = build_report(entries, lambda kind, tag: 0.57 if kind == "topic" else 0.5, current_version="v1")
    rows = {(r["kind"], r["tag"], r["model_version"]): r for r in report["tags"]}
    current = rows[("topic", "sanctions", "v1")]
    assert current["model_tags"] == {"kept": 1, "rejected": 1, "precision": 0.5}
    assert current["suggestions"] == {"accepted": 1, "rejected": 1, "acceptance": 0.5}
    assert current["added_by_editors"] == 1 and current["articles"] == 5
    assert current["threshold"]["current"] == 0.57 and current["threshold"]["decisions"] == 4
    assert rows[("topic", "sanctions", "v0")]["threshold"]["current"] is None  # not the model deployed now
    assert rows[("region", "FR", "v1")]["added_by_editors"] == 1
    assert report["decisions_stored"] == 8 and report["decisions_counted"] == 7
