"""JSON-ready reports for the command line (what ``workbench evaluate pairs | identification``
adds to the headline figures) and every comparison's score as CSV."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import WorkbenchError
from .bootstrap import bootstrap_identification, bootstrap_verification
from .by_quality import IOD_CUTOFFS, QUALITY_CUTOFFS, quality_table
from .comparisons import pairs_frame, rates
from .evidence import false_match_reason, genuine_reason, joined_reason
from .groups import group_ratios, group_table, identification_group_table
from .metrics import INVESTIGATION_RANKS
from .open_set import open_set_rates, searches_frame


def records(frame: pd.DataFrame) -> list[dict]:
    """A DataFrame as JSON-ready rows: NaN and None as None, numpy numbers as Python ones."""

    def plain(value):
        if value is None:
            return None
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    return [{key: plain(value) for key, value in row.items()} for row in frame.to_dict("records")]


def _require_threshold(threshold: float | None) -> None:
    """Both reports give rates at one threshold: without one there is nothing to report."""
    if threshold is None:
        raise WorkbenchError("no threshold to report rates at: give one (--threshold), or set the pack's (`workbench threshold set`)")


def _group_records(table: pd.DataFrame) -> dict[str, list[dict]]:
    """A group table (:func:`group_table` or :func:`identification_group_table`) as the report's
    ``groups`` rows and its ``group_ratios`` (worst group over best), in that key order."""
    return {"groups": records(table), "group_ratios": records(group_ratios(table))}


def verification_report(
    result: dict,
    *,
    threshold: float,
    threshold_source: str = "given",
    groups: pd.DataFrame | None = None,
    n_boot: int = 0,
    seed: int = 0,
    level: float = 0.95,
    target_fmr: float | None = None,
) -> dict:
    """What ``workbench evaluate pairs`` adds to the headline figures, JSON-ready.

    ``operating_point`` (FMR and FNMR at ``threshold``, with counts and why a rate is null),
    ``intervals`` (:func:`bootstrap_verification`), ``quality`` (:func:`quality_table`, by
    quality score and by eye distance), and with ``groups`` the per-group ``groups``
    (:func:`group_table`) and ``group_ratios``.
    """
    _require_threshold(threshold)
    frame = pairs_frame(result)
    point = rates(frame, [threshold]).iloc[0]
    operating = {
        "threshold": float(threshold),
        "source": threshold_source,
        "fmr": None,
        "fnmr": None,
        "false_matches": int(point["false_matches"]),
        "false_non_matches": int(point["false_non_matches"]),
        "genuine": int(point["genuine"]),
        "impostor": int(point["impostor"]),
    }
    fmr_reason = false_match_reason(operating["false_matches"], operating["impostor"])
    fnmr_reason = genuine_reason(operating["genuine"])
    operating["fmr"] = None if fmr_reason else float(point["fmr"])
    operating["fnmr"] = None if fnmr_reason else float(point["fnmr"])
    operating["reason"] = joined_reason(("FMR", fmr_reason), ("FNMR", fnmr_reason)) or None
    report = {
        "operating_point": operating,
        "intervals": records(bootstrap_verification(frame, n_boot=n_boot, seed=seed, level=level, threshold=threshold)),
        "quality": records(pd.concat([quality_table(frame, threshold), quality_table(frame, threshold, by="iod")], ignore_index=True)),
    }
    if groups is not None:
        table = group_table(frame, groups, threshold, target_fmr=target_fmr, n_boot=n_boot, seed=seed, level=level)
        report.update(_group_records(table))
    return report


def identification_report(
    result: dict,
    *,
    threshold: float,
    threshold_source: str = "given",
    groups: pd.DataFrame | None = None,
    n_boot: int = 0,
    seed: int = 0,
    level: float = 0.95,
    target_fpir: float | None = None,
) -> dict:
    """What ``workbench evaluate identification`` adds: ``operating_point`` (FNIR at rank 20 and
    FPIR at ``threshold``), ``investigation`` (FNIR at ranks 1 and 20, threshold 0),
    ``intervals`` (:func:`bootstrap_identification`), ``quality`` (FNIR as probes below a quality
    are excluded) and with ``groups`` the per-group ``groups`` and ``group_ratios``."""
    _require_threshold(threshold)
    searches = searches_frame(result)
    operating = {**open_set_rates(searches, threshold), "source": threshold_source}
    fpir_reason = false_match_reason(operating["false_alarms"], operating["nonmated_searches"], "non-mated searches")
    fnir_reason = genuine_reason(operating["mated_searches"], "mated searches")
    operating["fpir"] = None if fpir_reason else operating["fpir"]
    operating["fnir"] = None if fnir_reason else operating["fnir"]
    operating["reason"] = joined_reason(("FPIR", fpir_reason), ("FNIR", fnir_reason)) or None
    investigation = {f"fnir_rank{r}": open_set_rates(searches, -np.inf, rank=r)["fnir"] for r in INVESTIGATION_RANKS}
    quality_rows = []
    for by, cutoffs in (("quality", QUALITY_CUTOFFS), ("iod", IOD_CUTOFFS)):
        values = searches[by].to_numpy(np.float64)
        for minimum in cutoffs:
            kept = searches if minimum <= 0 else searches[values >= minimum]
            r = open_set_rates(kept, threshold)
            reason = genuine_reason(r["mated_searches"], "mated searches")
            quality_rows.append({"minimum": float(minimum), "by": by, "kept": len(kept),
                                 "excluded_share": 1 - len(kept) / len(searches) if len(searches) else None,
                                 "genuine": r["mated_searches"], "impostor": r["nonmated_searches"],
                                 "fnmr": None if reason else r["fnir"], "fmr": r["fpir"], "reason": reason})  # fmt: skip
    report = {
        "operating_point": operating,
        "investigation": investigation,
        "intervals": records(bootstrap_identification(searches, n_boot=n_boot, seed=seed, level=level, threshold=threshold)),
        "quality": quality_rows,
    }
    if groups is not None:
        table = identification_group_table(searches, groups, threshold, target_fpir=target_fpir, n_boot=n_boot, seed=seed, level=level)
        report.update(_group_records(table))
    return report


def write_scores_csv(result: dict, out: str | Path) -> Path:
    """Every comparison's score as CSV, so anyone can recompute a figure.

    Pairs: ``a, b, same, score, identity_a, identity_b, quality_a, quality_b`` (score -1 where
    a face failed to enrol). Identification: ``probe, probe_identity, gallery_identity, score,
    mated`` for every probe and gallery identity (score = max over that identity's images).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if "labels" in result:
        frame = pd.DataFrame(
            {
                "a": [a for a, _ in result["paths"]],
                "b": [b for _, b in result["paths"]],
                "same": result["labels"],
                "score": np.round(result["scores"], 6),
                "identity_a": result["identity_a"],
                "identity_b": result["identity_b"],
                "quality_a": result["quality_a"],
                "quality_b": result["quality_b"],
            }
        )
    elif "gallery_labels" in result:
        matrix = np.asarray(result["scores"], dtype=np.float64)
        gallery = result["gallery_labels"]
        frame = pd.DataFrame(
            [
                {"probe": path, "probe_identity": label, "gallery_identity": g, "score": round(float(matrix[i, j]), 6),
                 "mated": int(label == g)}  # fmt: skip
                for i, (path, label) in enumerate(zip(result["probe_paths"], result["probe_labels"]))
                for j, g in enumerate(gallery)
            ],
            columns=["probe", "probe_identity", "gallery_identity", "score", "mated"],
        )
    else:
        raise WorkbenchError("the evaluation was run without its scores: pass return_scores=True")
    frame.to_csv(out, index=False)
    return out
