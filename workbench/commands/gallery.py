"""``workbench gallery enrol | rebuild | stats | remove``: the custody gallery from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import GalleryError
from . import EXIT_OK, progress_bar

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace


def cmd_enrol(args, ws: Workspace, out: Output) -> int:
    if bool(args.folder) == bool(args.manifest):
        raise GalleryError("give either a folder (one sub-folder per subject) or --manifest CSV, not both and not neither")
    if args.batch is not None and args.batch < 1:
        raise GalleryError(f"--batch must be at least 1 image, got {args.batch}")
    with progress_bar("enrolling", "img", enabled=not args.json) as bar:
        summary = ws.enrol(
            args.folder or None,
            manifest=args.manifest or None,
            report_path=Path(args.report) if args.report else None,
            batch_size=args.batch,
            progress=bar,
            follow_symlinks=args.follow_symlinks,
        )
    not_indexed = ws.gallery_stats()["not_indexed"]
    data = {**summary.as_dict(), "not_indexed": not_indexed}
    c = summary.counts
    lines = [
        f"enrolled {c['enrolled']}, skipped {c['skipped']}, no face {c['no_face']}, unreadable {c['unreadable']}, "
        f"invalid {c['invalid']}  ({summary.analysed} images analysed in {summary.seconds:.1f} s, {summary.images_per_s:.1f} images/s)",
    ]
    if summary.several_faces:
        lines.append(f"{summary.several_faces} image(s) held several faces: the most prominent was enrolled")
    if summary.report:
        lines.append(f"report: {summary.report}")
    if not_indexed:
        lines.append(f"{not_indexed} face(s) not yet in the index (searched exactly); `workbench gallery rebuild` folds them in")
    out.emit(data, lines)
    return EXIT_OK


def cmd_rebuild(args, ws: Workspace, out: Output) -> int:
    if args.n_trees is not None and args.n_trees < 1:
        raise GalleryError(f"--n-trees must be at least 1, got {args.n_trees}")
    manifest = ws.rebuild_index(n_trees=args.n_trees)
    if manifest["build_id"] is None:
        out.emit({"build_id": None, "count": 0}, "the gallery is empty: no index (any previous one was deleted)")
        return EXIT_OK
    ann = manifest["files"]["faces.ann"]
    data = {
        "build_id": manifest["build_id"],
        "count": manifest["count"],
        "dim": manifest["dim"],
        "n_trees": manifest["n_trees"],
        "pack_id": manifest["pack_id"],
        "built_utc": manifest["built_utc"],
        "build_seconds": manifest["build_seconds"],
        "ann_sha256": ann["sha256"],
        "bytes": sum(f["bytes"] for f in manifest["files"].values()),
    }
    out.emit(
        data,
        f"index {data['build_id']}: {data['count']} faces, {data['n_trees']} trees, "
        f"{data['bytes'] / 1e6:.1f} MB, built in {data['build_seconds']:.1f} s",
    )
    return EXIT_OK


def cmd_stats(args, ws: Workspace, out: Output) -> int:
    data = ws.gallery_stats()
    if args.verify:
        data["index_verify_problems"] = ws.gallery.verify_index()
    lines = [
        f"subjects {data['subjects']}, images {data['images']}, faces {data['faces']} "
        f"({data['images_with_several_faces']} image(s) had several faces)",
        f"pack {data['pack_id'] or '(empty gallery)'}",
    ]
    index = data["index"]
    if index:
        lines.append(
            f"index {index['build_id']}: {index['count']} faces, {index['n_trees']} trees, "
            f"built {index['built_utc']} ({index['age_s'] / 3600:.1f} h ago)"
        )
    else:
        lines.append("no index built (`workbench gallery rebuild`)")
    if data["index_problem"]:
        lines.append(f"index not used: {data['index_problem']}")
    lines.append(
        f"not yet indexed {data['not_indexed']}, removed since the build {data['removed_since_build']}; "
        f"searches now run {data['search_method']}"
    )
    for problem in data.get("index_verify_problems", []):
        lines.append(f"index problem: {problem}")
    out.emit(data, lines)
    return EXIT_OK


def cmd_remove(args, ws: Workspace, out: Output) -> int:
    result = ws.remove_subject(args.subject_id, vacuum=not args.no_vacuum)
    indexed = ws.gallery_stats()["index"] is not None
    note = "the index files still hold the embeddings until `workbench gallery rebuild`" if indexed else None
    out.emit(
        {**result, "note": note},
        [f"removed subject {result['subject_id']}: {result['images']} image(s), {result['faces']} face(s); hidden from search now"]
        + ([note] if note else []),
    )
    return EXIT_OK


def register(commands, add) -> None:
    gallery = commands.add_parser("gallery", help="custody gallery: enrol, rebuild the index, stats, remove")
    sub = gallery.add_subparsers(dest="gallery_command", required=True, metavar="ACTION")
    p = add(sub, "enrol", cmd_enrol, "enrol custody images: a folder of subject sub-folders, or --manifest CSV")
    p.add_argument("folder", nargs="?", metavar="DIR", help="one sub-folder per subject (folder name = subject id)")
    p.add_argument("--manifest", metavar="CSV", help="CSV: subject_id,image_path[,name,dob,sex,ethnicity,custody_date,source]")
    p.add_argument("--report", metavar="PATH", help="CSV report of failures (default: <home>/reports/enrol-<time>.csv)")
    p.add_argument("--batch", type=int, metavar="N", help="images analysed per batch and stored per transaction (default 16)")
    p.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="enrol symbolic links inside the folder too (refused by default: a link can point anywhere)",
    )
    p = add(sub, "rebuild", cmd_rebuild, "build a new Annoy index from the store and swap it in atomically")
    p.add_argument("--n-trees", type=int, metavar="N", help="Annoy trees (default: settings index_n_trees)")
    p = add(sub, "stats", cmd_stats, "subjects, images, faces, pack, index age, records not yet indexed")
    p.add_argument("--verify", action="store_true", help="also recompute the index files' checksums")
    p = add(sub, "remove", cmd_remove, "delete a subject's images, faces and embeddings (recorded in the audit log)")
    p.add_argument("subject_id", metavar="SUBJECT_ID")
    p.add_argument("--no-vacuum", action="store_true", help="skip VACUUM (faster on big galleries; deleted bytes are still zeroed)")
