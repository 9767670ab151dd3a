"""Identification, open set, as one row per search: FNIR at rank R and threshold T, FPIR at T,
and the CMC, as NIST FRTE 1:N reports them. A mated probe is also searched again without its
own identity, so that a closed set still yields non-mated searches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from .metrics import CANDIDATE_LIST_LENGTH, rate_or_none


def identification_searches(
    scores: np.ndarray,
    probe_labels: Sequence[str],
    gallery_labels: Sequence[str],
    *,
    qualities: Sequence[float | None] | None = None,
    iods: Sequence[float | None] | None = None,
    failed_probe_labels: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per search: ``identity`` (the probe's), ``mated`` (True: the probe's identity is
    in the gallery and this is its search; False: a non-mated search: a probe not in the
    gallery, or a mated probe searched again without its own identity), ``mate_score`` and
    ``mate_rank`` (mated searches; a probe that failed to enrol scores -inf at rank inf),
    ``top_score`` (the best score of a non-mated search), ``quality``, ``iod``."""
    scores = np.asarray(scores, dtype=np.float64)
    gallery_labels = list(gallery_labels)
    column = {label: j for j, label in enumerate(gallery_labels)}
    if len(column) != len(gallery_labels):
        raise ValueError("gallery labels must be distinct (one column per identity)")
    n = len(probe_labels)
    qualities = [None] * n if qualities is None else list(qualities)
    iods = [None] * n if iods is None else list(iods)
    rows = []
    for i, label in enumerate(probe_labels):
        q = np.nan if qualities[i] is None else float(qualities[i])
        d = np.nan if iods[i] is None else float(iods[i])
        row = scores[i]
        if label in column:
            j = column[label]
            rows.append({"identity": label, "mated": True, "mate_score": float(row[j]), "mate_rank": float(1 + np.sum(row > row[j])),
                         "top_score": np.nan, "quality": q, "iod": d})  # fmt: skip
            others = np.delete(row, j)
            if others.size:
                rows.append({"identity": label, "mated": False, "mate_score": np.nan, "mate_rank": np.nan,
                             "top_score": float(others.max()), "quality": q, "iod": d})  # fmt: skip
        elif row.size:
            rows.append({"identity": label, "mated": False, "mate_score": np.nan, "mate_rank": np.nan,
                         "top_score": float(row.max()), "quality": q, "iod": d})  # fmt: skip
    for label in failed_probe_labels:
        if label in column:
            rows.append({"identity": label, "mated": True, "mate_score": -np.inf, "mate_rank": np.inf,
                         "top_score": np.nan, "quality": np.nan, "iod": np.nan})  # fmt: skip
    return pd.DataFrame(rows, columns=["identity", "mated", "mate_score", "mate_rank", "top_score", "quality", "iod"])


def searches_frame(result: dict) -> pd.DataFrame:
    """:func:`identification_searches` of an :func:`evaluate_identification` result made with
    ``return_scores``."""
    if "scores" not in result:
        raise WorkbenchError("the evaluation was run without its scores: call evaluate_identification(..., return_scores=True)")
    return identification_searches(
        np.asarray(result["scores"]), result["probe_labels"], result["gallery_labels"],
        qualities=result.get("probe_qualities"), iods=result.get("probe_iods"), failed_probe_labels=result.get("failed_probe_labels", ()),
    )  # fmt: skip


def open_set_rates(searches: pd.DataFrame, threshold: float, *, rank: int = CANDIDATE_LIST_LENGTH) -> dict:
    """FNIR at rank ``rank`` and ``threshold`` (the mate is not in the top ``rank`` at or above
    the threshold) and FPIR at ``threshold`` (a non-mated search returns any candidate at or
    above it), with the numbers of searches behind them."""
    mated, nonmated = searches[searches["mated"]], searches[~searches["mated"]]
    misses = int(np.sum(~((mated["mate_rank"] <= rank) & (mated["mate_score"] >= threshold))))
    false_alarms = int(np.sum(nonmated["top_score"] >= threshold))
    return {
        "threshold": float(threshold),
        "rank": int(rank),
        "fnir": rate_or_none(misses, len(mated)),
        "fpir": rate_or_none(false_alarms, len(nonmated)),
        "misses": misses,
        "false_alarms": false_alarms,
        "mated_searches": len(mated),
        "nonmated_searches": len(nonmated),
    }


def cmc_table(searches: pd.DataFrame, *, max_rank: int = CANDIDATE_LIST_LENGTH) -> pd.DataFrame:
    """Cumulative match characteristic: ``rank`` k, ``identification_rate`` (mate at rank k or
    better, any score), ``mated_searches``."""
    ranks = searches.loc[searches["mated"], "mate_rank"].to_numpy(np.float64)
    return pd.DataFrame(
        {
            "rank": np.arange(1, max_rank + 1),
            "identification_rate": [float(np.mean(ranks <= k)) if len(ranks) else np.nan for k in range(1, max_rank + 1)],
            "mated_searches": len(ranks),
        }
    )
