"""Comparisons as a table: one row per comparison (score, mated, identities, quality), the table
every other figure reads; FMR and FNMR at thresholds (ISO/IEC 19795-1 terms), the DET curve as a
table and the threshold for a target FMR; and the rates at one threshold from plain score lists."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from .metrics import finite_or_none, rate_or_none, threshold_at_fpir


def comparisons_frame(
    scores: Sequence[float],
    same: Sequence[int],
    *,
    identity_a: Sequence[str | None] | None = None,
    identity_b: Sequence[str | None] | None = None,
    quality_a: Sequence[float | None] | None = None,
    quality_b: Sequence[float | None] | None = None,
    iod_a: Sequence[float | None] | None = None,
    iod_b: Sequence[float | None] | None = None,
) -> pd.DataFrame:
    """One row per comparison: ``score`` (cosine), ``mated`` (bool), ``identity_a``,
    ``identity_b`` (None when not known), ``quality`` and ``iod`` (the lower of the two faces'
    quality score and inter-ocular distance in px; NaN when not known or a face failed)."""
    scores = np.asarray(scores, dtype=np.float64)
    mated = np.asarray(same, dtype=int)
    if scores.shape != mated.shape or scores.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of equal length, got {scores.shape} and {mated.shape}")
    if np.any((mated != 0) & (mated != 1)):
        raise ValueError("labels must be 1 (same person) or 0 (different people)")
    n = len(scores)

    def column(values, fill):
        if values is None:
            return [fill] * n
        values = list(values)
        if len(values) != n:
            raise ValueError(f"every per-comparison column needs {n} values, got {len(values)}")
        return values

    def lower(a, b):  # a pair is as good as its worse face; unknown if either is unknown
        a = np.array([np.nan if v is None else v for v in column(a, None)], dtype=np.float64)
        b = np.array([np.nan if v is None else v for v in column(b, None)], dtype=np.float64)
        return np.where(np.isnan(a) | np.isnan(b), np.nan, np.minimum(a, b))

    return pd.DataFrame(
        {
            "score": scores,
            "mated": mated.astype(bool),
            "identity_a": pd.Series(column(identity_a, None), dtype=object),
            "identity_b": pd.Series(column(identity_b, None), dtype=object),
            "quality": lower(quality_a, quality_b),
            "iod": lower(iod_a, iod_b),
        }
    )


def pairs_frame(result: dict) -> pd.DataFrame:
    """:func:`comparisons_frame` of an :func:`evaluate_pairs` result made with ``return_scores``."""
    if "scores" not in result:
        raise WorkbenchError("the evaluation was run without its scores: call evaluate_pairs(..., return_scores=True)")
    frame = comparisons_frame(
        result["scores"], result["labels"],
        **{key: result.get(key) for key in ("identity_a", "identity_b", "quality_a", "quality_b", "iod_a", "iod_b")},
    )  # fmt: skip
    if "paths" in result:
        frame.insert(0, "a", [a for a, _ in result["paths"]])
        frame.insert(1, "b", [b for _, b in result["paths"]])
    return frame


def _split_frame(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    mated = frame["mated"].to_numpy(bool)
    scores = frame["score"].to_numpy(np.float64)
    return scores[mated], scores[~mated]


def rates(frame: pd.DataFrame, thresholds: Sequence[float]) -> pd.DataFrame:
    """FMR and FNMR at each threshold (a comparison matches when its score is at or above it),
    with the counts behind them: columns ``threshold``, ``fmr``, ``fnmr``, ``false_matches``,
    ``false_non_matches``, ``genuine``, ``impostor``."""
    mated, nonmated = _split_frame(frame)
    rows = []
    for t in thresholds:
        fm, fnm = int(np.sum(nonmated >= t)), int(np.sum(mated < t))
        rows.append(
            {
                "threshold": float(t),
                "fmr": fm / len(nonmated) if len(nonmated) else np.nan,
                "fnmr": fnm / len(mated) if len(mated) else np.nan,
                "false_matches": fm,
                "false_non_matches": fnm,
                "genuine": len(mated),
                "impostor": len(nonmated),
            }
        )
    return pd.DataFrame(rows)


def det_table(frame: pd.DataFrame) -> pd.DataFrame:
    """FMR and FNMR at every distinct score (ascending thresholds): the DET curve as a table."""
    mated, nonmated = _split_frame(frame)
    thresholds = np.unique(frame["score"].to_numpy(np.float64))
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "fmr": _share_at_or_above(np.sort(nonmated), thresholds),
            "fnmr": 1.0 - _share_at_or_above(np.sort(mated), thresholds),
        }
    )


def _share_at_or_above(sorted_scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    if not len(sorted_scores):
        return np.full(len(thresholds), np.nan)
    return 1.0 - np.searchsorted(sorted_scores, thresholds, side="left") / len(sorted_scores)


def threshold_at_fmr(frame: pd.DataFrame, target: float) -> float | None:
    """The lowest threshold at which at most ``target`` of the different-person comparisons
    match (just above a non-mated score); None when every threshold does (target >= 1)."""
    _, nonmated = _split_frame(frame)
    return finite_or_none(threshold_at_fpir(nonmated, target))


def split_scores(scores: Sequence[float], same: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(mated scores, non-mated scores) of a score list and its labels (1 same person, 0 not)."""
    scores, same = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=int)
    if scores.shape != same.shape or scores.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of equal length, got {scores.shape} and {same.shape}")
    return scores[same == 1], scores[same == 0]


def rates_at_threshold(scores: Sequence[float], same: Sequence[int], threshold: float) -> dict:
    """False match rate (non-mated scores >= threshold) and false non-match rate (mated scores
    below it) at one threshold, with the counts behind them."""
    mated, nonmated = split_scores(scores, same)
    false_matches, misses = int(np.sum(nonmated >= threshold)), int(np.sum(mated < threshold))
    return {
        "threshold": float(threshold),
        "fmr": rate_or_none(false_matches, len(nonmated)),
        "fnmr": rate_or_none(misses, len(mated)),
        "false_matches": false_matches,
        "false_non_matches": misses,
        "n_mated": len(mated),
        "n_nonmated": len(nonmated),
    }
