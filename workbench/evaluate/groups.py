"""Rates per group of any metadata column (sex, age band, any code the unit keeps).

:func:`group_table` and :func:`group_ratios`: FMR (FPIR) and FNMR (FNIR) per group at one
threshold, and the ratio of the worst group to the best. Different-person comparisons count
for a group when **both** people are in it (demographically matched impostors, as NIST FRTE
reports them: they are the ones that produce false matches); pairs across groups have a row of
their own. :func:`identification_group_table` does the same per group of the probe's identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from .bootstrap import identity_draws, redraw
from .evidence import fmr_target_reason, genuine_reason, joined_reason
from .metrics import CANDIDATE_LIST_LENGTH
from .open_set import open_set_rates

#: label of the rows of different-person pairs whose two people are in different groups.
ACROSS_GROUPS = "(across groups)"
#: label of identities the metadata does not list, or lists without a value.
NOT_RECORDED = "(not recorded)"


def read_groups(path: str | Path) -> pd.DataFrame:
    """A metadata CSV: a column ``identity`` and any metadata columns (sex, age band, any code the
    unit keeps). Returns a frame indexed by identity, every value as text; blanks are
    :data:`NOT_RECORDED`.

    Raises:
        WorkbenchError: no such file, no ``identity`` column, no metadata column, or an identity
            listed twice.
    """
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such groups file (a CSV with a column identity and metadata columns)")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"{path}: cannot be read as a CSV ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if "identity" not in frame.columns:
        raise WorkbenchError(f"{path}: needs a column 'identity' (got {', '.join(frame.columns) or 'no columns'})")
    if len(frame.columns) < 2:
        raise WorkbenchError(f"{path}: holds no metadata column besides 'identity'")
    frame["identity"] = frame["identity"].str.strip()
    twice = sorted(frame["identity"][frame["identity"].duplicated()].unique())
    if twice:
        raise WorkbenchError(f"{path}: identities listed more than once: {', '.join(twice[:5])}")
    frame = frame.set_index("identity")
    return frame.apply(lambda c: c.str.strip().replace("", NOT_RECORDED))


def _metadata_columns(groups: pd.DataFrame, columns: Sequence[str] | None) -> list[str]:
    """The metadata columns to break the rates down by: ``columns``, or every column of
    ``groups`` when None. Raises WorkbenchError naming any column ``groups`` lacks."""
    columns = list(groups.columns) if columns is None else list(columns)
    unknown = [c for c in columns if c not in groups.columns]
    if unknown:
        raise WorkbenchError(f"no metadata column {', '.join(unknown)}; the groups file has {', '.join(groups.columns)}")
    return columns


def _group_of(identities: pd.Series, groups: pd.DataFrame, column: str) -> pd.Series:
    mapping = groups[column].to_dict()
    return identities.map(lambda i: mapping.get(str(i), NOT_RECORDED) if i is not None else NOT_RECORDED)


def _group_row(column, group, threshold, *, genuine, false_non_matches, impostor, false_matches, target, what) -> dict:
    """One row of a group table: rates, counts, and why a rate is null."""
    genuine_what, impostor_what = what
    fnmr_reason = genuine_reason(genuine, genuine_what) if genuine else f"no {genuine_what}"
    if impostor == 0:
        fmr_reason = f"no {impostor_what}"
    elif target is None or target <= 0:
        fmr_reason = "no false match at this threshold overall: the rate per group cannot be estimated"
    else:
        fmr_reason = fmr_target_reason(target, impostor, impostor_what)
    reason = joined_reason(("FMR", fmr_reason), ("FNMR", fnmr_reason))
    return {
        "column": column,
        "group": group,
        "threshold": float(threshold),
        "fmr": None if fmr_reason else false_matches / impostor,
        "fnmr": None if fnmr_reason else false_non_matches / genuine,
        "genuine": int(genuine),
        "impostor": int(impostor),
        "false_matches": int(false_matches),
        "false_non_matches": int(false_non_matches),
        "fmr_reason": fmr_reason,
        "fnmr_reason": fnmr_reason,
        "reason": reason or None,
    }


def group_table(
    frame: pd.DataFrame,
    groups: pd.DataFrame,
    threshold: float,
    *,
    target_fmr: float | None = None,
    columns: Sequence[str] | None = None,
    n_boot: int = 0,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """FMR and FNMR per group of each metadata column at ``threshold``.

    A same-person pair counts for its person's group; a different-person pair for a group when
    both people are in it, and in an :data:`ACROSS_GROUPS` row otherwise. An FMR needs at least
    3/``target_fmr`` different-person comparisons in the group (default target: the FMR at
    ``threshold`` over all the data), an FNMR at least 30 same-person ones: below that the rate
    is None and ``reason`` says why; the counts are always there. With ``n_boot`` replicates
    (identities resampled) each rate gets a percentile interval, and :func:`group_ratios` one
    for the ratio: a group holds few people, and a ratio of two small counts is uncertain.

    Returns columns ``column``, ``group``, ``threshold``, ``fmr``, ``fnmr``, ``genuine``,
    ``impostor``, ``false_matches``, ``false_non_matches``, ``fmr_reason``, ``fnmr_reason``,
    ``reason``, ``fmr_low``, ``fmr_high``, ``fnmr_low``, ``fnmr_high``; one row per group,
    groups sorted, the across-groups row last.
    """
    if frame["identity_a"].isna().any() or frame["identity_b"].isna().any():
        raise WorkbenchError("per-group figures need each comparison's identities (pairs as identity/file paths)")
    columns = _metadata_columns(groups, columns)
    mated = frame["mated"].to_numpy(bool)
    scores = frame["score"].to_numpy(np.float64)
    if target_fmr is None:
        target_fmr = float(np.mean(scores[~mated] >= threshold)) if (~mated).any() else None
    what = ("same-person comparisons", "different-person comparisons")
    rows, masks = [], []
    for column in columns:
        ga, gb = _group_of(frame["identity_a"], groups, column).to_numpy(), _group_of(frame["identity_b"], groups, column).to_numpy()
        for group in sorted(set(ga) | set(gb)):
            g_mask = mated & (ga == group)
            i_mask = ~mated & (ga == group) & (gb == group)
            masks.append((g_mask, i_mask))
            rows.append(
                _group_row(
                    column, group, threshold, genuine=int(g_mask.sum()), false_non_matches=int(np.sum(scores[g_mask] < threshold)),
                    impostor=int(i_mask.sum()), false_matches=int(np.sum(scores[i_mask] >= threshold)), target=target_fmr, what=what,
                )
            )  # fmt: skip
        across = ~mated & (ga != gb)
        if across.any():
            row = _group_row(
                column, ACROSS_GROUPS, threshold, genuine=0, false_non_matches=0, impostor=int(across.sum()),
                false_matches=int(np.sum(scores[across] >= threshold)), target=target_fmr, what=what,
            )  # fmt: skip
            row["fnmr_reason"] = "same-person comparisons are never across groups"
            row["reason"] = joined_reason(("FMR", row["fmr_reason"]), ("FNMR", row["fnmr_reason"]))
            rows.append(row)
            masks.append((np.zeros(len(frame), bool), across))
    table = pd.DataFrame(rows, columns=_GROUP_COLUMNS)
    code_a, code_b, n_ids = identity_draws(frame)

    def weights(rng):
        m = redraw(n_ids, rng)
        return np.where(mated, m[code_a], m[code_a] * m[code_b])

    errors = (mated & (scores < threshold), ~mated & (scores >= threshold))
    return _group_intervals(table, masks, errors, weights, n_boot=n_boot, seed=seed, level=level)


_GROUP_COLUMNS = [
    "column", "group", "threshold", "fmr", "fnmr", "genuine", "impostor", "false_matches", "false_non_matches",
    "fmr_reason", "fnmr_reason", "reason", "fmr_low", "fmr_high", "fnmr_low", "fnmr_high",
]  # fmt: skip


def _group_intervals(table, masks, errors, weights, *, n_boot, seed, level) -> pd.DataFrame:
    """Percentile intervals of each group's rates over ``n_boot`` weightings (``weights(rng)``:
    one weight per comparison or search); the replicates go to ``table.attrs["replicates"]``
    for :func:`group_ratios`. Rates that are null stay without an interval."""
    misses, false_matches = errors
    draws = {"fnmr": np.full((n_boot, len(table)), np.nan), "fmr": np.full((n_boot, len(table)), np.nan)}
    rng = np.random.default_rng(seed)
    for r in range(n_boot):
        w = weights(rng)
        for i, (g_mask, i_mask) in enumerate(masks):
            wg, wi = w[g_mask].sum(), w[i_mask].sum()
            if wg:
                draws["fnmr"][r, i] = (w[g_mask] * misses[g_mask]).sum() / wg
            if wi:
                draws["fmr"][r, i] = (w[i_mask] * false_matches[i_mask]).sum() / wi
    alpha = (1 - level) / 2
    for rate in ("fmr", "fnmr"):
        low, high = [], []
        for i in range(len(table)):
            values = draws[rate][:, i]
            values = values[np.isfinite(values)]
            if n_boot and len(values) and table[rate].iloc[i] is not None and not pd.isna(table[rate].iloc[i]):
                lo, hi = np.quantile(values, [alpha, 1 - alpha])
                low.append(float(lo))
                high.append(float(hi))
            else:
                low.append(None)
                high.append(None)
        table[f"{rate}_low"], table[f"{rate}_high"] = low, high
    keys = zip(table["column"], table["group"])
    table.attrs["replicates"] = {(c, g): {rate: draws[rate][:, i] for rate in draws} for i, (c, g) in enumerate(keys)}
    table.attrs["level"] = level
    return table


def group_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """The worst group's rate over the best group's, per metadata column and rate (``fmr``,
    ``fnmr``), over the groups whose rate is not null (the across-groups row left out).

    Returns columns ``column``, ``rate``, ``worst_group``, ``worst``, ``best_group``, ``best``,
    ``ratio``, ``groups`` (how many groups had a rate), ``reason`` (why the ratio is None:
    fewer than two groups with a rate, or the best group has no errors at all), and
    ``ratio_low``, ``ratio_high``: its percentile interval when the table was made with
    bootstrap replicates (``ratio_high`` None when the best group had no errors in some of
    them: the interval is unbounded above).
    """
    replicates = table.attrs.get("replicates") or {}
    level = table.attrs.get("level", 0.95)
    rows = []
    for column in dict.fromkeys(table["column"]):
        part = table[(table["column"] == column) & (table["group"] != ACROSS_GROUPS)]
        for rate in ("fmr", "fnmr"):
            known = part[part[rate].notna()]
            row = {"column": column, "rate": rate, "worst_group": None, "worst": None, "best_group": None, "best": None,
                   "ratio": None, "groups": len(known), "reason": None}  # fmt: skip
            if len(known) < 2:
                row["reason"] = f"{len(known)} group(s) with enough comparisons for an {rate.upper()}; a ratio needs two"
            else:
                values = known[rate].astype(float)
                worst, best = known.loc[values.idxmax()], known.loc[values.idxmin()]
                row.update(worst_group=worst["group"], worst=float(worst[rate]), best_group=best["group"], best=float(best[rate]))
                if float(best[rate]) == 0.0:
                    row["reason"] = (
                        f"the best group ({best['group']}) has no errors at this threshold: the ratio is unbounded on this data"
                        if float(worst[rate]) > 0 else "no group has errors at this threshold"
                    )  # fmt: skip
                else:
                    row["ratio"] = float(worst[rate]) / float(best[rate])
            row["ratio_low"] = row["ratio_high"] = None
            if row["ratio"] is not None and (column, row["worst_group"]) in replicates:
                top = replicates[(column, row["worst_group"])][rate]
                bottom = replicates[(column, row["best_group"])][rate]
                keep = np.isfinite(top) & np.isfinite(bottom)
                if keep.any():
                    with np.errstate(divide="ignore", invalid="ignore"):
                        ratios = np.where(bottom[keep] > 0, top[keep] / np.where(bottom[keep] > 0, bottom[keep], 1), np.inf)
                    alpha = (1 - level) / 2
                    low, high = np.quantile(ratios, [alpha, 1 - alpha], method="inverted_cdf")  # no interpolation with inf
                    row["ratio_low"] = float(low) if np.isfinite(low) else None
                    row["ratio_high"] = float(high) if np.isfinite(high) else None
            rows.append(row)
    columns = ["column", "rate", "worst_group", "worst", "best_group", "best", "ratio", "ratio_low", "ratio_high", "groups", "reason"]
    return pd.DataFrame(rows, columns=columns)


def identification_group_table(
    searches: pd.DataFrame,
    groups: pd.DataFrame,
    threshold: float,
    *,
    rank: int = CANDIDATE_LIST_LENGTH,
    target_fpir: float | None = None,
    columns: Sequence[str] | None = None,
    n_boot: int = 0,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """FPIR and FNIR (rank ``rank``) per group of the probe's identity at ``threshold``; columns
    as :func:`group_table`, with ``fmr`` holding the FPIR, ``fnmr`` the FNIR, ``genuine`` the
    mated searches and ``impostor`` the non-mated ones (also under ``fpir`` and ``fnir``);
    intervals from resampling probe identities with ``n_boot``."""
    columns = _metadata_columns(groups, columns)
    if target_fpir is None:
        tops = searches.loc[~searches["mated"], "top_score"]
        target_fpir = float(np.mean(tops >= threshold)) if len(tops) else None
    what = ("mated searches", "non-mated searches")
    mated = searches["mated"].to_numpy(bool)
    rows, masks = [], []
    for column in columns:
        group_of = _group_of(searches["identity"], groups, column).to_numpy()
        for group in sorted(set(group_of)):
            part = searches[group_of == group]
            r = open_set_rates(part, threshold, rank=rank)
            masks.append((mated & (group_of == group), ~mated & (group_of == group)))
            rows.append(
                _group_row(column, group, threshold, genuine=r["mated_searches"], false_non_matches=r["misses"],
                           impostor=r["nonmated_searches"], false_matches=r["false_alarms"], target=target_fpir, what=what)
            )  # fmt: skip
    table = pd.DataFrame(rows, columns=_GROUP_COLUMNS)
    hit = (searches["mate_rank"].to_numpy(np.float64) <= rank) & (searches["mate_score"].to_numpy(np.float64) >= threshold)
    errors = (mated & ~hit, ~mated & (searches["top_score"].to_numpy(np.float64) >= threshold))
    codes, labels = pd.factorize(searches["identity"].astype(str))
    table = _group_intervals(table, masks, errors, lambda rng: redraw(len(labels), rng)[codes], n_boot=n_boot, seed=seed, level=level)
    table["fpir"], table["fnir"] = table["fmr"], table["fnmr"]
    return table
