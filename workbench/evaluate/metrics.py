"""The headline figures, from similarity scores: verification (1:1) and identification (1:N).

Computed with scikit-learn's ROC where it applies:

* verification: ``accuracy`` at the best threshold, ``auc``, ``eer``, ``tar_at_fmr`` at FMR
  1e-2 and 1e-3 (with the thresholds that give them) and ``failed_to_enrol``;
* identification: ``rank1``, ``rank10`` (CMC), and ``fnir_at_fpir`` at FPIR 0.01 with its
  threshold, as in NIST FRTE 1:N.

Conventions (write them in any report that quotes these figures):

* An image where no face is found or that cannot be read "fails to enrol". In verification,
  pairs that involve it get score -1 (a certain non-match), as NIST scores failures, so
  failures cost accuracy instead of being hidden; they are also counted.
* ``accuracy`` is taken at the threshold that maximises it on this very data, so it is an
  optimistic figure (LFW-style 10-fold protocols choose the threshold on held-out folds).
* Identification searches each probe against every gallery identity (score = max over that
  identity's images). Non-mated searches come from probes whose identity is not in the
  gallery and, so that a closed set still yields an FPIR, from every mated probe searched again
  with its own identity left out of the gallery.
* A figure at FMR 1e-3 from fewer than 1,000 non-mated pairs rests on less than one false
  match; ``n_nonmated`` is reported so the reader can judge.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from ..errors import WorkbenchError

FMR_TARGETS = (1e-2, 1e-3)
FPIR_TARGET = 0.01
#: the FPIR targets of NIST FRTE's identification mode.
FPIR_TARGETS = (1e-2, 1e-3)
CANDIDATE_LIST_LENGTH = 20
#: ranks reported in investigation mode (threshold 0), as NIST FRTE does.
INVESTIGATION_RANKS = (1, 20)


def verification_metrics(scores: Sequence[float], same: Sequence[int]) -> dict:
    """Verification figures from similarity scores and same-person labels (1 = same, 0 = not).

    Returns a dict with ``accuracy``, ``best_threshold``, ``auc``, ``eer``, ``eer_threshold``,
    ``tar_at_fmr`` and ``threshold_at_fmr`` (keys "1e-2", "1e-3"), ``n_mated``, ``n_nonmated``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(same, dtype=int)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of equal length, got {scores.shape} and {labels.shape}")
    n_mated, n_nonmated = int(labels.sum()), int((labels == 0).sum())
    if n_mated == 0 or n_nonmated == 0:
        raise WorkbenchError(
            f"verification needs both same-person and different-person pairs, got {n_mated} and {n_nonmated}"
        )
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    accuracy_curve = (tpr * n_mated + (1 - fpr) * n_nonmated) / (n_mated + n_nonmated)
    best = int(np.argmax(accuracy_curve))
    eer, eer_threshold = _equal_error_rate(fpr, tpr, thresholds)
    result = {
        "accuracy": float(accuracy_curve[best]),
        "best_threshold": finite_or_none(thresholds[best]),
        "auc": float(roc_auc_score(labels, scores)),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "tar_at_fmr": {},
        "threshold_at_fmr": {},
        "n_mated": n_mated,
        "n_nonmated": n_nonmated,
    }
    for target in FMR_TARGETS:
        allowed = np.nonzero(fpr <= target)[0]
        key = f"{target:.0e}".replace("e-0", "e-")
        i = allowed[np.argmax(tpr[allowed])]
        result["tar_at_fmr"][key] = float(tpr[i])
        result["threshold_at_fmr"][key] = finite_or_none(thresholds[i])
    return result


def _equal_error_rate(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray) -> tuple[float, float | None]:
    """EER by linear interpolation where FMR crosses FNMR on the ROC."""
    fnr = 1 - tpr
    diff = fpr - fnr  # rises from -1 to +1 along the curve
    i = int(np.searchsorted(diff, 0.0))
    if i == 0:
        return float(fpr[0]), finite_or_none(thresholds[0])
    if i >= len(diff):
        return float(fnr[-1]), finite_or_none(thresholds[-1])
    w = -diff[i - 1] / (diff[i] - diff[i - 1])
    eer = fpr[i - 1] + w * (fpr[i] - fpr[i - 1])
    threshold = thresholds[i - 1] + w * (thresholds[i] - thresholds[i - 1]) if np.isfinite(thresholds[i - 1]) else thresholds[i]
    return float(eer), finite_or_none(threshold)


