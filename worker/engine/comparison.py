"""Cross-validated figures of the corpus alone beside corpus + archive, per row set, and their table.

Figures are kept per row set, never pooled. Corpus rows carry every label; archive rows carry
only what editors decided, and editors mostly decide on the tags a model gave them (keeping or
removing them), so an archive's negatives are largely an older model's false positives and its
figures are a different, harsher measure that would also move with the archive's size if mixed
in. Kept apart, "corpus rows" answers "did learning from the archive cost anything on the
labeled corpus?" and "archive rows" answers "does the model now agree with our editors?", over
the same rows in both columns (a topic's archive rows are those whose topic an editor decided).
Each column is read at its own thresholds: the corpus-only ones are what the corpus alone ships.
"""

from __future__ import annotations

from .crossval import CORPUS_ONLY, WITH_ARCHIVE
from .thresholds import region_figures, topic_figures
from .trainset import RegionRows, TopicRows

_COLUMNS = ((CORPUS_ONLY, "corpus alone"), (WITH_ARCHIVE, "corpus + archive"))
_ROW_SETS = (("corpus_rows", "corpus rows"), ("archive_rows", "archive rows"))


def topic_comparison(scores: dict, rows: TopicRows, labels: list[str], thresholds: dict) -> dict:
    """{label: {regime: {"accept", "review", "corpus_rows": figures, "archive_rows": figures}}}."""
    comparison = {}
    for j, label in enumerate(labels):
        comparison[label] = {}
        for regime, _ in _COLUMNS:
            chosen = thresholds[regime][label]
            entry = {"accept": chosen["accept"], "review": chosen["review"]}
            for name, part in zip(("corpus_rows", "archive_rows"), (~rows.in_archive, rows.in_archive)):
                mask = part & rows.known_in(j)
                figures = topic_figures(scores[regime][mask, j], rows.Y[mask, j], chosen["accept"])
                entry[name] = {**figures, "rows": int(mask.sum())}
            comparison[label][regime] = entry
    return comparison


def region_comparison(scores: dict, rows: RegionRows, thresholds: dict) -> dict:
    """{regime: {"accept", "review", "corpus_rows": figures, "archive_rows": figures}}."""
    comparison = {}
    for regime, _ in _COLUMNS:
        chosen = thresholds[regime]
        entry = {"accept": chosen["accept"], "review": chosen["review"]}
        for (name, _), part, missed in zip(_ROW_SETS, (~rows.in_archive, rows.in_archive), (rows.missed["corpus"], rows.missed["archive"])):
            entry[name] = region_figures(scores[regime][part], rows.y[part], rows.weights[part], rows.groups[part], missed, chosen["accept"])
        comparison[regime] = entry
    return comparison


def format_comparison(comparison: dict, folds: int) -> str:
    """One block per topic and one for regions: row sets down, the two trainings across."""
    lines = [
        f"cross-validated figures ({folds} folds; corpus rows carry every label, archive rows only the editors' decisions)",
        f"{'':<34}{'corpus alone':<36}corpus + archive",
    ]
    blocks = [(label, per_regime, _topic_size) for label, per_regime in comparison["topics"].items()]
    blocks.append(("regions", comparison["regions"], _region_size))
    for name, per_regime, size in blocks:
        lines.append(name)
        for key, title in _ROW_SETS:
            cells = [_figures(per_regime[regime][key]) for regime, _ in _COLUMNS]
            lines.append(f"  {title:<14}{size(per_regime[CORPUS_ONLY][key]):<18}{cells[0]:<36}{cells[1]}")
        cells = [f"accept {per_regime[regime]['accept']:.2f} review {per_regime[regime]['review']:.2f}" for regime, _ in _COLUMNS]
        lines.append(f"  {'thresholds':<32}{cells[0]:<36}{cells[1]}")
    return "\n".join(lines)


def _figures(figures: dict) -> str:
    if figures["tp"] + figures["fp"] + figures["fn"] == 0:
        return "-"  # nothing to find and nothing found: no figure to give
    return f"P {figures['precision']:.3f} R {figures['recall']:.3f} F1 {figures['f1']:.3f}"


def _topic_size(figures: dict) -> str:
    return f"{figures['rows']} ({figures['positives']}+ {figures['rows'] - figures['positives']}-)"


def _region_size(figures: dict) -> str:
    return f"{figures['articles']} articles"

