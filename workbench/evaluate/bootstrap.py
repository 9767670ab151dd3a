"""Figures with percentile confidence intervals from resampling **identities** with replacement.

Not comparisons: the comparisons of one person are correlated (one bad custody photo spoils
all its pairs), so resampling pairs gives intervals that are too narrow. A same-person pair
counts as often as its identity is drawn; a different-person pair as the product of its two
identities' draws. Every replicate computes the figures with these counts as weights; the
point estimate is the same computation with all weights 1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .evidence import false_match_reason, fmr_target_reason, genuine_reason
from .metrics import CANDIDATE_LIST_LENGTH, FMR_TARGETS, FPIR_TARGETS, INVESTIGATION_RANKS, target_key


class _Weighted:
    """Scores sorted ascending with cumulative weights: weighted shares at thresholds in O(log n)."""

    def __init__(self, scores: np.ndarray):
        self.order = np.argsort(scores, kind="stable")
        self.scores = scores[self.order]
        self.unique = np.unique(self.scores)
        self.right = np.searchsorted(self.scores, self.unique, side="right")

    def cumulative(self, weights: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(weights[self.order], dtype=np.float64)])

    def share_at_or_above(self, cum: np.ndarray, thresholds) -> np.ndarray:
        total = cum[-1]
        below = cum[np.searchsorted(self.scores, np.asarray(thresholds, dtype=np.float64), side="left")]
        return (total - below) / total if total > 0 else np.full(np.shape(thresholds), np.nan)

    def threshold_at(self, cum: np.ndarray, target: float) -> float:
        """Lowest threshold at which at most ``target`` of the weight scores at or above it."""
        total = cum[-1]
        if total <= 0 or not len(self.unique):
            return np.nan
        if target >= 1:
            return -np.inf
        allowed = target * total * (1 + 1e-12)
        above = total - cum[self.right]  # weight strictly above each distinct score: falls to 0 at the top
        first = int(np.argmax(above <= allowed))
        return float(np.nextafter(self.unique[first], np.inf))


def _eer(gen: _Weighted, gen_cum: np.ndarray, imp: _Weighted, imp_cum: np.ndarray) -> float:
    """EER by linear interpolation where FMR (falling) crosses FNMR (rising) over every score."""
    thresholds = np.union1d(gen.unique, imp.unique)
    thresholds = np.append(thresholds, np.inf)
    fmr = imp.share_at_or_above(imp_cum, thresholds)
    fnmr = 1.0 - gen.share_at_or_above(gen_cum, thresholds)
    diff = fmr - fnmr
    i = int(np.argmax(diff <= 0))
    if diff[i] > 0:
        return float("nan")
    if i == 0:
        return float(fmr[0])
    w = diff[i - 1] / (diff[i - 1] - diff[i])
    return float(fmr[i - 1] + w * (fmr[i] - fmr[i - 1]))


def _verification_figures(gen, gen_w, imp, imp_w, threshold, targets) -> dict[str, float]:
    gen_cum, imp_cum = gen.cumulative(gen_w), imp.cumulative(imp_w)
    figures = {"EER": _eer(gen, gen_cum, imp, imp_cum)}
    for target in targets:
        key = target_key(target)
        t = imp.threshold_at(imp_cum, target)
        figures[f"threshold at FMR {key}"] = t if np.isfinite(t) else np.nan
        figures[f"FNMR at FMR {key}"] = float(1.0 - gen.share_at_or_above(gen_cum, [t])[0]) if not np.isnan(t) else np.nan
    if threshold is not None:
        figures["FMR at threshold"] = float(imp.share_at_or_above(imp_cum, [threshold])[0])
        figures["FNMR at threshold"] = float(1.0 - gen.share_at_or_above(gen_cum, [threshold])[0])
    return figures


def _verification_reasons(genuine: int, impostor: int, false_matches: int | None, targets) -> dict[str, str | None]:
    reasons = {"EER": genuine_reason(genuine) or (f"rests on {impostor:,} different-person comparisons; at least 30 are needed"
                                                     if impostor < 30 else None)}  # fmt: skip
    for target in targets:
        key = target_key(target)
        reasons[f"threshold at FMR {key}"] = fmr_target_reason(target, impostor)
        reasons[f"FNMR at FMR {key}"] = fmr_target_reason(target, impostor) or genuine_reason(genuine)
    if false_matches is not None:
        reasons["FMR at threshold"] = false_match_reason(false_matches, impostor)
        reasons["FNMR at threshold"] = genuine_reason(genuine)
    return reasons


def redraw(n: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``n`` items is drawn in a resample of size ``n`` with replacement."""
    return rng.multinomial(n, np.full(n, 1.0 / n)).astype(np.float64) if n else np.zeros(0)


