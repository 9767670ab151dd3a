"""Accuracy measurement: verification (1:1) and identification (1:N) on labelled images.

The headline figures (``accuracy``, ``auc``, ``eer``, ``tar_at_fmr``; ``rank1``, ``rank10``,
``fnir_at_fpir``, as in NIST FRTE) and, beyond them in ISO/IEC 19795-1 terms, rates at
thresholds, intervals from resampling identities, rates per group and per quality, and open-set
identification; tables are pandas DataFrames, plots matplotlib Figures. Every figure carries the
number of comparisons it rests on; one resting on too few is null with a reason, never hidden.
The conventions to write in any report that quotes these figures are in ``metrics.py``.

Modules (each imports only modules listed above it):

* ``metrics.py``: the headline figures from score arrays, and the NIST conventions behind them
  (FMR and FPIR targets, candidate list length, investigation ranks).
* ``evidence.py``: how many comparisons a figure needs (the rule of 30, 3/target), and the
  reason given when it has fewer.
* ``datasets.py``: labelled images on disk: pairs CSVs, folders of identity sub-folders, and
  balanced pairs drawn from such a folder.
* ``runs.py``: a pack's engine over labelled images: embeddings, then the verification or
  identification figures, with the per-pair and per-probe details the tables read.
* ``comparisons.py``: one row per comparison, the table every figure reads; FMR and FNMR at
  thresholds, the DET table, the threshold at a target FMR.
* ``open_set.py``: one row per search; FNIR at rank and threshold, FPIR, CMC.
* ``bootstrap.py``: percentile intervals from resampling identities, for verification and
  identification figures.
* ``by_quality.py``: rates as comparisons below a quality score or eye distance are excluded.
* ``groups.py``: the metadata CSV, rates per group and the worst group's ratio to the best.
* ``reports.py``: the JSON-ready reports of ``workbench evaluate``, and the scores CSV.
* ``recommendation.py``: a threshold for a target FMR or FPIR, with its interval.
* ``plots.py``: the one module that imports matplotlib: score distributions, ROC, DET, CMC,
  rates per group and per quality.
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "ACROSS_GROUPS": "groups",
        "CANDIDATE_LIST_LENGTH": "metrics",
        "EmbeddedImages": "runs",
        "FAILED_SCORE": "runs",
        "FALSE_MATCHES_NEEDED": "evidence",
        "FMR_TARGETS": "metrics",
        "FPIR_TARGET": "metrics",
        "FPIR_TARGETS": "metrics",
        "INVESTIGATION_RANKS": "metrics",
        "IOD_CUTOFFS": "by_quality",
        "MIN_GENUINE": "evidence",
        "NOT_RECORDED": "groups",
        "Progress": "runs",
        "QUALITY_CUTOFFS": "by_quality",
        "bootstrap_identification": "bootstrap",
        "bootstrap_verification": "bootstrap",
        "cmc_table": "open_set",
        "comparisons_frame": "comparisons",
        "det_table": "comparisons",
        "embed_images": "runs",
        "evaluate_identification": "runs",
        "evaluate_pairs": "runs",
        "group_ratios": "groups",
        "group_table": "groups",
        "identification_group_table": "groups",
        "identification_metrics": "metrics",
        "identification_report": "reports",
        "identification_score_sets": "metrics",
        "identification_searches": "open_set",
        "labelled_images": "datasets",
        "make_pairs": "datasets",
        "open_set_rates": "open_set",
        "pairs_frame": "comparisons",
        "plot_cmc": "plots",
        "plot_det": "plots",
        "plot_group_rates": "plots",
        "plot_quality": "plots",
        "plot_roc": "plots",
        "plot_score_distributions": "plots",
        "quality_table": "by_quality",
        "rates": "comparisons",
        "rates_at_threshold": "comparisons",
        "read_groups": "groups",
        "read_pairs": "datasets",
        "recommend_threshold": "recommendation",
        "records": "reports",
        "searches_frame": "open_set",
        "threshold_at_fmr": "comparisons",
        "verification_metrics": "metrics",
        "verification_report": "reports",
        "write_scores_csv": "reports",
    },
)
