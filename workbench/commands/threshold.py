"""``workbench threshold recommend | set | history | show | calibrate``: operating thresholds per pack.

* ``recommend --pairs CSV --images DIR --target-fmr 1e-3`` (or ``--gallery G --probes P
  --target-fpir 0.01``): the threshold meeting the target on labelled images, its bootstrap
  interval (identities resampled), the expected FNMR (FNIR), and with ``--groups CSV`` the
  per-group table at it. Save it with ``--json > rec.json`` and give that file to ``set``.
* ``set VALUE --reason TEXT [--evaluation FILE]``: a new version for the workspace's pack
  (who, when, why, the evaluation file's sha256), audited. Every later search records it.
* ``history [--all]``: the versions, oldest first; ``show``: the threshold searches use now
  and the gallery's score calibration; ``calibrate``: calibrate the gallery's scores now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import EXIT_OK, progress_bar
from .evaluate import add_measure_options, table_lines

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace


def _interval(pair) -> str:
    low, high = pair
    return "no interval" if low is None or high is None else f"{low:.4f} to {high:.4f}"


def cmd_threshold_recommend(args, ws: Workspace, out: Output) -> int:
    with progress_bar("embedding", "img", enabled=not args.json) as bar:
        rec = ws.recommend_threshold(
            pairs=args.pairs, images=args.images, gallery=args.gallery, probes=args.probes, target_fmr=args.target_fmr,
            target_fpir=args.target_fpir, groups=args.groups, bootstrap=args.bootstrap, seed=args.seed, aligned=args.aligned,
            progress=bar,
        )  # fmt: skip
    verification = rec["kind"] == "verification"
    rate, miss = ("fmr", "fnmr") if verification else ("fpir", "fnir")
    target = rec[f"target_{rate}"]
    observed = rec["threshold_observed"]
    lines = [f"pack {rec['pack_id']}: target {rate.upper()} {target:g} on {rec['genuine']} mated and {rec['impostor']} non-mated "
             f"{'comparisons' if verification else 'searches'} of {rec['identities']} identities"]  # fmt: skip
    if rec["threshold"] is not None:
        lines.append(f"recommended threshold {rec['threshold']:.4f} ({rec['level']:.0%} interval {_interval(rec['threshold_interval'])})")
    else:
        shown = "none" if observed is None else f"{observed:.4f}"
        lines.append(f"NO RECOMMENDATION: {rec['reason']}. On this data the target is met from {shown}, resting on too few comparisons.")
    expected = rec[f"expected_{miss}"]
    lines.append(
        f"expected {miss.upper()} at it: {'null' if expected is None else f'{expected:.4f}'} "
        f"({rec['level']:.0%} interval {_interval(rec[f'{miss}_interval'])}); observed {rate.upper()} "
        f"{'null' if rec[f'{rate}_observed'] is None else format(rec[f'{rate}_observed'], '.4f')}"
    )
    if rec.get("groups"):
        lines += ["", f"per group at {observed:.4f}:"]
        lines += table_lines(rec["groups"], [("column", "column"), ("group", "group"), ("fmr", rate), ("fnmr", miss),
                                             ("genuine", "genuine"), ("impostor", "impostor"), ("reason", "null because")])  # fmt: skip
        lines += table_lines(rec["group_ratios"], [("column", "column"), ("rate", "rate"), ("worst_group", "worst"),
                                                   ("best_group", "best"), ("ratio", "ratio"), ("reason", "null because")])  # fmt: skip
    current = rec.get("current_version")
    lines.append("")
    lines.append(
        f"set now: version {current['version']}, {current['threshold']:.4f}" if current else "no threshold version is set for this pack yet"
    )
    lines.append("to set it: workbench threshold set VALUE --reason TEXT --evaluation FILE (the JSON of this command, --json)")
    out.emit(rec, lines)
    return EXIT_OK


def _version_line(v) -> str:
    evidence = f", evaluation {v.evaluation_path} (sha256 {v.evaluation_sha256[:12]})" if v.evaluation_sha256 else ", no evaluation file"
    before = "" if v.previous is None else f" (was {v.previous:.4f})"
    return f"version {v.version}  {v.threshold:.4f}{before}  {v.pack_short}  {v.time_utc}  by {v.set_by}: {v.reason}{evidence}"


def cmd_threshold_set(args, ws: Workspace, out: Output) -> int:
    version = ws.set_threshold(args.value, reason=args.reason, evaluation=args.evaluation)
    out.emit(version.as_dict(), [_version_line(version), "recorded in the audit log; every search from now on records this version"])
    return EXIT_OK


def cmd_threshold_history(args, ws: Workspace, out: Output) -> int:
    versions = ws.threshold_history(all_packs=args.all)
    lines = [_version_line(v) for v in versions] or ["no threshold version has been set" + ("" if args.all else " for this pack")]
    out.emit({"versions": [v.as_dict() for v in versions]}, lines)
    return EXIT_OK


def cmd_threshold_show(args, ws: Workspace, out: Output) -> int:
    point = ws.operating_point()
    calibration = ws.calibration()
    document = {"operating_point": point.as_dict(), "calibration": calibration.as_dict() if calibration else None}
    lines = [f"searches use threshold {point.threshold:.4f} ({point.source})" if point.threshold is not None else "no threshold"]
    if point.version is None:
        lines.append("no threshold version is set for this pack: `workbench threshold recommend`, then `workbench threshold set`")
    if calibration is None:
        lines.append("no calibration yet (the next search makes one, or `workbench threshold calibrate`)")
    else:
        lines.append(
            f"calibration {calibration.calibration_id}: {calibration.pairs:,} non-mated comparisons of {calibration.faces} faces "
            f"({calibration.subjects} subjects), {calibration.time_utc}"
        )
        if point.threshold is not None:
            lines.append(f"at {point.threshold:.4f}: {calibration.phrase(point.threshold)}")
    out.emit(document, lines)
    return EXIT_OK


def cmd_threshold_calibrate(args, ws: Workspace, out: Output) -> int:
    calibration = ws.calibrate(max_pairs=args.max_pairs, seed=args.seed)
    if calibration is None:
        out.emit({"calibration": None}, "nothing to calibrate on: the gallery needs faces of at least two subjects")
        return EXIT_OK
    document = calibration.as_dict()
    lines = [f"calibration {calibration.calibration_id}: {calibration.pairs:,} non-mated comparisons of {calibration.faces} faces "
             f"({calibration.subjects} subjects; {'every pair' if calibration.exhaustive else 'random blocks'})"]  # fmt: skip
    for rate, score in document["score_at_fmr"].items():
        lines.append(f"  FMR {rate}: score {score:.4f}" if score is not None else f"  FMR {rate}: too few comparisons to say")
    out.emit(document, lines)
    return EXIT_OK


def register(commands, add) -> None:
    group = commands.add_parser("threshold", help="operating thresholds, versioned per pack").add_subparsers(
        dest="threshold_command", required=True, metavar="ACTION"
    )
    p = add(group, "recommend", cmd_threshold_recommend, "the threshold for a target FMR (pairs) or FPIR (gallery and probes)")
    p.add_argument("--pairs", help="pairs CSV (columns a,b,same; paths identity/file)")
    p.add_argument("--images", help="folder the pairs' paths are relative to")
    p.add_argument("--gallery", help="gallery folder, one sub-folder per identity")
    p.add_argument("--probes", help="probes folder, one sub-folder per identity")
    p.add_argument("--target-fmr", type=float, metavar="RATE", help="false match rate to meet (such as 1e-3), with --pairs")
    p.add_argument("--target-fpir", type=float, metavar="RATE", help="false positive identification rate (such as 0.01), with --gallery")
    add_measure_options(p, bootstrap_default=1000)
    p = add(group, "set", cmd_threshold_set, "set a new operating threshold version for the workspace's pack (audited)")
    p.add_argument("value", type=float, help="cosine similarity in [-1, 1]")
    p.add_argument("--reason", required=True, help="why: the evaluation, the target, who agreed it")
    p.add_argument("--evaluation", metavar="FILE", help="the evaluation it rests on (`threshold recommend --json`); its sha256 is kept")
    p = add(group, "history", cmd_threshold_history, "every threshold version of the pack, oldest first")
    p.add_argument("--all", action="store_true", help="of every pack")
    add(group, "show", cmd_threshold_show, "the threshold searches use now, and the gallery's score calibration")
    p = add(group, "calibrate", cmd_threshold_calibrate, "calibrate the gallery's scores against its non-mated comparisons now")
    p.add_argument("--max-pairs", type=int, metavar="N", help="non-mated comparisons to score at most (default 2,000,000)")
    p.add_argument("--seed", type=int, default=0)
