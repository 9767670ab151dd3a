"""``workbench footage extract PATH...``: face tracks with their best shots.

One entry per source in ``sources`` (its sha256, frames sampled, warnings, or its error) and
one per track in ``tracks``. A source that cannot be read does not stop the others; the exit
status is then 1. ``--dask`` / ``--workers N`` run the extraction on Dask (same results).
"""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING

from ..errors import FootageError, WorkbenchError
from ..fileio import checked_output_dir
from . import EXIT_ERROR, EXIT_OK

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace


def cmd_footage_extract(args, ws: Workspace, out: Output) -> int:
    from ..footage import DEFAULT_CHUNK_S, FootageWarning, Sampling, extract_many

    ws.require("footage.extract")

    if args.workers is not None and args.workers < 1:
        raise FootageError(f"--workers must be at least 1 worker process, got {args.workers}")
    if args.chunk_s is not None and not args.chunk_s > 0:
        raise FootageError(f"--chunk-s must be a positive number of seconds, got {args.chunk_s}")
    # --fps 0 is refused by Sampling, not replaced by the default
    fps = None if args.every_frame else (args.fps if args.fps is not None else ws.settings.footage_fps)
    sampling = Sampling(fps=fps, start_s=args.start, end_s=args.end)
    if args.save_crops:
        checked_output_dir(args.save_crops, what="folder for face crops (--save-crops)")  # before hours of work, not after
    with warnings.catch_warnings():
        # Each result carries its warnings; they are printed below, once, in the output.
        warnings.simplefilter("ignore", FootageWarning)
        if args.dask or args.workers:
            from ..footage.distributed import extract_on_dask

            settings = ws.settings.replace(dask_workers=args.workers) if args.workers else ws.settings
            chunk_s = args.chunk_s if args.chunk_s is not None else DEFAULT_CHUNK_S
            results = extract_on_dask(args.paths, settings, sampling=sampling, chunk_s=chunk_s, return_errors=True)
        else:
            results = extract_many(args.paths, ws.engine, sampling=sampling, chunk_s=args.chunk_s, return_errors=True)
    sources, tracks, lines, errors = [], [], [], []
    for path, result in zip(args.paths, results):
        if isinstance(result, WorkbenchError):
            sources.append({"path": path, "error": str(result)})
            errors.append(str(result))  # the message names the file
            continue
        crops = result.save_best_shots(args.save_crops) if args.save_crops else {}
        sources.append(
            {
                **result.info.as_dict(),
                "frames_sampled": result.frames_sampled,
                "tracks": len(result.tracks),
                "warnings": list(result.warnings),
            }
        )
        lines.append(_source_line(result))
        for track in result.tracks:
            entry = track.as_dict()
            if track.track_id in crops:
                entry["crop"] = str(crops[track.track_id])
            tracks.append(entry)
            lines.append(_track_line(entry))
        lines += [f"  warning: {w}" for w in result.warnings]
    document = {
        "sampling": {"fps": sampling.fps, "start_s": sampling.start_s, "end_s": sampling.end_s},
        "sources": sources,
        "tracks": tracks,
    }
    if errors:
        document["error"] = errors[0] if len(errors) == 1 else f"{len(errors)} of {len(args.paths)} sources cannot be read"
    out.emit(document, lines)
    for message in errors:
        print(f"error: {message}", file=sys.stderr)
    return EXIT_ERROR if any("error" in s for s in sources) else EXIT_OK


def _source_line(result) -> str:
    info = result.info
    duration = f", {info.duration_s:.1f} s" if info.duration_s else ""
    count = len(result.tracks)
    return (
        f"{info.path} ({info.kind.value}{duration}, sha256 {info.sha256[:12]}): "
        f"{result.frames_sampled} frames sampled, {count} track{'s' if count != 1 else ''}"
    )


def _track_line(entry: dict) -> str:
    best = entry["best"]
    x1, y1, x2, y2 = best["bbox_xyxy"]
    line = (
        f"  track {entry['track_id']:>3}  {entry['start_s']:7.2f} - {entry['end_s']:7.2f} s  {entry['n_faces']:>4} faces  "
        f"best at {best['timestamp_s']:.2f} s (frame {best['frame_index']}), quality {best['quality']:.2f}, "
        f"box ({x1:.0f}, {y1:.0f})-({x2:.0f}, {y2:.0f})"
    )
    return line + (f"  -> {entry['crop']}" if "crop" in entry else "")


def register(commands, add) -> None:
    footage = commands.add_parser("footage", help="face tracks in video and stills").add_subparsers(
        dest="footage_command", required=True, metavar="ACTION"
    )
    p = add(footage, "extract", cmd_footage_extract, "face tracks with their best shots, per video, still or folder of stills")
    p.add_argument("paths", nargs="+", metavar="PATH", help="video files, still images or folders of stills")
    p.add_argument("--fps", type=float, metavar="F", help="frames per second to analyse (default: settings footage_fps, 5)")
    p.add_argument("--every-frame", action="store_true", help="analyse every frame (overrides --fps)")
    p.add_argument("--start", type=float, default=0.0, metavar="S", help="start time, seconds (default 0)")
    p.add_argument("--end", type=float, metavar="S", help="end time, seconds (default: the end)")
    p.add_argument("--save-crops", metavar="DIR", help="write each track's best shot as a JPEG into DIR")
    p.add_argument("--dask", action="store_true", help="run on Dask: the settings' scheduler, else a LocalCluster")
    p.add_argument("--workers", type=int, metavar="N", help="run on a LocalCluster of N worker processes")
    p.add_argument("--chunk-s", type=float, metavar="S", help="seconds of footage per task (default 60 on Dask; one pass otherwise)")
