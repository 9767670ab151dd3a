"""One investigative search, end to end: probe files -> probes -> candidate lists -> case record.

This is what the ``workbench search`` command and the dashboards call:

* :func:`probes_from_path`: the single place where image and video probes branch. An image
  gives one probe per face found; a video (or folder of stills) one probe per face track, its
  good faces fused, with the track's times and best shot.
* :func:`run_search`: checks the case is open, searches, and records probes, settings, the
  gallery version and the candidate lists exactly as shown, with an audit entry.
* :func:`replay`: re-runs a recorded search with the same probe embeddings, pack and settings
  against the gallery as it is now, and says whether the candidate list is the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .store import CaseStore, SearchRun
from ..config import Settings
from ..errors import CaseError, NoFaceError
from ..fileio import sha256_file
from ..images import crop_box
from ..types import Face, PackId, Probe

#: suffixes that mean "video": searched by face track.
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm", ".ogg", ".ogv", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".3gp"})


@dataclass
class ProbeSet:
    """Probes of one or more files, with what the case record needs about each."""

    probes: list[Probe] = field(default_factory=list)
    details: dict[str, dict] = field(default_factory=dict)  # probe id -> sha256, frame, time, box, crop

    def extend(self, other: "ProbeSet") -> None:
        self.probes.extend(other.probes)
        self.details.update(other.details)


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES or Path(path).is_dir()


def probes_from_path(path: str | Path, engine, *, fuse: bool = False) -> ProbeSet:
    """The probes of one file (see the module docstring); ``fuse`` keeps only the best one.

    Raises:
        NoFaceError: no face (image) or no face track (video) was found.
        ImageError, FootageError: the file cannot be read.
    """
    path = str(path)
    if is_video(path):
        return _video_probes(path, engine, fuse=fuse)
    rgb = engine.load(path)  # read once: analysed, then cropped for the reviewers
    faces = engine.analyse(rgb)
    if not faces:
        raise NoFaceError(f"{path}: no face found; a probe image needs at least one face of at least {engine.settings.min_face_px} px")
    if fuse:
        faces = faces[:1]
    name, digest = Path(path).name, sha256_file(path)
    result = ProbeSet()
    for i, face in enumerate(faces, start=1):
        probe = Probe(probe_id=f"{name}#face{i}", source=path, faces=(face,))
        result.probes.append(probe)
        result.details[probe.probe_id] = {"source_sha256": digest, "bbox_xyxy": face.bbox_xyxy, "crop": crop_box(rgb, face.bbox_xyxy, margin=0.5)}
    return result


def _video_probes(path: str, engine, *, fuse: bool) -> ProbeSet:
    from ..footage import Sampling, extract, track_probe

    result = extract(path, engine, sampling=Sampling(fps=engine.settings.footage_fps))
    if not result.tracks:
        raise NoFaceError(f"{path}: no face found in {result.frames_sampled} sampled frames; a video probe needs at least one face track")
    tracks = sorted(result.tracks, key=lambda t: -t.quality)
    if fuse:
        tracks = tracks[:1]
    out = ProbeSet()
    for track in tracks:
        probe = track_probe(track)
        best = track.best
        out.probes.append(probe)
        out.details[probe.probe_id] = {
            "source_sha256": track.source_sha256, "frame_index": best.frame_index, "timestamp_s": best.timestamp_s,
            "bbox_xyxy": best.face.bbox_xyxy, "crop": result.thumbnail(track.track_id),
        }
    return out


def gallery_version(gallery) -> dict:
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


def run_search(
    settings: Settings,
    case_ref: str | None,
    paths: Sequence[str | Path],
    *,
    engine=None,
    top: int | None = None,
    threshold: float | None = None,
    mode: str = "investigation",
    fuse: bool = False,
    exact: bool | None = None,
) -> SearchRun:
    """Search the faces in ``paths`` inside case ``case_ref`` and record everything.

    Args:
        fuse: the files show one person: their best faces fuse into one probe.
        exact: True forces exact search; None lets the gallery choose (see :mod:`workbench.gallery.search`).

    Raises:
        CaseError: no case given, unknown, or not open (checked before any image is read).
        NoFaceError, ImageError, FootageError, PackMismatchError, GalleryError.
    """
    from ..engine import FaceEngine
    from ..gallery.store import Gallery
    from ..gallery.search import search_probes

    store = CaseStore.open(settings)
    store.require_open(case_ref)
    if not paths:
        raise CaseError("give at least one probe image or video")
    engine = engine or FaceEngine.from_settings(settings)
    with Gallery.open(settings) as gallery:
        gallery.check_pack(engine.pack_id, what=f"probe (pack {engine.pack_id})")
        found = ProbeSet()
        for path in paths:
            found.extend(probes_from_path(path, engine, fuse=fuse))
        probes = found.probes
        if fuse and len(probes) > 1:
            best = max(probes, key=lambda p: p.quality or 0.0)
            probes = [Probe(probe_id="fused", source=";".join(str(p) for p in paths), faces=tuple(f for p in probes for f in p.faces),
                            start_s=best.start_s, end_s=best.end_s)]
            found.details["fused"] = {**found.details[best.probe_id], "source_sha256": ";".join(found.details[p.probe_id]["source_sha256"] for p in found.probes)}
        top = settings.top if top is None else int(top)
        results = search_probes(gallery, probes, top=top, threshold=threshold, mode=mode, exact=exact, pack_default=engine.pack.default_threshold)
        version = gallery_version(gallery)
    return store.record_search(case_ref, results, top=top, gallery_version=version, probe_details=found.details)


@dataclass(frozen=True)
class ReplayResult:
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


def replay(settings: Settings, search_id: int) -> ReplayResult:
    """Re-run recorded search ``search_id`` with its probe embeddings, pack, top, threshold and
    mode, record the replay in the same case, and compare the candidate lists.

    A different list after a gallery change (enrolments, removals) is expected; the result says
    what changed. The case must still be open (a replay is a new search).
    """
    from ..gallery.store import Gallery
    from ..gallery.search import search_many

    store = CaseStore.open(settings)
    original = store.search(search_id)
    store.require_open(original.case_ref)
    name, _, digest = original.pack_id.partition("@")
    pack_id = PackId(name, digest)
    embeddings = store.probe_embeddings(search_id)
    probes = []
    for record in original.probes:
        faces = tuple(
            Face(bbox_xyxy=record.bbox_xyxy or (0.0, 0.0, 0.0, 0.0), landmarks=[[0.0, 0.0]] * 5, detector_score=1.0, embedding=e, pack_id=pack_id)
            for e in embeddings[record.probe_id]
        )
        probes.append(Probe(probe_id=record.probe_id, source=record.source_path, faces=faces, start_s=record.start_s, end_s=record.end_s))
    with Gallery.open(settings) as gallery:
        by_id = {p.probe_id: p for p in probes}
        ordered = [by_id[r.probe_id] for r in original.probes]
        # search_many keeps the given order: probes are shown as they were the first time
        lists = list(zip(ordered, search_many(gallery, ordered, top=original.top, threshold=original.threshold, mode=original.mode)))
        version = gallery_version(gallery)
    details = {
        r.probe_id: {"source_sha256": r.source_sha256, "frame_index": r.frame_index, "timestamp_s": r.timestamp_s,
                     "bbox_xyxy": r.bbox_xyxy or (0.0, 0.0, 0.0, 0.0), "quality": r.quality, "crop": _png_to_rgb(r.crop_png)}
        for r in original.probes
    }
    replayed = store.record_search(original.case_ref, lists, top=original.top, gallery_version=version, probe_details=details, replay_of=original.search_id)
    differences = compare_runs(original, replayed)
    return ReplayResult(original, replayed, not differences, differences)


def _png_to_rgb(data: bytes | None):
    if not data:
        return None
    from ..images import load_image

    return load_image(data)


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
