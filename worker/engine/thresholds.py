"""Accept and review thresholds from out-of-fold scores, and the figures they give.

Per topic the accept threshold is the point nearest 0.5 on the plateau where F1 is best, and
the lower review threshold maximises F2 (recall-heavy) between half the accept threshold and
0.05 below it, so the review band holds the near misses an editor should see. Regions use the
same rule over candidate rows, with labeled countries the gazetteer never found booked as
false negatives.
"""

from __future__ import annotations

import numpy as np

from .evaluation import prf

_THRESHOLD_GRID = np.round(np.arange(0.05, 0.96, 0.01), 2)
_MIN_REVIEW_BAND = 0.05


def choose_thresholds(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float, dict]:
    """Accept threshold (best F1) and review threshold (best F2 below it) from out-of-fold scores."""
    f1 = np.array([_f_beta(scores >= t, truth, 1.0) for t in _THRESHOLD_GRID])
    accept = _nearest_half_of_best(f1)
    f2 = np.array([_f_beta(scores >= t, truth, 2.0) for t in _THRESHOLD_GRID])
    review = _middle_of_best(np.where(_review_range(accept), f2, -1.0))
    return accept, review, topic_figures(scores, truth, accept)


def topic_figures(scores: np.ndarray, truth: np.ndarray, accept: float) -> dict:
    """Precision, recall, F1 and counts of one label's rows at `accept`."""
    predicted = scores >= accept
    metrics = prf(int((predicted & (truth == 1)).sum()), int((predicted & (truth == 0)).sum()), int((~predicted & (truth == 1)).sum()))
    metrics["positives"] = int(truth.sum())
    return metrics


def choose_region_thresholds(scores, y, weights, groups, missed) -> tuple[float, float, dict]:
    def f_beta(threshold, beta):
        tp, fp, fn = _region_counts(scores, y, weights, missed, threshold)
        return (1 + beta**2) * tp / max(1, (1 + beta**2) * tp + beta**2 * fn + fp)

    accept = _nearest_half_of_best(np.array([f_beta(t, 1.0) for t in _THRESHOLD_GRID]))
    f2 = np.array([f_beta(t, 2.0) for t in _THRESHOLD_GRID])
    review = _middle_of_best(np.where(_review_range(accept), f2, -1.0))
    return accept, review, region_figures(scores, y, weights, groups, missed, accept)


def region_figures(scores, y, weights, groups, missed, accept: float) -> dict:
    """Precision, recall, F1 and counts of candidate rows at `accept` (weight-0 rows count for nothing)."""
    metrics = prf(*_region_counts(scores, y, weights, missed, accept))
    metrics["articles"] = int(len(set(groups.tolist())))
    metrics["never_mentioned"] = missed
    return metrics


def _region_counts(scores, y, weights, missed, threshold) -> tuple[int, int, int]:
    predicted = scores >= threshold
    tp = int((predicted & (y == 1) & (weights > 0)).sum())
    fp = int((predicted & (y == 0) & (weights > 0)).sum())
    fn = int((~predicted & (y == 1) & (weights > 0)).sum()) + missed
    return tp, fp, fn


def _middle_of_best(values: np.ndarray, tolerance: float = 0.002) -> float:
    """The middle of the thresholds that score within `tolerance` of the best: a plateau's edge
    is where a few out-of-fold articles happened to fall, its middle is what generalises."""
    best = np.flatnonzero(values >= values.max() - tolerance)
    return float(_THRESHOLD_GRID[best[len(best) // 2]])


def _nearest_half_of_best(values: np.ndarray, tolerance: float = 0.01) -> float:
    """Of the thresholds that score within `tolerance` of the best, the one nearest 0.5.

    On the corpus the best-F1 plateau is often wide (its articles are cleanly separable);
    on unseen articles scores shrink towards the middle from both sides, so the plateau's
    point nearest 0.5 loses least when they do. The tolerance is about what three articles
    move a label's F1 on a corpus of some 300 positives: out-of-fold F1 curves wobble by that
    much between neighbouring thresholds, so a tighter one picks a wobble's peak (it put
    ukraine-front's threshold at 0.82 on a curve flat from 0.55 to 0.90).
    """
    best = _THRESHOLD_GRID[values >= values.max() - tolerance]
    return float(best[np.argmin(np.abs(best - 0.5))])


def _review_range(accept: float) -> np.ndarray:
    """Review thresholds lie in [accept / 2, accept - 0.05]: a band that always exists."""
    return (_THRESHOLD_GRID >= accept / 2) & (_THRESHOLD_GRID <= accept - _MIN_REVIEW_BAND + 1e-9)


def _f_beta(predicted: np.ndarray, truth: np.ndarray, beta: float) -> float:
    tp = float((predicted & (truth == 1)).sum())
    fp = float((predicted & (truth == 0)).sum())
    fn = float((~predicted & (truth == 1)).sum())
    return (1 + beta**2) * tp / max(1.0, (1 + beta**2) * tp + beta**2 * fn + fp)
