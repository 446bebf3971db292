"""evaluate's arithmetic on a hand-made case, with optional regions neither hits nor false positives."""

from worker.engine.evaluation import GoldArticle, format_report, score


def result(topics, regions):
    return {"topics": [{"tag": t, "score": 0.9} for t in topics], "regions": [{"code": c} for c in regions],
            "suggested": {"topics": [], "regions": []}}


def test_hand_made_case():
    gold = [
        GoldArticle("a", {"arms-deals"}, {"RU", "KP"}, {"US"}),
        GoldArticle("b", {"sanctions", "arms-deals"}, {"IR"}),
        GoldArticle("c", set(), {"FR"}),
    ]
    predicted = [
        result(["arms-deals"], ["RU", "US"]),          # US is optional: neither hit nor miss; KP missed
        result(["sanctions"], ["IR", "IQ"]),           # arms-deals missed; IQ false positive
        result(["arms-deals"], ["FR"]),                # arms-deals false positive
    ]
    report = score(gold, predicted, ["arms-deals", "sanctions"])
    arms = report["topics"]["per_label"]["arms-deals"]
    assert (arms["tp"], arms["fp"], arms["fn"]) == (1, 1, 1)
    assert arms["precision"] == 0.5 and arms["recall"] == 0.5 and arms["f1"] == 0.5
    sanctions = report["topics"]["per_label"]["sanctions"]
    assert (sanctions["precision"], sanctions["recall"], sanctions["f1"]) == (1.0, 1.0, 1.0)
    micro = report["topics"]["micro"]
    assert (micro["tp"], micro["fp"], micro["fn"]) == (2, 1, 1)
    assert micro["f1"] == round(2 * (2 / 3) * (2 / 3) / (4 / 3), 4)
    assert report["topics"]["macro_f1"] == 0.75
    regions = report["regions"]["micro"]
    assert (regions["tp"], regions["fp"], regions["fn"]) == (3, 1, 1)
    assert regions["precision"] == 0.75 and regions["recall"] == 0.75
    # a topic error weighs two region errors: b (topic + region), c (topic), a (region)
    assert [e["id"] for e in report["worst_errors"]] == ["b", "c", "a"]
    assert "arms-deals" in format_report(report)


def test_no_predictions_and_no_gold_give_zeros_not_errors():
    report = score([GoldArticle("x", set(), set())], [result([], [])], ["sanctions"])
    assert report["topics"]["micro"]["f1"] == 0.0 and report["worst_errors"] == []