def finite_or_none(value) -> float | None:
    """``value`` as a float, or None when it is infinite or NaN (JSON has neither)."""
    value = float(value)
    return value if np.isfinite(value) else None


def rate_or_none(count: int, total: int) -> float | None:
    """``count`` errors over ``total`` comparisons (searches) as a share in [0, 1], or None when
    ``total`` is 0: a rate over nothing is not defined, and JSON has no NaN."""
    return count / total if total else None


def identification_metrics(
    scores: np.ndarray,
    probe_labels: Sequence[str],
    gallery_labels: Sequence[str],
    *,
    failed_probe_labels: Sequence[str] = (),
) -> dict:
    """Rank-k and FNIR at FPIR from a probe x gallery-identity score matrix.

    Args:
        scores: (P, G) similarity of each probe to each gallery identity.
        probe_labels: P identity labels.
        gallery_labels: G distinct identity labels.
        failed_probe_labels: labels of probes that failed to enrol; mated ones count as misses.
    """
    mate_scores, mate_ranks, nonmated_top = identification_score_sets(scores, probe_labels, gallery_labels)
    known = set(gallery_labels)
    failed_mated = sum(1 for label in failed_probe_labels if label in known)
    n_mated = len(mate_ranks) + failed_mated
    if n_mated == 0:
        raise WorkbenchError("identification needs probes whose identity is in the gallery; none found")
    ranks = np.array(mate_ranks + [np.inf] * failed_mated)
    mates = np.array(mate_scores + [-np.inf] * failed_mated)
    result = {
        "rank1": float(np.mean(ranks <= 1)),
        "rank10": float(np.mean(ranks <= 10)),
        "rank20": float(np.mean(ranks <= 20)),
        "cmc": [float(np.mean(ranks <= k)) for k in range(1, CANDIDATE_LIST_LENGTH + 1)],
        "fnir_at_fpir": {},
        "threshold_at_fpir": {},
        "n_mated": n_mated,
        "n_nonmated_searches": len(nonmated_top),
        "gallery_identities": len(gallery_labels),
    }
    for target in FPIR_TARGETS:
        key = target_key(target, fpir=True)
        threshold = threshold_at_fpir(np.array(nonmated_top), target)
        hit = (ranks <= CANDIDATE_LIST_LENGTH) & (mates >= threshold)
        result["fnir_at_fpir"][key] = float(1 - hit.mean())
        result["threshold_at_fpir"][key] = finite_or_none(threshold)
    return result


def target_key(target: float, *, fpir: bool = False) -> str:
    """The JSON key of a target rate: FMR as "1e-2", "1e-3" (DESIGN.md); FPIR as "0.01", "0.001"."""
    return f"{target:g}" if fpir else f"{target:.0e}".replace("e-0", "e-")


def identification_score_sets(
    scores: np.ndarray, probe_labels: Sequence[str], gallery_labels: Sequence[str]
) -> tuple[list[float], list[int], list[float]]:
    """The searches behind the identification figures, from a probe x gallery-identity matrix.

    Returns ``(mate_scores, mate_ranks, nonmated_top)``: for each probe whose identity is in the
    gallery, its mate's score and rank (1 = top); and the top score of every non-mated search
    (probes not in the gallery, and mated probes searched again without their own identity).
    """
    scores = np.asarray(scores, dtype=np.float64)
    gallery_labels = list(gallery_labels)
    if len(set(gallery_labels)) != len(gallery_labels):
        raise ValueError("gallery labels must be distinct (one column per identity)")
    column = {label: j for j, label in enumerate(gallery_labels)}
    mate_scores, mate_ranks, nonmated_top = [], [], []
    for i, label in enumerate(probe_labels):
        row = scores[i]
        if label in column:
            j = column[label]
            mate_scores.append(float(row[j]))
            mate_ranks.append(1 + int(np.sum(row > row[j])))
            others = np.delete(row, j)
            if others.size:
                nonmated_top.append(float(others.max()))
        elif row.size:
            nonmated_top.append(float(row.max()))
    return mate_scores, mate_ranks, nonmated_top


def threshold_at_fpir(nonmated_top: np.ndarray, target: float) -> float:
    """Lowest threshold at which at most ``target`` of non-mated searches return a candidate."""
    if nonmated_top.size == 0:
        return -np.inf
    ordered = np.sort(nonmated_top)[::-1]
    allowed = int(np.floor(target * len(ordered)))
    if allowed >= len(ordered):
        return -np.inf
    return float(np.nextafter(ordered[allowed], np.inf))
