"""``workbench evaluate pairs | identification | make-pairs``.

``pairs`` and ``identification`` print the headline figures (DESIGN.md's keys), then what
:func:`workbench.evaluate.verification_report` / ``identification_report`` add: the rates at the
operating threshold (``--threshold``, else the one searches use now), bootstrap intervals
(``--bootstrap N``, identities resampled), FNMR as low-quality probes are excluded, and with
``--groups CSV`` the per-group table and the worst-to-best ratios. ``--scores OUT.csv`` writes
every comparison's score. Figures resting on too few comparisons are null with a reason.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from ..fileio import checked_output_path, open_private
from . import EXIT_OK, progress_bar

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace

#: keys of a run with ``return_scores`` that are per comparison: written by --scores, never printed.
_PER_COMPARISON = (
    "scores", "labels", "paths", "identity_a", "identity_b", "quality_a", "quality_b", "iod_a", "iod_b",
    "probe_labels", "gallery_labels", "probe_paths", "probe_qualities", "probe_iods", "failed_probe_labels",
)  # fmt: skip


def _evaluation_lines(result: dict) -> list[str]:
    lines = []
    for key in ("accuracy", "auc", "eer", "rank1", "rank10", "rank20"):
        if key in result:
            lines.append(f"{key:<12} {result[key]:.4f}")
    for key in ("tar_at_fmr", "fnir_at_fpir"):
        for level, value in result.get(key, {}).items():
            lines.append(f"{key}[{level}] {value:.4f}")
    lines.append(f"failed_to_enrol {result['failed_to_enrol']}")
    return lines


def _rate(value, digits: int = 4) -> str:
    return "null" if value is None else f"{value:.{digits}f}"


def table_lines(rows: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    """Rows as a fixed-width text table: ``columns`` are (key, heading); None prints as "null"."""

    def cell(value, key: str = "") -> str:
        if value is None:
            return "" if key == "reason" else "null"
        if isinstance(value, float):
            return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    cells = [[cell(row.get(key), key) for key, _ in columns] for row in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (_, h) in enumerate(columns)]
    lines = ["  ".join(h.ljust(w) for (_, h), w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    return lines


def report_lines(report: dict, *, identification: bool = False) -> list[str]:
    """The operating point, intervals, quality, groups and ratios of a report, as text."""
    op = report["operating_point"]
    rate, miss = ("FPIR", "FNIR") if identification else ("FMR", "FNMR")
    genuine, impostor = (op["mated_searches"], op["nonmated_searches"]) if identification else (op["genuine"], op["impostor"])
    lines = [
        "",
        f"at threshold {op['threshold']:.4f} ({op['source']}): {rate} {_rate(op['fpir' if identification else 'fmr'])}, "
        f"{miss} {_rate(op['fnir' if identification else 'fnmr'])} ({genuine} mated, {impostor} non-mated)",
    ]
    if op.get("reason"):
        lines.append(f"  null where: {op['reason']}")
    if "investigation" in report:
        inv = report["investigation"]
        lines.append(f"investigation mode (threshold 0): FNIR at rank 1 {_rate(inv['fnir_rank1'])}, at rank 20 {_rate(inv['fnir_rank20'])}")
    intervals = report.get("intervals") or []
    if intervals:
        boot = intervals[0]["bootstrap"]
        lines += ["", f"intervals ({intervals[0]['level']:.0%}, {boot} bootstrap replicates, resampling {intervals[0]['resampled']}):"]
        lines += table_lines(intervals, [("figure", "figure"), ("value", "value"), ("low", "low"), ("high", "high"),
                                         ("genuine", "genuine"), ("impostor", "impostor"), ("reason", "null because")])  # fmt: skip
    if report.get("groups"):
        lines += ["", f"per group at threshold {op['threshold']:.4f} ({rate} / {miss}):"]
        lines += table_lines(report["groups"], [("column", "column"), ("group", "group"), ("fmr", rate.lower()), ("fmr_low", "low"),
                                                ("fmr_high", "high"), ("fnmr", miss.lower()), ("fnmr_low", "low"), ("fnmr_high", "high"),
                                                ("genuine", "genuine"), ("impostor", "impostor"), ("false_matches", "false matches"),
                                                ("false_non_matches", "misses"), ("reason", "null because")])  # fmt: skip
        lines += ["", "worst group / best group:"]
        lines += table_lines(report["group_ratios"], [("column", "column"), ("rate", "rate"), ("worst_group", "worst"), ("worst", "rate"),
                                                      ("best_group", "best"), ("best", "rate"), ("ratio", "ratio"), ("ratio_low", "low"),
                                                      ("ratio_high", "high"), ("reason", "null because")])  # fmt: skip
    quality = [q for q in report.get("quality", []) if q["by"] == "quality"]
    if quality:
        lines += ["", f"{miss} as probes below a quality score are excluded:"]
        lines += table_lines(quality, [("minimum", "min quality"), ("excluded_share", "excluded"), ("genuine", "mated"),
                                       ("fnmr", miss.lower()), ("fmr", rate.lower()), ("reason", "null because")])  # fmt: skip
    return lines


def _groups(args):
    from ..evaluate import read_groups

    return read_groups(Path(args.groups)) if args.groups else None


def _finish(args, ws: Workspace, out: Output, result: dict, report: dict, identification: bool) -> int:
    from ..evaluate import write_scores_csv

    if args.scores:
        result["scores_file"] = str(write_scores_csv(result, Path(args.scores)))
    document = {k: v for k, v in result.items() if k not in _PER_COMPARISON}
    document.update(report)
    lines = _evaluation_lines(document) + report_lines(report, identification=identification)
    if args.scores:
        lines.append(f"\nevery comparison's score: {document['scores_file']}")
    out.emit(document, lines)
    return EXIT_OK


def cmd_evaluate_pairs(args, ws: Workspace, out: Output) -> int:
    from ..evaluate import evaluate_pairs, verification_report

    ws.require("evaluate")
    groups = _groups(args)
    point = ws.operating_point(args.threshold)
    with progress_bar("embedding", "img", enabled=not args.json) as bar:
        result = evaluate_pairs(ws.engine, Path(args.pairs), Path(args.images), aligned=args.aligned, progress=bar, return_scores=True)
    report = verification_report(
        result, threshold=point.threshold, threshold_source=point.source, groups=groups, n_boot=args.bootstrap, seed=args.seed
    )
    return _finish(args, ws, out, result, report, identification=False)


def cmd_evaluate_identification(args, ws: Workspace, out: Output) -> int:
    from ..evaluate import evaluate_identification, identification_report

    ws.require("evaluate")
    groups = _groups(args)
    point = ws.operating_point(args.threshold)
    with progress_bar("embedding", "img", enabled=not args.json) as bar:
        result = evaluate_identification(
            ws.engine, Path(args.gallery), Path(args.probes), aligned=args.aligned, progress=bar, return_scores=True
        )
    report = identification_report(
        result, threshold=point.threshold, threshold_source=point.source, groups=groups, n_boot=args.bootstrap, seed=args.seed
    )
    return _finish(args, ws, out, result, report, identification=True)


def cmd_evaluate_make_pairs(args, ws: Workspace, out: Output) -> int:
    from ..evaluate import make_pairs

    out_path = checked_output_path(args.out, what="pairs CSV")  # a bad --out fails before any work
    pairs = make_pairs(Path(args.folder), per_identity=args.per_identity, seed=args.seed)
    with open_private(out_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "same"])
        writer.writerows(pairs)
    mated = sum(p[2] for p in pairs)
    out.emit({"out": args.out, "pairs": len(pairs), "mated": mated}, f"wrote {len(pairs)} pairs ({mated} same-person) to {args.out}")
    return EXIT_OK


def add_measure_options(p, *, bootstrap_default: int) -> None:
    """Options shared by ``evaluate`` and ``threshold recommend``."""
    p.add_argument("--aligned", action="store_true", help="images are already 112x112 ArcFace-aligned crops")
    p.add_argument("--groups", metavar="CSV", help="metadata per identity: a column 'identity' and any metadata columns (sex, age band...)")
    p.add_argument(
        "--bootstrap", type=int, default=bootstrap_default, metavar="N",
        help=f"bootstrap replicates for confidence intervals, resampling identities (default {bootstrap_default})",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")


def register(commands, add) -> None:
    evaluate = commands.add_parser("evaluate", help="accuracy on labelled images").add_subparsers(
        dest="evaluate_command", required=True, metavar="KIND"
    )
    p = add(evaluate, "pairs", cmd_evaluate_pairs, "verification accuracy on a pairs CSV (columns a,b,same)")
    p.add_argument("--pairs", required=True, help="CSV with columns a,b,same (same = 1 or 0); paths as identity/file")
    p.add_argument("--images", required=True, help="folder the CSV paths are relative to")
    p.add_argument("--threshold", type=float, metavar="T", help="rates, groups, quality at this threshold (default: the one searches use)")
    p.add_argument("--scores", metavar="OUT.csv", help="write every comparison's score to this CSV")
    add_measure_options(p, bootstrap_default=0)
    p = add(evaluate, "identification", cmd_evaluate_identification, "rank-k and FNIR at FPIR, one sub-folder per identity")
    p.add_argument("--gallery", required=True)
    p.add_argument("--probes", required=True)
    p.add_argument("--threshold", type=float, metavar="T", help="FNIR, FPIR and groups at this threshold (default: the one searches use)")
    p.add_argument("--scores", metavar="OUT.csv", help="write every probe's score against every gallery identity to this CSV")
    add_measure_options(p, bootstrap_default=0)
    p = add(evaluate, "make-pairs", cmd_evaluate_make_pairs, "draw a balanced pairs CSV from a folder of identity sub-folders")
    p.add_argument("folder")
    p.add_argument("--out", required=True)
    p.add_argument("--per-identity", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
