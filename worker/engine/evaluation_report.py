"""`autotag evaluate --html`: the evaluation as one self-contained HTML page with figures.

Precision and recall against the threshold are drawn from every score (below the review
threshold too), with the bundle's accept and review thresholds marked, so a reader sees what
moving a threshold would buy; the bars and tables are the tags actually given (stories
included); the worst errors carry the evidence behind each wrong or missing tag.
"""

from __future__ import annotations

import numpy as np

from .evaluation import GoldArticle, prf
from .html_page import Markup, escape, image, new_figure, page, table

GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)
TOP_COUNTRIES = 15
_PRECISION, _RECALL, _F1 = "#1f77b4", "#d62728", "#7f7f7f"


def precision_recall_curve(scores: np.ndarray, truth: np.ndarray, never_scored: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall at each GRID threshold; `never_scored`: positives no score exists for
    (a country the gazetteer never found), missed at every threshold. Precision is NaN where
    nothing is predicted."""
    precision, recall = [], []
    positives = int(truth.sum()) + never_scored
    for threshold in GRID:
        predicted = scores >= threshold
        tp = int((predicted & truth).sum())
        fp = int((predicted & ~truth).sum())
        precision.append(tp / (tp + fp) if tp + fp else np.nan)
        recall.append(tp / positives if positives else np.nan)
    return np.array(precision), np.array(recall)


def topic_rows(gold: list[GoldArticle], raw: list[dict], label: str) -> tuple[np.ndarray, np.ndarray]:
    return np.array([r["topics"][label] for r in raw], dtype=float), np.array([label in g.topics for g in gold], dtype=bool)


def region_rows(gold: list[GoldArticle], raw: list[dict]) -> tuple[np.ndarray, np.ndarray, int]:
    """Salience and truth of every country found (optional ones left out, as the metrics do),
    and how many labelled countries were never found."""
    scores, truth, never_found = [], [], 0
    for article, found in zip(gold, raw):
        for code, salience in found["regions"].items():
            if code in article.regions_optional and code not in article.regions:
                continue
            scores.append(salience)
            truth.append(code in article.regions)
        never_found += len(article.regions - set(found["regions"]))
    return np.array(scores, dtype=float), np.array(truth, dtype=bool), never_found


def render(report: dict, gold: list[GoldArticle], titles: list[str], results: list[dict], raw: list[dict], thresholds: dict,
           country_names: dict[str, str], source: str) -> str:
    """The page. `report`: evaluation.score()'s; `results`: the tags given, in `gold` order;
    `raw`: Tagger.scores() in the same order; `thresholds`: the bundle manifest's."""
    labels = list(report["topics"]["per_label"])
    sections = [_summary_section(report, thresholds),
                _curves_section(gold, raw, labels, thresholds),
                _per_tag_section(report, labels),
                _country_section(gold, results, country_names),
                _errors_section(report, gold, titles, results, raw, thresholds, country_names)]
    meta = f"model {report.get('model_version', '?')} · {report['articles']} articles from {source}"
    return page("autotag evaluation", meta, sections)


def _summary_section(report: dict, thresholds: dict) -> str:
    rows = []
    for label, m in report["topics"]["per_label"].items():
        t = thresholds["topics"][label]
        rows.append([f"topic {label}", t["accept"], t["review"], m["precision"], m["recall"], m["f1"], m["tp"], m["fp"], m["fn"]])
    m = report["regions"]["micro"]
    rows.append(["regions (micro)", thresholds["regions"]["accept"], thresholds["regions"]["review"], m["precision"], m["recall"], m["f1"],
                 m["tp"], m["fp"], m["fn"]])
    m = report["topics"]["micro"]
    rows.append(["topics (micro)", "", "", m["precision"], m["recall"], m["f1"], m["tp"], m["fp"], m["fn"]])
    return ("<h2>Figures at the bundle's thresholds</h2>"
            + table(["tag", "accept", "review", "precision", "recall", "F1", "tp", "fp", "fn"], rows, numeric=set(range(1, 9)))
            + f"<p>topics macro-F1 {report['topics']['macro_f1']:.3f}. Tags given: scores at or above <b>accept</b>; "
              "suggestions for an editor: between <b>review</b> and accept.</p>")


def _curves_section(gold, raw, labels, thresholds) -> str:
    panels = [(f"topic {label}", *topic_rows(gold, raw, label), 0, thresholds["topics"][label]) for label in labels]
    panels.append(("regions (all countries found)", *region_rows(gold, raw), thresholds["regions"]))
    columns = 2
    rows = (len(panels) + columns - 1) // columns
    figure = new_figure(11, 3.4 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, (title, scores, truth, never_found, chosen) in zip(axes, panels):
        precision, recall = precision_recall_curve(scores, truth, never_found)
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = 2 * precision * recall / (precision + recall)
        ax.plot(GRID, precision, color=_PRECISION, label="precision")
        ax.plot(GRID, recall, color=_RECALL, label="recall")
        ax.plot(GRID, f1, color=_F1, linestyle=":", label="F1")
        ax.axvline(chosen["accept"], color="black", linewidth=1.5)
        ax.axvline(chosen["review"], color="black", linewidth=1, linestyle="--")
        ax.text(chosen["accept"], 0.03, f" accept {chosen['accept']:.2f}", fontsize=9)
        ax.text(chosen["review"], 0.13, f" review {chosen['review']:.2f}", fontsize=9)
        ax.set_title(f"{title} ({int(truth.sum()) + never_found} positives)", fontsize=11)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("threshold")
        ax.grid(alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    axes[0].legend(loc="lower left", fontsize=9)
    return ("<h2>Precision and recall against the threshold</h2>"
            "<p>From every score the model gave (the story step aside), so a moved threshold can be judged: solid line "
            "the accept threshold, dashed the review threshold. A labelled country the gazetteer never found is missed at every "
            "threshold.</p>" + image(figure, "precision and recall against the threshold, per topic and for regions"))


def _per_tag_section(report: dict, labels: list[str]) -> str:
    names = labels + ["regions (micro)"]
    figures = [report["topics"]["per_label"][label] for label in labels] + [report["regions"]["micro"]]
    figure = new_figure(11, 3.2)
    ax = figure.subplots()
    x = np.arange(len(names))
    for offset, (key, colour) in zip((-0.27, 0, 0.27), (("precision", _PRECISION), ("recall", _RECALL), ("f1", _F1))):
        bars = ax.bar(x + offset, [m[key] for m in figures], width=0.26, color=colour, label=key if key != "f1" else "F1")
        ax.bar_label(bars, fmt="%.2f", fontsize=8, padding=2)
    ax.set_xticks(x, names)
    ax.set_ylim(0, 1.25)
    ax.set_yticks(np.arange(0, 1.01, 0.2))
    ax.legend(loc="upper center", fontsize=9, ncols=3)
    ax.set_title("per tag, at the accept thresholds (tags as given)", fontsize=11)
    return "<h2>Per tag</h2>" + image(figure, "precision, recall and F1 per tag")


def _country_section(gold, results, country_names) -> str:
    counts: dict[str, list[int]] = {}
    for article, result in zip(gold, results):
        given = {r["code"] for r in result["regions"]}
        for code in given | article.regions:
            if code in article.regions_optional and code not in article.regions:
                continue
            tally = counts.setdefault(code, [0, 0, 0])
            tally[0 if code in given and code in article.regions else 1 if code in given else 2] += 1
    top = sorted(counts.items(), key=lambda item: (-sum(item[1]), country_names.get(item[0], item[0])))[:TOP_COUNTRIES]
    if not top:
        return "<h2>Countries</h2><p>No country was labelled or tagged.</p>"
    names = [f"{country_names.get(code, code)} ({code})" for code, _ in top][::-1]
    tallies = np.array([tally for _, tally in top][::-1])
    figure = new_figure(11, 0.9 + 0.32 * len(top))
    ax = figure.subplots()
    left = np.zeros(len(top))
    for column, (label, colour) in enumerate((("right", "#2ca02c"), ("tagged, not labelled", "#ff7f0e"), ("labelled, missed", "#d62728"))):
        ax.barh(names, tallies[:, column], left=left, color=colour, label=label)
        left += tallies[:, column]
    ax.legend(loc="lower right", fontsize=9)
    ax.set_xlabel("articles")
    ax.set_title(f"the {len(top)} countries most often labelled or tagged", fontsize=11)
    rows = [[country_names.get(code, code), code, *tally, prf(*tally)["precision"], prf(*tally)["recall"]] for code, tally in top]
    return ("<h2>Countries</h2>" + image(figure, "per-country right, wrong and missed tags")
            + table(["country", "code", "right", "tagged, not labelled", "labelled, missed", "precision", "recall"], rows,
                    numeric={2, 3, 4, 5, 6}))


def _errors_section(report, gold, titles, results, raw, thresholds, country_names) -> str:
    if not report["worst_errors"]:
        return "<h2>Worst errors</h2><p>None: every tag given was labelled and every label was given.</p>"
    index_of = {}
    for index, article in enumerate(gold):
        index_of.setdefault(article.id, index)
    rows = []
    for error in report["worst_errors"]:
        index = index_of[error["id"]]
        result, scores = results[index], raw[index]
        lines = [_topic_line("given, not labelled", tag, result, scores, thresholds) for tag in error["topics_false_positive"]]
        lines += [_topic_line("labelled, missed", tag, result, scores, thresholds) for tag in error["topics_missed"]]
        lines += [_region_line("given, not labelled", code, result, scores, country_names) for code in error["regions_false_positive"]]
        lines += [_region_line("labelled, missed", code, result, scores, country_names) for code in error["regions_missed"]]
        rows.append([Markup(f"<b>{escape(error['id'])}</b><br>{escape(titles[index])}"), Markup("<br>".join(lines))])
    return ("<h2>Worst errors</h2><p>Topic errors weigh twice a country's. Evidence: for a topic the article's terms that pushed "
            "hardest towards it; for a country the phrases that named it.</p>" + table(["article", "what went wrong, with the evidence"], rows))


def _topic_line(what: str, tag: str, result: dict, scores: dict, thresholds: dict) -> str:
    given = {t["tag"]: t for t in result["topics"] + result["suggested"]["topics"]}
    evidence = given[tag]["evidence"] if tag in given else []
    accept = thresholds["topics"][tag]["accept"] if tag in thresholds["topics"] else None
    score = scores["topics"].get(tag)
    where = f"score {score:.2f}" + (f" (accept {accept:.2f})" if accept is not None else "") if score is not None else "not scored"
    css = "loss" if what.startswith("given") else "quiet"
    return (f'<span class={css}>topic <b>{escape(tag)}</b>: {escape(what)}</span>, {escape(where)}'
            + (f"; evidence: {escape(', '.join(evidence))}" if evidence else ""))


def _region_line(what: str, code: str, result: dict, scores: dict, country_names: dict) -> str:
    given = {r["code"]: r for r in result["regions"] + result["suggested"]["regions"]}
    name = f"{country_names.get(code, code)} ({code})"
    salience = scores["regions"].get(code)
    where = f"salience {salience:.2f}" if salience is not None else "never named in the text the gazetteer knows"
    evidence = given[code]["evidence"] if code in given else []
    css = "loss" if what.startswith("given") else "quiet"
    return (f'<span class={css}>country <b>{escape(name)}</b>: {escape(what)}</span>, {escape(where)}'
            + (f"; evidence: {escape(', '.join(evidence))}" if evidence else ""))
