"""``workbench search PROBE... --case REF`` and ``workbench search --replay SEARCH_ID``.

Each face found in an image is one probe (a person); a video gives one probe per face track,
its good faces fused. Probes are listed best quality first and the top-level ``candidates``
repeat the first probe's list. With ``--fuse`` the files show one person: their best faces fuse
into one probe. Every search runs inside an open case and is recorded with its probes,
settings and candidate lists (see :mod:`workbench.cases.investigate`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CaseError
from . import EXIT_OK, record_id

if TYPE_CHECKING:
    from ..cli import Output
    from ..workspace import Workspace


def cmd_search(args, ws: Workspace, out: Output) -> int:
    if args.replay is not None:
        if args.probes:
            raise CaseError("--replay re-runs a recorded search; give no probe files with it")
        result = ws.replay(args.replay)
        lines = _lines(result.replayed.as_dict())
        lines.append(f"replay of search {args.replay}: " + ("the same candidate list" if result.same else "DIFFERENT candidate list:"))
        lines += [f"  {d}" for d in result.differences]
        out.emit({**result.replayed.as_dict(), "replay": result.as_dict()}, lines)
        return EXIT_OK
    if not args.probes:
        raise CaseError("give probe image(s) or video(s), or --replay SEARCH_ID")
    run = ws.search_files(
        args.case,
        args.probes,
        top=args.top,
        threshold=args.threshold,
        mode=args.mode,
        fuse=args.fuse,
        exact=True if args.exact else None,
    )
    document = run.as_dict()
    out.emit(document, _lines(document))
    return EXIT_OK


def _lines(document: dict) -> list[str]:
    from ..thresholds import fmr_phrase

    threshold = document["threshold"]
    version = document.get("threshold_version")
    calibration = document.get("calibration") or {}
    lines = [f"WARNING: {w}" for w in document.get("warnings", [])]
    lines.append(
        f"search {document['search_id']} in case {document['case']}: {len(document['probes'])} probe(s) against "
        f"{document['gallery_faces']} gallery faces ({document['method']} search, {document['mode']} mode, "
        f"threshold {threshold if threshold is not None else 'none'}"
        + (f", threshold version {version})" if version is not None else ", no threshold version set)")
    )
    lines += [f"note: {n}" for n in document.get("notes", [])]
    for probe in document["probes"]:
        quality = "?" if probe["quality"] is None else f"{probe['quality']:.2f}"
        times = f", {probe['start_s']:.1f}-{probe['end_s']:.1f} s" if probe["start_s"] is not None else ""
        lines.append(f"probe {probe['probe_id']} (quality {quality}{times}):")
        if not probe["candidates"]:
            lines.append("  no candidates")
        for c in probe["candidates"]:
            flag = "above threshold" if c["above_threshold"] else ""
            lines.append(f"  {c['rank']:>3}. {c['subject_id']:<24} {c['score']:.3f}  image {c['image_id']!s:<8} {flag}")
            if c.get("fmr_at_score") is not None:
                phrase = fmr_phrase(c["fmr_at_score"], pairs=calibration.get("pairs"), time_utc=calibration.get("time_utc"))
                lines.append(f"       {phrase}")
    if calibration:
        lines.append(
            "How often unrelated faces score this high is measured on the gallery's own faces of different subjects; "
            "a person enrolled under two ids makes it too high."
        )
    lines += [f"WARNING: {w}" for w in document.get("warnings", [])]
    lines.append("Candidates are leads for trained people to review, not identifications.")
    return lines


def register(commands, add) -> None:
    p = add(commands, "search", cmd_search, "candidate lists for the faces in probe images or videos, recorded in a case")
    p.add_argument("probes", nargs="*", metavar="PROBE", help="probe image(s) or video(s); each face or face track is a probe")
    p.add_argument("--case", metavar="REF", help="the open case the search belongs to (required)")
    p.add_argument("--top", type=int, metavar="K", help="candidates per probe (default: settings top, 20)")
    p.add_argument(
        "--threshold", type=float, metavar="T",
        help="operating threshold, cosine (default: the pack's set version, then settings, then the pack's); below the set one: a warning",
    )  # fmt: skip
    p.add_argument(
        "--mode",
        choices=["investigation", "identification"],
        default="investigation",
        help="investigation: a fixed-length list; identification: only candidates above the threshold",
    )
    p.add_argument("--fuse", action="store_true", help="the files show one person: fuse their best faces into one probe")
    p.add_argument("--exact", action="store_true", help="exact search even where the index would be used")
    p.add_argument("--replay", type=record_id, metavar="SEARCH_ID", help="re-run a recorded search and compare the candidate lists")
