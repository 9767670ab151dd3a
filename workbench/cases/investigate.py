"""The investigation flow: probes with their evidence -> a search inside an open case, recorded ->
replay of a recorded search.

Probes come from three places, and each carries the evidence the case record needs (source
sha256, frame, time, box, the crop reviewers see):

* :func:`probes_from_image`: one probe per face the detector finds in a still;
* :func:`probe_from_track`: a face track of extracted footage, its good faces fused;
* :func:`probe_from_box`: a box a person drew round a face on a still or a frame, aligned and
  embedded as drawn, marked ``manual``.

:func:`probes_from_path` is the one place where image and video files branch (the CLI's path).
:func:`search_and_record` checks the case is open, searches and records everything with an
audit entry; :func:`replay` re-runs a recorded search with the same probe embeddings, pack and
settings against the gallery as it is now and says whether the candidate list is the same.
The :class:`~workbench.workspace.Workspace` wraps these for notebooks, dashboards and the CLI.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CaseError, NoFaceError
from ..fileio import sha256_file
from ..footage import VIDEO_SUFFIXES, FootageResult, Sampling, extract, track_probe
from ..gallery.search import search_many, search_probes
from ..gallery.store import Gallery
from ..images import crop_box
from ..thresholds import Calibration, OperatingPoint, annotate, search_notes
from ..types import Probe, SearchMode, SearchRun
from .store import CaseStore, png_bytes

log = logging.getLogger(__name__)

#: share of the face box added on each side of the crop shown to reviewers.
CROP_MARGIN = 0.5
#: longest case reference accepted.
REFERENCE_MAX = 64


def check_reference(reference: str) -> str:
    """A new case's reference, stripped: 1 to 64 printable characters, no control characters
    (references are printed in lists, reports and file names).

    Raises:
        CaseError: naming what is wrong with the reference.
    """
    text = (reference or "").strip() if isinstance(reference, str) or reference is None else None
    if text is None:
        raise CaseError(f"a case reference must be text, got {type(reference).__name__}")
    if not text:
        raise CaseError("a case needs a reference (the crime or incident reference)")
    if len(text) > REFERENCE_MAX:
        raise CaseError(f"case reference {text[:20]!r}... is {len(text)} characters long; at most {REFERENCE_MAX} are allowed")
    if not text.isprintable():
        bad = sorted({f"U+{ord(c):04X}" for c in text if not c.isprintable()})
        raise CaseError(
            f"case reference {text!r} holds control or non-printable characters ({', '.join(bad)}); use letters, digits and punctuation"
        )
    return text


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES or Path(path).is_dir()


def probes_from_image(rgb: np.ndarray, engine, *, source: str, source_sha256: str, fuse: bool = False) -> list[Probe]:
    """One probe per face found in an (H, W, 3) uint8 RGB still, most prominent first.

    ``fuse`` keeps only the most prominent face. Raises NoFaceError when there is none.
    """
    faces = engine.analyse(rgb)
    if not faces:
        raise NoFaceError(f"{source}: no face found; a probe image needs at least one face of at least {engine.settings.min_face_px} px")
    if fuse:
        faces = faces[:1]
    name = Path(source).name
    return [
        Probe(
            probe_id=f"{name}#face{i}",
            source=source,
            faces=(face,),
            source_sha256=source_sha256,
            bbox_xyxy=face.bbox_xyxy,
            crop_png=png_bytes(crop_box(rgb, face.bbox_xyxy, margin=CROP_MARGIN)),
        )
        for i, face in enumerate(faces, start=1)
    ]


def probe_from_track(result: FootageResult, track_id: int, *, crop: np.ndarray | None = None) -> Probe:
    """A probe from one face track of extracted footage: its good faces fused, its times, and the
    best shot as the face shown (``crop``: the best shot's RGB crop if already decoded)."""
    track = result.track(track_id)
    best = track.best
    crop = result.thumbnail(track_id, margin=CROP_MARGIN) if crop is None else crop
    return track_probe(track).replace(
        source_sha256=track.source_sha256,
        frame_index=best.frame_index,
        timestamp_s=best.timestamp_s,
        bbox_xyxy=best.face.bbox_xyxy,
        crop_png=png_bytes(crop),
    )


def probe_from_box(
    rgb: np.ndarray,
    bbox_xyxy: Sequence[float],
    engine,
    *,
    source: str,
    source_sha256: str,
    frame_index: int | None = None,
    timestamp_s: float | None = None,
) -> Probe:
    """A probe from a box a person drew round a face on a still or a frame (pixels of ``rgb``).

    The box is aligned and embedded as drawn (:meth:`FaceEngine.face_from_box`) and the probe is
    marked ``manual`` in the record and the report.
    """
    face = engine.face_from_box(rgb, bbox_xyxy)
    where = f"@{timestamp_s:.2f}s" if timestamp_s is not None else ""
    x1, y1, x2, y2 = (round(v) for v in face.bbox_xyxy)
    return Probe(
        probe_id=f"{Path(source).name}#manual{where}({x1},{y1},{x2},{y2})",
        source=source,
        faces=(face,),
        source_sha256=source_sha256,
        frame_index=frame_index,
        timestamp_s=timestamp_s,
        start_s=timestamp_s,
        end_s=timestamp_s,
        bbox_xyxy=face.bbox_xyxy,
        crop_png=png_bytes(crop_box(rgb, face.bbox_xyxy, margin=CROP_MARGIN)),
        manual=True,
    )


def probes_from_path(path: str | Path, engine, *, fuse: bool = False) -> list[Probe]:
    """The probes of one file: a face per probe for an image, a face track per probe for a video
    (or folder of stills), tracks best quality first. ``fuse`` keeps only the best one.

    Raises:
        NoFaceError: no face (image) or no face track (video) was found.
        ImageError, FootageError: the file cannot be read.
    """
    path = str(path)
    if not is_video(path):
        rgb = engine.load(path)  # read once: analysed, then cropped for the reviewers
        return probes_from_image(rgb, engine, source=path, source_sha256=sha256_file(path), fuse=fuse)
    result = extract(path, engine, sampling=Sampling(fps=engine.settings.footage_fps))
    if not result.tracks:
        raise NoFaceError(f"{path}: no face found in {result.frames_sampled} sampled frames; a video probe needs at least one face track")
    tracks = sorted(result.tracks, key=lambda t: -t.quality)
    if fuse:
        tracks = tracks[:1]
    crops = result.best_shots(margin=CROP_MARGIN)  # one decoding pass for every best shot
    return [probe_from_track(result, t.track_id, crop=crops[t.track_id]) for t in tracks]


def fuse_probes(probes: Sequence[Probe]) -> Probe:
    """Several probes known to show one person as one probe: all their faces, the best one's
    evidence, and the sources and hashes joined by ``;``."""
    best = max(probes, key=lambda p: p.quality or 0.0)
    return best.replace(
        probe_id="fused",
        source=";".join(dict.fromkeys(p.source for p in probes)),
        faces=tuple(f for p in probes for f in p.faces),
        source_sha256=";".join(dict.fromkeys(p.source_sha256 for p in probes)),
        quality=None,
    )


def gallery_version(gallery: Gallery) -> dict:
    """What a search ran against: the index build and its checksum, and the live record counts."""
    live = gallery.live()
    manifest = live.build.manifest if live.build is not None else None
    return {
        "build_id": manifest["build_id"] if manifest else None,
        "index_sha256": manifest["files"]["faces.ann"]["sha256"] if manifest else None,
        "indexed": manifest["count"] if manifest else 0,
        "live_faces": int(live.count),
        "not_indexed": int(len(live.pending_ids)),
        "removed_since_build": int(live.hidden_count),
    }


def search_and_record(
    store: CaseStore,
    gallery: Gallery,
    case_ref: str,
    probes: Sequence[Probe],
    *,
    top: int,
    threshold: float | None = None,
    mode: SearchMode | str = SearchMode.INVESTIGATION,
    exact: bool | None = None,
    pack_default: float | None = None,
    operating: OperatingPoint | None = None,
    calibration: Calibration | None = None,
) -> SearchRun:
    """Search ``probes`` (best quality first) inside open case ``case_ref`` and record everything.

    ``operating``: the threshold to use and the pack's set version (:func:`workbench.thresholds.operating_point`);
    when given, ``threshold`` is ignored and the run records the version, and carries a warning
    when it searched below it, or a note when the pack has none. ``calibration``: gives each
    candidate its ``fmr_at_score``.

    Raises:
        CaseError: the case is unknown or not open, no probes, or two probes share an id.
        PackMismatchError, GalleryError: from the search.
    """
    store.require_open(case_ref)
    if not probes:
        raise CaseError("give at least one probe to search")
    if operating is not None:
        threshold = operating.threshold
    results = search_probes(gallery, list(probes), top=top, threshold=threshold, mode=mode, exact=exact, pack_default=pack_default)
    notes: list[str] = []
    warnings: list[str] = []
    if operating is not None:
        used = results[0][1]
        notes, warnings = search_notes(
            OperatingPoint(used.threshold, operating.source, operating.version), mode=used.mode, pack_id=used.pack_id,
            calibration=calibration,
        )  # fmt: skip
    results = [(probe, annotate(found, calibration)) for probe, found in results]
    run = store.record_search(
        case_ref,
        results,
        top=top,
        gallery_version=gallery_version(gallery),
        threshold_version=operating.version.version if operating is not None and operating.version is not None else None,
        calibration_id=calibration.calibration_id if calibration is not None else None,
        notes=notes,
        warnings=warnings,
    )
    for warning in run.warnings:  # shown by every caller (CLI, dashboard, report); logged for the record
        log.info("search %s: %s", run.search_id, warning)
    log.info("search %s in case %s: %d probe(s), %s search", run.search_id, case_ref, len(run.probes), run.method)
    return run


@dataclass(frozen=True)
class ReplayResult:
    """A recorded search run again: the original, the replay (recorded too) and what changed."""

    original: SearchRun
    replayed: SearchRun
    same: bool
    differences: list[str]

    def as_dict(self) -> dict:
        return {
            "search_id": self.original.search_id,
            "replay_search_id": self.replayed.search_id,
            "same": self.same,
            "differences": self.differences,
            "gallery_version_then": self.original.gallery_version,
            "gallery_version_now": self.replayed.gallery_version,
        }


#: scores closer than this are the same score (float32 arithmetic in a different batch order).
SCORE_TOLERANCE = 1e-4


def replay(store: CaseStore, gallery: Gallery, search_id: int, *, calibration: Calibration | None = None) -> ReplayResult:
    """Re-run recorded search ``search_id`` with its probe embeddings, pack, top, threshold and
    mode, record the replay in the same case, and compare the candidate lists. The replay keeps
    the original's threshold version, notes and warnings (the same settings); ``calibration``
    (the current one) gives its candidates their ``fmr_at_score``.

    A different list after a gallery change (enrolments, removals) is expected; the result says
    what changed. The case must still be open (a replay is a new search), and nothing is
    recorded when the replay cannot run.
    """
    try:
        original = store.search(search_id)
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # a damaged record (JSON, enum values, arrays)
        raise CaseError(f"search {search_id}: the recorded search cannot be read back ({exc}); it cannot be replayed") from exc
    store.require_open(original.case_ref)
    gallery.check_pack(original.pack_id, what=f"recorded search {search_id} (pack {original.pack_id.short})")
    probes = list(original.probes)
    # search_many keeps the given order: probes are shown as they were the first time
    lists = search_many(gallery, probes, top=original.top, threshold=original.threshold, mode=original.mode)
    replayed = store.record_search(
        original.case_ref,
        [(probe, annotate(found, calibration)) for probe, found in zip(probes, lists)],
        top=original.top,
        gallery_version=gallery_version(gallery),
        replay_of=original.search_id,
        threshold_version=original.threshold_version,
        calibration_id=calibration.calibration_id if calibration is not None else None,
        notes=original.notes,
        warnings=original.warnings,
    )
    differences = compare_runs(original, replayed)
    return ReplayResult(original, replayed, not differences, differences)


def compare_runs(a: SearchRun, b: SearchRun) -> list[str]:
    """Human-readable differences between two recorded candidate lists (empty = the same)."""
    differences = []
    for probe in a.probes:
        before = {c.subject_id: c for c in a.candidates_of(probe.probe_id)}
        after = {c.subject_id: c for c in b.candidates_of(probe.probe_id)}
        for subject in sorted(before.keys() - after.keys()):
            differences.append(f"{probe.probe_id}: {subject} (rank {before[subject].rank}) no longer listed")
        for subject in sorted(after.keys() - before.keys()):
            differences.append(f"{probe.probe_id}: {subject} newly listed at rank {after[subject].rank}")
        for subject in sorted(before.keys() & after.keys()):
            x, y = before[subject], after[subject]
            if x.rank != y.rank:
                differences.append(f"{probe.probe_id}: {subject} moved from rank {x.rank} to {y.rank}")
            elif abs(x.score - y.score) > SCORE_TOLERANCE:
                differences.append(f"{probe.probe_id}: {subject} score {x.score:.4f} -> {y.score:.4f}")
    return differences