def identity_draws(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Integer codes of each comparison's two identities, or None when any is unknown."""
    a, b = frame["identity_a"], frame["identity_b"]
    if a.isna().any() or b.isna().any():
        return None
    codes, labels = pd.factorize(pd.concat([a, b], ignore_index=True).astype(str))
    n = len(frame)
    return codes[:n], codes[n:], len(labels)


def _interval_table(point, replicates, reasons, *, level, counts, method, n_boot) -> pd.DataFrame:
    rows = []
    alpha = (1 - level) / 2
    for name, value in point.items():
        reason = reasons.get(name)
        samples = np.array([r[name] for r in replicates], dtype=np.float64)
        samples = samples[np.isfinite(samples)]
        low = high = np.nan
        if reason is None and len(samples):
            low, high = (float(v) for v in np.quantile(samples, [alpha, 1 - alpha]))
        if reason is None and not np.isfinite(value):
            reason = "not defined on this data"
        rows.append(
            {
                "figure": name,
                "value": np.nan if reason else float(value),
                "low": np.nan if reason else low,
                "high": np.nan if reason else high,
                "level": level,
                **counts,
                "bootstrap": n_boot,
                "resampled": method,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows)


def bootstrap_verification(
    frame: pd.DataFrame,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    threshold: float | None = None,
    fmr_targets: Sequence[float] = FMR_TARGETS,
) -> pd.DataFrame:
    """Verification figures with percentile confidence intervals from resampling identities.

    Figures: ``EER``; for each FMR target, ``threshold at FMR 1e-3`` and ``FNMR at FMR 1e-3``
    (the threshold re-derived in every replicate, so its interval says how well this data pins
    the operating point down); with ``threshold``, ``FMR at threshold`` and ``FNMR at threshold``.

    Returns one row per figure: ``figure``, ``value`` (the estimate on all the data), ``low``,
    ``high``, ``level``, ``genuine``, ``impostor``, ``identities`` (what it rests on),
    ``bootstrap`` (replicates), ``resampled`` (``"identities"``, or ``"comparisons"`` when the
    identities are not known), ``reason`` (why the figure is null, or None). ``n_boot=0``
    gives the estimates without intervals.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    mated = frame["mated"].to_numpy(bool)
    scores = frame["score"].to_numpy(np.float64)
    gen, imp = _Weighted(scores[mated]), _Weighted(scores[~mated])
    genuine, impostor = int(mated.sum()), int((~mated).sum())
    false_matches = None if threshold is None else int(np.sum(scores[~mated] >= threshold))
    ones_g, ones_i = np.ones(genuine), np.ones(impostor)
    point = _verification_figures(gen, ones_g, imp, ones_i, threshold, fmr_targets)
    draws = identity_draws(frame)
    rng = np.random.default_rng(seed)
    replicates = []
    if draws is not None:
        code_a, code_b, n_ids = draws
        ga, ia, ib = code_a[mated], code_a[~mated], code_b[~mated]
        for _ in range(n_boot):
            m = redraw(n_ids, rng)
            replicates.append(_verification_figures(gen, m[ga], imp, m[ia] * m[ib], threshold, fmr_targets))
        method = "identities"
    else:
        n_ids = 0
        for _ in range(n_boot):
            replicates.append(_verification_figures(gen, redraw(genuine, rng), imp, redraw(impostor, rng), threshold, fmr_targets))
        method = "comparisons (identities not known)"
    reasons = _verification_reasons(genuine, impostor, false_matches, fmr_targets)
    counts = {"genuine": genuine, "impostor": impostor, "identities": n_ids}
    return _interval_table(point, replicates, reasons, level=level, counts=counts, method=method, n_boot=n_boot)


def _identification_figures(mate_scores, mate_ranks, mate_w, top: _Weighted, top_w, threshold, targets) -> dict[str, float]:
    total = mate_w.sum()
    top_cum = top.cumulative(top_w)
    figures = {}
    for r in INVESTIGATION_RANKS:
        figures[f"FNIR at rank {r}, threshold 0"] = float(np.sum(mate_w * ~(mate_ranks <= r)) / total) if total else np.nan
    for target in targets:
        key = target_key(target, fpir=True)
        t = top.threshold_at(top_cum, target)
        figures[f"threshold at FPIR {key}"] = t if np.isfinite(t) else np.nan
        hit = (mate_ranks <= CANDIDATE_LIST_LENGTH) & (mate_scores >= t)
        figures[f"FNIR at FPIR {key}"] = float(np.sum(mate_w * ~hit) / total) if total and not np.isnan(t) else np.nan
    if threshold is not None:
        figures["FPIR at threshold"] = float(top.share_at_or_above(top_cum, [threshold])[0])
        hit = (mate_ranks <= CANDIDATE_LIST_LENGTH) & (mate_scores >= threshold)
        figures["FNIR at threshold"] = float(np.sum(mate_w * ~hit) / total) if total else np.nan
    return figures


def bootstrap_identification(
    searches: pd.DataFrame,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    threshold: float | None = None,
    fpir_targets: Sequence[float] = FPIR_TARGETS,
) -> pd.DataFrame:
    """Identification figures with percentile intervals from resampling probe identities.

    Figures: ``FNIR at rank 1, threshold 0`` and ``... rank 20 ...`` (investigation mode), for
    each FPIR target the threshold and ``FNIR at FPIR 0.01`` (identification mode, top 20), and
    with ``threshold`` ``FPIR at threshold`` and ``FNIR at threshold``. Columns as
    :func:`bootstrap_verification` (``genuine``: mated searches; ``impostor``: non-mated ones).
    """
    mated = searches["mated"].to_numpy(bool)
    mate_scores = searches.loc[mated, "mate_score"].to_numpy(np.float64)
    mate_ranks = searches.loc[mated, "mate_rank"].to_numpy(np.float64)
    tops = searches.loc[~mated, "top_score"].to_numpy(np.float64)
    top = _Weighted(tops)
    n_mated, n_non = int(mated.sum()), int((~mated).sum())
    point = _identification_figures(mate_scores, mate_ranks, np.ones(n_mated), top, np.ones(n_non), threshold, fpir_targets)
    codes, labels = pd.factorize(searches["identity"].astype(str))
    n_ids = len(labels)
    rng = np.random.default_rng(seed)
    replicates = []
    for _ in range(n_boot):
        m = redraw(n_ids, rng)
        replicates.append(
            _identification_figures(mate_scores, mate_ranks, m[codes[mated]], top, m[codes[~mated]], threshold, fpir_targets)
        )
    reasons: dict[str, str | None] = {}
    searches_what = ("mated searches", "non-mated searches")
    for r in INVESTIGATION_RANKS:
        reasons[f"FNIR at rank {r}, threshold 0"] = genuine_reason(n_mated, searches_what[0])
    for target in fpir_targets:
        key = target_key(target, fpir=True)
        reasons[f"threshold at FPIR {key}"] = fmr_target_reason(target, n_non, searches_what[1])
        reasons[f"FNIR at FPIR {key}"] = reasons[f"threshold at FPIR {key}"] or genuine_reason(n_mated, searches_what[0])
    if threshold is not None:
        reasons["FPIR at threshold"] = false_match_reason(int(np.sum(tops >= threshold)), n_non, searches_what[1])
        reasons["FNIR at threshold"] = genuine_reason(n_mated, searches_what[0])
    counts = {"genuine": n_mated, "impostor": n_non, "identities": n_ids}
    return _interval_table(point, replicates, reasons, level=level, counts=counts, method="identities", n_boot=n_boot)
