"""``workbench evaluate pairs | identification | make-pairs``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from . import EXIT_OK, progress_bar

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace


def _evaluation_lines(result: dict) -> list[str]:
    lines = []
    for key in ("accuracy", "auc", "eer", "rank1", "rank10"):
        if key in result:
            lines.append(f"{key:<12} {result[key]:.4f}")
    for key in ("tar_at_fmr", "fnir_at_fpir"):
        for level, value in result.get(key, {}).items():
            lines.append(f"{key}[{level}] {value:.4f}")
    lines.append(f"failed_to_enrol {result['failed_to_enrol']}")
    return lines


def cmd_evaluate_pairs(args, ws: Workspace, out: Output) -> int:
    from ..evaluate import evaluate_pairs

    ws.require("evaluate")

    with progress_bar("embedding", "img", enabled=not args.json) as bar:
        result = evaluate_pairs(ws.engine, Path(args.pairs), Path(args.images), aligned=args.aligned, progress=bar)
    out.emit(result, _evaluation_lines(result))
    return EXIT_OK


def cmd_evaluate_identification(args, ws: Workspace, out: Output) -> int:
    from ..evaluate import evaluate_identification

    ws.require("evaluate")

    with progress_bar("embedding", "img", enabled=not args.json) as bar:
        result = evaluate_identification(ws.engine, Path(args.gallery), Path(args.probes), aligned=args.aligned, progress=bar)
    out.emit(result, _evaluation_lines(result))
    return EXIT_OK


def cmd_evaluate_make_pairs(args, ws: Workspace, out: Output) -> int:
    from ..evaluate import make_pairs

    pairs = make_pairs(Path(args.folder), per_identity=args.per_identity, seed=args.seed)
    with open(args.out, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "same"])
        writer.writerows(pairs)
    mated = sum(p[2] for p in pairs)
    out.emit({"out": args.out, "pairs": len(pairs), "mated": mated}, f"wrote {len(pairs)} pairs ({mated} same-person) to {args.out}")
    return EXIT_OK


def register(commands, add) -> None:
    evaluate = commands.add_parser("evaluate", help="accuracy on labelled images").add_subparsers(
        dest="evaluate_command", required=True, metavar="KIND"
    )
    p = add(evaluate, "pairs", cmd_evaluate_pairs, "verification accuracy on a pairs CSV (columns a,b,same)")
    p.add_argument("--pairs", required=True, help="CSV with columns a,b,same (same = 1 or 0)")
    p.add_argument("--images", required=True, help="folder the CSV paths are relative to")
    p.add_argument("--aligned", action="store_true", help="images are already 112x112 ArcFace-aligned crops")
    p = add(evaluate, "identification", cmd_evaluate_identification, "rank-k and FNIR at FPIR, one sub-folder per identity")
    p.add_argument("--gallery", required=True)
    p.add_argument("--probes", required=True)
    p.add_argument("--aligned", action="store_true", help="images are already 112x112 ArcFace-aligned crops")
    p = add(evaluate, "make-pairs", cmd_evaluate_make_pairs, "draw a balanced pairs CSV from a folder of identity sub-folders")
    p.add_argument("folder")
    p.add_argument("--out", required=True)
    p.add_argument("--per-identity", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
