"""A threshold for a target FMR (a pairs evaluation) or FPIR (an identification one), JSON-ready:
the threshold observed on the data, its interval from resampling identities, the miss rate
expected at it, and with metadata the per-group rates; null with a reason when the data holds
too few comparisons for the target."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from .bootstrap import bootstrap_identification, bootstrap_verification
from .comparisons import pairs_frame, rates, threshold_at_fmr
from .groups import group_ratios, group_table, identification_group_table
from .metrics import finite_or_none, target_key, threshold_at_fpir
from .open_set import open_set_rates, searches_frame
from .reports import records


def recommend_threshold(
    result: dict,
    *,
    target_fmr: float | None = None,
    target_fpir: float | None = None,
    groups: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """A threshold for a target FMR (a pairs evaluation) or FPIR (an identification one), JSON-ready.

    ``threshold_observed`` is the lowest threshold meeting the target on this data;
    ``threshold`` is the same value, or None with a ``reason`` when the data holds too few
    different-person comparisons (non-mated searches) for the target (fewer than 3/target).
    ``threshold_interval`` is its bootstrap interval (identities resampled), ``expected_fnmr``
    (``expected_fnir`` at rank 20) the miss rate at it with ``fnmr_interval``; with ``groups``
    the per-group table and ratios at ``threshold_observed``, each rate marked where it rests
    on too few comparisons.
    """
    if (target_fmr is None) == (target_fpir is None):
        raise WorkbenchError("give a target FMR or a target FPIR (one of them)")
    target = float(target_fmr if target_fmr is not None else target_fpir)
    if not 0 < target < 1:
        raise WorkbenchError(f"a target rate must be between 0 and 1 (such as 1e-3), got {target}")
    verification = target_fmr is not None
    if verification:
        frame = pairs_frame(result)
        key = target_key(target)
        observed = threshold_at_fmr(frame, target)
        table = bootstrap_verification(frame, n_boot=n_boot, seed=seed, level=level, fmr_targets=(target,))
        rows = table.set_index("figure")
        t_row, miss_row = rows.loc[f"threshold at FMR {key}"], rows.loc[f"FNMR at FMR {key}"]
        at = rates(frame, [observed]).iloc[0] if observed is not None else None
        miss_name, rate_name = "fnmr", "fmr"
        observed_rate = None if at is None else float(at["fmr"])
        observed_miss = None if at is None else float(at["fnmr"])
        counts = {"genuine": int(t_row["genuine"]), "impostor": int(t_row["impostor"])}
    else:
        searches = searches_frame(result)
        key = target_key(target, fpir=True)
        tops = searches.loc[~searches["mated"], "top_score"].to_numpy(np.float64)
        observed = finite_or_none(threshold_at_fpir(tops, target))
        table = bootstrap_identification(searches, n_boot=n_boot, seed=seed, level=level, fpir_targets=(target,))
        rows = table.set_index("figure")
        t_row, miss_row = rows.loc[f"threshold at FPIR {key}"], rows.loc[f"FNIR at FPIR {key}"]
        at = open_set_rates(searches, observed) if observed is not None else None
        miss_name, rate_name = "fnir", "fpir"
        observed_rate = None if at is None else at["fpir"]
        observed_miss = None if at is None else at["fnir"]
        counts = {"genuine": int(t_row["genuine"]), "impostor": int(t_row["impostor"])}
    reason = t_row["reason"] if isinstance(t_row["reason"], str) else None
    plain = records(table)
    by_name = {r["figure"]: r for r in plain}
    t_plain, miss_plain = by_name[t_row.name], by_name[miss_row.name]
    recommendation = {
        "kind": "verification" if verification else "identification",
        "pack_id": result.get("pack_id"),
        "aligned": result.get("aligned"),
        f"target_{rate_name}": target,
        "threshold": None if reason else observed,
        "threshold_observed": observed,
        "threshold_interval": [t_plain["low"], t_plain["high"]],
        "level": level,
        f"expected_{miss_name}": miss_plain["value"],
        f"{miss_name}_interval": [miss_plain["low"], miss_plain["high"]],
        f"{miss_name}_observed": observed_miss,
        f"{rate_name}_observed": observed_rate,
        **counts,
        "identities": int(t_row["identities"]),
        "bootstrap": n_boot,
        "seed": seed,
        "reason": reason,
        "evaluation": {k: result[k] for k in ("accuracy", "auc", "eer", "pairs", "rank1", "rank10", "failed_to_enrol") if k in result},
        "intervals": plain,
    }
    if groups is not None and observed is not None:
        if verification:
            group_rows = group_table(frame, groups, observed, target_fmr=target, n_boot=n_boot, seed=seed, level=level)
        else:
            group_rows = identification_group_table(searches, groups, observed, target_fpir=target, n_boot=n_boot, seed=seed, level=level)
        recommendation["groups"] = records(group_rows)
        recommendation["group_ratios"] = records(group_ratios(group_rows))
    return recommendation
