"""The one rule for editors' decisions: removed tags never come back, set tags always stay, marked by editor."""

from worker.engine.decisions import REMOVED, SET, Decisions, apply_decisions


def _result():
    return {"id": "a1", "model_version": "m",
            "topics": [{"tag": "arms-deals", "score": 0.9, "evidence": ["tanks"], "by": "model"}],
            "regions": [{"code": "PL", "name": "Poland", "score": 0.99, "evidence": ["Warsaw"], "by": "model"},
                        {"code": "KR", "name": "South Korea", "score": 0.8, "evidence": ["Seoul"], "by": "model"}],
            "suggested": {"topics": [{"tag": "sanctions", "score": 0.4, "evidence": ["embargo"], "by": "model"}],
                          "regions": [{"code": "US", "name": "United States", "score": 0.4, "evidence": ["Washington"], "by": "model"}]}}


def test_without_decisions_every_tag_is_the_models():
    result, kept = apply_decisions(_result(), Decisions())
    assert result == _result()
    assert kept == {"topics": {"set": [], "removed": []}, "regions": {"set": [], "removed": []}}


def test_a_removed_tag_is_given_nowhere_and_a_set_one_always():
    decisions = Decisions(topics={"arms-deals": REMOVED, "sanctions": SET, "ukraine-front": SET},
                          regions={"KR": REMOVED, "US": REMOVED, "PL": SET, "FR": SET})
    result, kept = apply_decisions(_result(), decisions)
    assert result["topics"] == [{"tag": "sanctions", "score": 0.4, "evidence": ["embargo"], "by": "editor"},
                                {"tag": "ukraine-front", "score": None, "evidence": [], "by": "editor"}]
    assert [(r["code"], r["by"]) for r in result["regions"]] == [("PL", "editor"), ("FR", "editor")]
    assert result["regions"][1]["name"] == "France" and result["regions"][0]["score"] == 0.99
    assert result["suggested"] == {"topics": [], "regions": []}
    assert kept == {"topics": {"set": ["sanctions", "ukraine-front"], "removed": ["arms-deals"]},
                    "regions": {"set": ["FR"], "removed": ["KR"]}}


def test_later_decisions_override_earlier_ones_tag_by_tag():
    remembered = Decisions(topics={"sanctions": SET, "arms-deals": REMOVED})
    export = Decisions(topics={"sanctions": REMOVED})
    assert remembered.overridden_by(export).topics == {"sanctions": REMOVED, "arms-deals": REMOVED}
