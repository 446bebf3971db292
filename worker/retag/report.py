"""A re-tag dry run's picture: report.html beside report.json, with the per-tag gains and losses
as a chart (in the terminal table's order, export.ordered_tags) and a sample of changed
articles with their tags before and after.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from ..engine.html_page import Markup, escape, image, new_figure, page, table
from ..engine.tagging import country_names
from .export import ordered_tags

SAMPLE_SIZE = 20
CHART_ROWS = 40  # past this the chart stops being readable; the table below it lists every tag
_SAMPLE_SEED = 0  # the same run gives the same sample


def sample_changes(changes_path: Path, size: int = SAMPLE_SIZE) -> tuple[list[dict], int]:
    """A fixed-seed reservoir sample of the articles whose tags change (bounded memory whatever
    the run's size), in file order; and how many changed."""
    rng = random.Random(_SAMPLE_SEED)
    sample, seen = [], 0
    if not changes_path.exists():
        return [], 0
    with open(changes_path, encoding="utf-8") as lines:
        for text in lines:
            entry = json.loads(text)
            if not any(entry["changes"][kind][side] for kind in ("topics", "regions") for side in ("added", "removed")):
                continue
            seen += 1
            if len(sample) < size:
                sample.append(entry)
            elif (slot := rng.randrange(seen)) < size:
                sample[slot] = entry
    return sorted(sample, key=lambda e: e.get("line", 0)), seen


def render(report: dict, changes_path: Path) -> str:
    rows = ordered_tags(report["per_tag"])
    sections = [_chart_section(rows), _sample_section(*sample_changes(changes_path))]
    meta = (f"run {report['run']} · {report['articles']} articles re-tagged, {report['changed']} would change, "
            f"{report['bad_lines']} bad lines skipped, {report['editor_decisions_kept']} editor decisions kept")
    return page("autotag re-tag dry run", meta, sections)


def write(report: dict, changes_path: Path, out: Path) -> None:
    out.write_text(render(report, changes_path), encoding="utf-8")


def _chart_section(rows) -> str:
    if not rows:
        return "<h2>Gains and losses per tag</h2><p>No tag changes.</p>"
    charted = _most_changed(rows, CHART_ROWS)
    figure = new_figure(11, 1.2 + 0.34 * len(charted))
    ax = figure.subplots()
    names = [name for _, name, _ in charted][::-1]
    gains = [counts["gain"] for _, _, counts in charted][::-1]
    losses = [-counts["lose"] for _, _, counts in charted][::-1]
    gained = ax.barh(names, gains, color="#2ca02c", label="articles gaining the tag")
    lost = ax.barh(names, losses, color="#d62728", label="articles losing it")
    ax.bar_label(gained, labels=[str(g) if g else "" for g in gains], padding=3, fontsize=8)
    ax.bar_label(lost, labels=[str(-v) if v else "" for v in losses], padding=3, fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    widest = max(max(gains), -min(losses), 1)
    ax.set_xlim(-widest * 1.2, widest * 1.2)
    ax.set_xlabel("articles")
    ax.legend(loc="lower right", fontsize=9)
    left_out = f" ({len(rows) - len(charted)} less changed tags in the table only)" if len(charted) < len(rows) else ""
    ax.set_title(f"per tag: topics first, then countries; most changed first{left_out}", fontsize=11)
    listing = table(["tag", "gain", "lose"], [[name, counts["gain"], counts["lose"]] for _, name, counts in rows], numeric={1, 2})
    return "<h2>Gains and losses per tag</h2>" + image(figure, "articles gaining and losing each tag") + listing


def _most_changed(rows, limit: int):
    """The first `limit` rows of the report order, topics always kept."""
    topics = [row for row in rows if row[0] not in country_names()]
    return rows[: max(limit, len(topics))]


def _sample_section(sample: list[dict], changed: int) -> str:
    if not sample:
        return "<h2>Changed articles</h2><p>No article's tags change.</p>"
    names = country_names()
    rows = []
    for entry in sample:
        before, after = entry.get("before", {}), entry.get("after", {})
        rows.append([entry["id"], entry.get("line", ""), Markup(_tag_list(before, entry, "removed", names)),
                     Markup(_tag_list(after, entry, "added", names))])
    what = f"all {changed}" if changed <= len(sample) else f"{len(sample)} of {changed}, drawn at random"
    return (f"<h2>Changed articles ({what})</h2><p>Tags leaving an article in red, tags arriving in green; editors' own decisions "
            "are kept and never shown as changes.</p>" + table(["article", "line", "before", "after"], rows, numeric={1}))


def _tag_list(tags: dict, entry: dict, side: str, names: dict) -> str:
    css = "loss" if side == "removed" else "gain"
    shown = []
    for kind in ("topics", "regions"):
        changed = set(entry["changes"][kind][side])
        values = tags.get(kind, sorted(changed))
        for value in values:
            label = escape(f"{names.get(value, value)} ({value})" if kind == "regions" else value)
            shown.append(f"<span class={css}><b>{label}</b></span>" if value in changed else label)
    return ", ".join(shown) or "<span class=quiet>none</span>"
