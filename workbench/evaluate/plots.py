"""Plots: matplotlib figures for technical staff (made, never shown or saved here); the one
module that imports matplotlib. The object-oriented Figure is used, not pyplot, so no global
figure state is touched and plots can be drawn in a dashboard's worker thread."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from .comparisons import split_scores
from .groups import ACROSS_GROUPS
from .metrics import FMR_TARGETS


def _figure(width_in: float = 5.6, height_in: float = 3.8):
    from matplotlib.figure import Figure  # only callers that plot pay for matplotlib

    return Figure(figsize=(width_in, height_in), layout="constrained")


def plot_score_distributions(
    scores: Sequence[float],
    same: Sequence[int],
    *,
    thresholds: dict[str, float | None] | None = None,
    title: str = "Comparison scores",
    mated_label: str = "same person (mated)",
    nonmated_label: str = "different people (non-mated)",
):
    """Histograms of mated and non-mated scores (cosine on x, share of each group on y), with a
    vertical line at each named threshold (None values are skipped)."""
    mated, nonmated = split_scores(scores, same)
    fig = _figure()
    ax = fig.add_subplot()
    bins = np.linspace(min(-0.2, float(np.min(scores, initial=0))), 1.0, 49)
    for values, label, colour in ((nonmated, nonmated_label, "tab:red"), (mated, mated_label, "tab:blue")):
        if len(values):
            share = np.full(len(values), 1 / len(values))  # each group sums to 1, whatever its size
            ax.hist(values, bins=bins, weights=share, alpha=0.55, color=colour, label=f"{label}, n={len(values)}")
    for (name, value), style in zip((thresholds or {}).items(), ("-", "--", ":", "-.")):
        if value is not None:
            ax.axvline(value, color="black", linestyle=style, linewidth=1, label=f"{name}: {value:.3f}")
    ax.set(xlabel="similarity score (cosine)", ylabel="share of each group", title=title)
    ax.legend(fontsize="small")
    return fig


def plot_roc(scores: Sequence[float], same: Sequence[int], *, title: str = "ROC: true match rate against false match rate"):
    """ROC with the false match rate on a log axis (where operating points lie), FMR targets marked."""
    split_scores(scores, same)
    fpr, tpr, _ = roc_curve(np.asarray(same, dtype=int), np.asarray(scores, dtype=np.float64))
    floor = 0.5 / max(1, int(np.sum(np.asarray(same) == 0)))  # FMR 0 drawn at half the smallest measurable rate
    fig = _figure()
    ax = fig.add_subplot()
    ax.step(np.maximum(fpr, floor), tpr, where="post", color="tab:blue")
    for target in FMR_TARGETS:
        ax.axvline(target, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set(xlim=(floor, 1.0), ylim=(0.0, 1.02), xlabel="false match rate (log)", ylabel="true match rate", title=title)
    ax.grid(alpha=0.3)
    return fig


def plot_det(
    scores: Sequence[float],
    same: Sequence[int],
    *,
    operating: dict[str, float | None] | None = None,
    title: str = "DET: false non-match rate against false match rate",
):
    """DET curve, both rates on log axes; a rate of 0 is drawn at half the smallest measurable one.

    ``operating``: named thresholds (None values skipped) marked on the curve at their FMR and
    FNMR on this data, e.g. ``{"operating threshold v3": 0.45}``.
    """
    mated, nonmated = split_scores(scores, same)
    fpr, tpr, _ = roc_curve(np.asarray(same, dtype=int), np.asarray(scores, dtype=np.float64))
    fmr_floor, fnmr_floor = 0.5 / max(1, len(nonmated)), 0.5 / max(1, len(mated))
    fig = _figure()
    ax = fig.add_subplot()
    ax.step(np.maximum(fpr, fmr_floor), np.maximum(1 - tpr, fnmr_floor), where="post", color="tab:purple")
    for (name, value), marker in zip((operating or {}).items(), ("o", "s", "^", "D")):
        if value is None:
            continue
        fmr = float(np.mean(nonmated >= value)) if len(nonmated) else 0.0
        fnmr = float(np.mean(mated < value)) if len(mated) else 0.0
        ax.plot(max(fmr, fmr_floor), max(fnmr, fnmr_floor), marker=marker, color="black", linestyle="none",
                label=f"{name} {value:.3f}: FMR {fmr:.2%}, FNMR {fnmr:.2%}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlim=(fmr_floor, 1.0), ylim=(fnmr_floor, 1.0), xlabel="false match rate (log)", ylabel="false non-match rate (log)", title=title)
    ax.grid(alpha=0.3, which="both")
    if operating and any(v is not None for v in operating.values()):
        ax.legend(fontsize="small")
    return fig


def plot_cmc(cmc: Sequence[float], *, title: str = "CMC: mate found within the top k"):
    """Cumulative match characteristic: share of mated searches whose mate is at rank k or better."""
    ranks = np.arange(1, len(cmc) + 1)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(ranks, cmc, marker="o", color="tab:green")
    ax.set(xlim=(0.5, len(cmc) + 0.5), ylim=(0.0, 1.02), xlabel="rank k", ylabel="identification rate", title=title)
    ax.set_xticks(ranks[:: max(1, len(ranks) // 10)])
    ax.grid(alpha=0.3)
    return fig


def plot_group_rates(table: pd.DataFrame, *, column: str | None = None, title: str | None = None):
    """Bars of FMR (FPIR) and FNMR (FNIR) per group of one metadata column at the table's
    threshold (:func:`group_table`), each labelled with the comparisons it rests on. A rate that
    is null (too few comparisons) is drawn as an empty hatched bar marked "too few", never left out."""
    column = column or str(table["column"].iloc[0])
    part = table[table["column"] == column]
    fig = _figure(6.4, 3.8)
    axes = fig.subplots(1, 2)
    threshold = float(part["threshold"].iloc[0]) if len(part) else float("nan")
    for ax, rate, count, name, colour in (
        (axes[0], "fmr", "impostor", "false match rate", "tab:red"),
        (axes[1], "fnmr", "genuine", "false non-match rate", "tab:blue"),
    ):
        shown = part if rate == "fmr" else part[part["group"] != ACROSS_GROUPS]  # no same-person pair is across groups
        labels = [str(g) for g in shown["group"]]
        values = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in shown[rate]]
        known = [v for v in values if v is not None]
        top = max(known) * 1.25 if known and max(known) > 0 else (0.01 if known else 1.0)
        if not known:
            ax.set_yticks([])
        for x, (value, n) in enumerate(zip(values, shown[count])):
            if value is None:
                ax.bar(x, top, color="none", edgecolor="grey", hatch="//")
                ax.text(x, top / 2, f"too few\nn={n}", ha="center", va="center", fontsize="x-small", color="dimgrey")
            else:
                ax.bar(x, value, color=colour, alpha=0.75)
                ax.text(x, value, f"{value:.2%}\nn={n}", ha="center", va="bottom", fontsize="x-small")
        ax.set_xticks(range(len(labels)), labels, rotation=30 if max(map(len, labels), default=0) > 6 else 0, fontsize="small")
        ax.set(ylim=(0, top * 1.3), ylabel=name, title=name)
    fig.suptitle(title or f"By {column} at threshold {threshold:.3f}")
    return fig


def plot_quality(table: pd.DataFrame, *, title: str = "FNMR as low-quality probes are excluded"):
    """FNMR (left axis) and the share of comparisons excluded (right axis) against the minimum
    quality (:func:`quality_table`, one ``by`` value)."""
    fig = _figure()
    ax = fig.add_subplot()
    fnmr = [np.nan if v is None else float(v) for v in table["fnmr"]]
    ax.plot(table["minimum"], fnmr, marker="o", color="tab:blue", label="false non-match rate")
    ax.set(xlabel=f"minimum {'quality score' if table['by'].iloc[0] == 'quality' else 'eye distance (px)'}",
           ylabel="false non-match rate", title=title)  # fmt: skip
    twin = ax.twinx()
    twin.plot(table["minimum"], table["excluded_share"], marker=".", linestyle="--", color="grey", label="share excluded")
    twin.set(ylabel="share of comparisons excluded", ylim=(0, 1))
    ax.grid(alpha=0.3)
    fig.legend(loc="upper center", fontsize="small")
    return fig
