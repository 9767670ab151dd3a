"""Footage: video files, single stills and folders of stills -> sampled frames -> face tracks.

Pipeline for one source::

    plan_source(path)        sha256; probe; index of every frame's timestamp (demux only, no
                             decoding); cut the sampled time line into chunks
    detect_chunk(chunk, e)   decode one chunk, keep the sampled frames, detect + embed faces
                             (one Dask task per chunk in workbench.footage.distributed)
    assemble(plan, results)  link the faces of all chunks, in time order, into tracks
                             (workbench.footage.tracking), pick best shots, report warnings

:func:`extract` runs the three steps in this process; :func:`workbench.footage.distributed.extract_on_dask`
runs ``detect_chunk`` on a cluster. Tracking always runs once over the whole time line, so the
tracks, their order and their ids do not depend on how the footage was cut into chunks: a
track that crosses a chunk border is one track by construction.

Detection follows ``footage_scan`` (settings, or ``extract(scan=...)``): "full" runs the engine's
whole-frame detection on every sampled frame; "skip" (the default) does so on key frames only
and in between searches only where a new face can be (:mod:`workbench.footage.regions`). The
scan travels in the chunks (``Chunk.keyframe_s``), so Dask workers scan as one process does, and
skip-mode chunks start where a whole scan is due, so chunking changes nothing. Faces are then aligned,
embedded (batched over ``ANALYSE_BATCH`` frames) and assessed as :meth:`FaceEngine.analyse_many`
does (:func:`analyse_rows`); ``FootageResult.scan`` counts what detection ran.

Decoding, times, sampling and source identity: :mod:`workbench.footage.decode`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..config import FOOTAGE_SCANS
from ..errors import FootageError
from ..images import crop_box
from ..types import Face, Probe, Track
from .decode import (
    ANALYSE_BATCH,
    STILL_INTERVAL_S,
    Chunk,
    Frame,
    Sampling,
    SourceInfo,
    SourcePlan,
    _chunk_frames,
    emit_warnings,
    plan_source,
    read_frames,
)
from .regions import ScanStats, SkipScheduler, detect_coarse, detect_in_regions, key_periods, merge_rows, one_canvas_side
from .tracking import FrameFaces, TrackerConfig, probe_faces, scene_signature, track_tracks

if TYPE_CHECKING:
    import pandas as pd

    from ..engine import FaceEngine

#: faces of a track used as a search probe: quality at least this (the best shot always)...
PROBE_MIN_QUALITY = 0.4
#: ...and at most this many, the best first (more add little and cost search time).
PROBE_MAX_FACES = 10


@dataclass(frozen=True)
class ChunkResult:
    """Faces of the sampled frames of one chunk (aligned crops dropped), and what went wrong."""

    frames: tuple[FrameFaces, ...]
    warnings: tuple[str, ...] = ()
    cancelled_at_s: float | None = None  # the time of the first frame not analysed, when cancelled
    scan: ScanStats = field(default_factory=ScanStats, compare=False)


# -- faces ---------------------------------------------------------------------------------------


def detect_chunk(
    chunk: Chunk,
    engine: FaceEngine,
    *,
    batch: int = ANALYSE_BATCH,
    on_frame: Callable[[float], None] | None = None,
    cancel: threading.Event | None = None,
) -> ChunkResult:
    """Decode one chunk and find every face (with embedding and quality) in its sampled frames.

    ``chunk.keyframe_s`` None scans every sampled frame whole; otherwise the "skip" scan
    detects whole key frames only, and in between only where a face can be
    (:mod:`workbench.footage.regions`). Aligned crops are dropped from the faces to keep long
    footage in memory; get pixels back with :meth:`FootageResult.thumbnail`.
    ``on_frame(timestamp_s)`` is called after each analysed frame; when ``cancel`` is set,
    decoding stops after the frames in hand and the result says where (``cancelled_at_s``).
    """
    problems: list[str] = []
    results: list[FrameFaces] = []
    pending: list[tuple[Frame, np.ndarray, np.ndarray]] = []  # frame, detection rows, signature
    stats = ScanStats()
    scheduler = None
    if chunk.keyframe_s is not None:
        canvas = int(getattr(engine.detector, "canvas_size", 640))
        scheduler = SkipScheduler(engine.settings.min_face_px, mosaic_side(engine), whole_side=canvas)

    def flush() -> None:
        analysed = analyse_rows(engine, [(frame.rgb, rows) for frame, rows, _ in pending])
        for (frame, _, signature), faces in zip(pending, analysed):
            results.append(FrameFaces(frame.frame_index, frame.timestamp_s, tuple(faces), signature))
            if on_frame is not None:
                on_frame(frame.timestamp_s)
        pending.clear()

    cancelled_at = None
    for frame in _chunk_frames(chunk, problems):
        if cancel is not None and cancel.is_set():
            cancelled_at = frame.timestamp_s
            break
        signature = frame_signature(frame.rgb)
        if scheduler is None:
            rows = scan_whole(engine, frame.rgb, stats)
        else:
            rows = scan_skipping(engine, frame, _key_period(chunk, frame), signature, scheduler, stats)
        pending.append((frame, rows, signature))
        if len(pending) >= batch:
            flush()
    flush()
    return ChunkResult(tuple(results), tuple(problems), cancelled_at, stats)


def mosaic_side(engine: FaceEngine) -> int:
    """Side (px) of the largest square image the engine searches on one canvas at its
    ``min_face_px``: the size of the mosaics small regions are packed into.

    Read from the detector's canvas size and the smallest face it finds reliably on it
    (``reliable_face_px``; 32 px, the engine's old assumption, for a detector without one).
    """
    detector = engine.detector
    canvas = int(getattr(detector, "canvas_size", 640))
    reliable = float(getattr(detector, "reliable_face_px", 32.0))
    return one_canvas_side(canvas, engine.settings.min_face_px, reliable)


def _key_period(chunk: Chunk, frame: Frame) -> int:
    """The key period of a sampled frame (:func:`workbench.footage.regions.key_periods`)."""
    times, positions = np.array([frame.timestamp_s]), np.array([frame.frame_index])
    slots = chunk.sampling.slots(times, positions)
    sampling = chunk.sampling
    return int(key_periods(times, slots, fps=sampling.fps, start_s=sampling.start_s, keyframe_s=chunk.keyframe_s)[0])


def scan_whole(engine: FaceEngine, rgb: np.ndarray, stats: ScanStats, *, key: bool = True) -> np.ndarray:
    """(N, 15) detection rows of the whole frame (the engine's full pyramid); counted in ``stats``."""
    pixels = rgb.shape[0] * rgb.shape[1]
    stats.frames += int(key)
    stats.key_frames += int(key)
    stats.pixels_full += pixels * int(key)
    stats.pixels_searched += pixels
    return engine.detect_rows(rgb)


def scan_skipping(
    engine: FaceEngine, frame: Frame, period: int, signature: np.ndarray, scheduler: SkipScheduler, stats: ScanStats
) -> np.ndarray:
    """(N, 15) detection rows of one frame of the "skip" scan: the whole frame on key frames,
    else the scheduler's regions, and the whole frame again when a live track is lost there."""
    rgb, t = frame.rgb, frame.timestamp_s
    height, width = rgb.shape[:2]
    plan = scheduler.plan(rgb, t, period, signature)
    if not plan.full:
        rows, images = detect_in_regions(engine.detect_rows, rgb, plan.regions, scheduler.mosaic_side)
        stats.frames += 1
        stats.pixels_full += width * height
        stats.regions += images
        stats.pixels_searched += plan.pixels
        if plan.coarse:
            rows = merge_rows(rows, detect_coarse(engine.detect_rows, rgb))
            stats.coarse += 1
        if plan.whole(width, height) or not scheduler.lost(rows, t, width, height):
            scheduler.observe(rows, t, key=False)
            return rows
        stats.rescans += 1
        rows = scan_whole(engine, rgb, stats, key=False)
    else:
        rows = scan_whole(engine, rgb, stats)
    scheduler.observe(rows, t, key=True)
    return rows


def analyse_rows(engine: FaceEngine, frames: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[list[Face]]:
    """Faces with embedding and quality (no aligned crop) for frames and their detection rows.

    ``frames``: ((H, W, 3) uint8 RGB, (N, 15) rows) pairs. As :meth:`FaceEngine.analyse_many`
    on the same detections: ArcFace alignment, embeddings batched across the frames, quality.
    """
    from ..engine import faces_from_rows

    return engine.complete_faces([(rgb, faces_from_rows(rows)) for rgb, rows in frames], keep_crops=False)


def frame_signature(rgb: np.ndarray) -> np.ndarray:
    """The frame's colour signature for cut detection (see :func:`workbench.footage.tracking.scene_signature`)."""
    # A colour histogram needs no full-resolution average: a bilinear quarter-size copy (which
    # reads one pixel in four) averaged down costs 0.3 ms per 1080p frame, against 3.2 ms for
    # INTER_AREA over every pixel; on the shared clips the two signatures differ by a distance
    # of 0.07 at most, against 0.35 for a cut.
    height, width = rgb.shape[:2]
    quarter = cv2.resize(rgb, (max(64, width // 4), max(36, height // 4)), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(quarter, (64, 36), interpolation=cv2.INTER_AREA)
    return scene_signature(cv2.cvtColor(small, cv2.COLOR_RGB2HSV))


def assemble(
    plan: SourcePlan, results: Sequence[ChunkResult], tracking: TrackerConfig | None = None, *, warn: bool = True
) -> FootageResult:
    """Tracks of one source from its chunks' faces (chunks in plan order)."""
    frames = [frame for result in results for frame in result.frames]
    problems = list(dict.fromkeys([*plan.warnings, *(w for r in results for w in r.warnings)]))
    if not plan.chunks:
        problems.append(f"{plan.info.path}: no frames between {plan.sampling.start_s:g} s and {plan.sampling.end_s} s")
    tracks = track_tracks(frames, source_path=plan.info.path, source_sha256=plan.info.sha256, config=tracking)
    if warn:
        emit_warnings(problems)
    sampled = tuple((f.frame_index, f.timestamp_s) for f in frames)
    scan = ScanStats()
    for result in results:
        scan.add(result.scan)
    return FootageResult(plan.info, tracks, plan.sampling, len(frames), tuple(problems), sampled_frames=sampled, scan=scan)


def scan_keyframe_s(settings, scan: str | None = None) -> float | None:
    """The key-frame period for the chunks of a plan: ``settings.footage_keyframe_s`` in "skip"
    mode, None (every sampled frame scanned whole) in "full" mode.

    ``scan``: "skip" or "full", overriding ``settings.footage_scan``.
    """
    mode = scan or settings.footage_scan
    if mode not in FOOTAGE_SCANS:
        raise FootageError(f"footage scan must be one of {', '.join(FOOTAGE_SCANS)}, got {mode!r}")
    return settings.footage_keyframe_s if mode == "skip" else None


def extract(
    path: str | os.PathLike,
    engine: FaceEngine,
    *,
    sampling: Sampling | None = None,
    tracking: TrackerConfig | None = None,
    chunk_s: float | None = None,
    progress: Callable[[float, float], None] | None = None,
    cancel: threading.Event | None = None,
    scan: str | None = None,
) -> FootageResult:
    """Every distinct face of one source, as tracks with best shots, in this process.

    Args:
        path: a video file, a still, or a folder of stills.
        engine: the face engine (its pack's embeddings go into the tracks).
        sampling: frames to analyse; default ``Sampling(fps=engine.settings.footage_fps)``.
        tracking: tracker parameters (see :mod:`workbench.footage.tracking`).
        chunk_s: decode in chunks of this many seconds (the result is the same; only memory
            and seeking differ). None = one pass.
        progress: called as ``progress(done_s, total_s)`` in seconds of footage after each
            analysed frame (stills count ``STILL_INTERVAL_S`` each).
        cancel: when set, extraction stops; the tracks of the frames analysed so far are kept
            and a warning says where it stopped.
        scan: "skip" (detect whole key frames, in between only where a face can be) or "full"
            (every sampled frame whole); default ``engine.settings.footage_scan``.

    Raises:
        FootageError: the source cannot be read at all. Partial damage is a FootageWarning.
    """
    sampling = sampling or Sampling(fps=engine.settings.footage_fps)
    plan = plan_source(path, sampling, chunk_s=chunk_s, keyframe_s=scan_keyframe_s(engine.settings, scan))
    start = sampling.start_s
    total = _span_s(plan)
    on_frame = None if progress is None else (lambda t: progress(min(max(t - start, 0.0), total), total))
    results = []
    for chunk in plan.chunks:
        result = detect_chunk(chunk, engine, on_frame=on_frame, cancel=cancel)
        results.append(result)
        if result.cancelled_at_s is not None or (cancel is not None and cancel.is_set()):
            stopped = (
                result.cancelled_at_s if result.cancelled_at_s is not None else (result.frames[-1].timestamp_s if result.frames else start)
            )
            results.append(
                ChunkResult((), (f"{plan.info.path}: extraction cancelled at {stopped:.1f} s; the faces found before are kept",))
            )
            break
    else:
        if progress is not None:
            progress(total, total)
    return assemble(plan, results, tracking)


def _span_s(plan: SourcePlan) -> float:
    """Seconds of footage the plan covers (for progress)."""
    info, sampling = plan.info, plan.sampling
    end = info.duration_s if info.duration_s is not None else info.frame_count * STILL_INTERVAL_S
    if sampling.end_s is not None:
        end = min(end, sampling.end_s)
    return max(end - sampling.start_s, 0.0)


def extract_many(
    paths: Iterable[str | os.PathLike], engine: FaceEngine, *, return_errors: bool = False, **options
) -> list[FootageResult | FootageError]:
    """:func:`extract` for several sources, results in input order.

    With ``return_errors``, the FootageError of a source that cannot be read stands in its
    place in the list and the other sources are still extracted.
    """
    out: list[FootageResult | FootageError] = []
    for path in paths:
        try:
            out.append(extract(path, engine, **options))
        except FootageError as exc:
            if not return_errors:
                raise
            out.append(exc)
    return out


def track_probe(track: Track, *, min_quality: float = PROBE_MIN_QUALITY, max_faces: int = PROBE_MAX_FACES) -> Probe:
    """A search probe from a face track: its good faces (:func:`workbench.footage.tracking.probe_faces`),
    whose scores the search fuses, and the track's times. ``probe_id`` is ``"<file name>#track<id>"``."""
    return Probe(
        probe_id=f"{Path(track.source_path).name}#track{track.track_id}",
        source=track.source_path,
        faces=tuple(probe_faces(track, min_quality=min_quality, max_faces=max_faces)),
        start_s=round(track.start_s, 3),
        end_s=round(track.end_s, 3),
    )


# -- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FootageResult:
    """The tracks found in one source.

    Attributes:
        info: the source (path, sha256, kind, size, codec...).
        tracks: tracks in id order (first appearance, then left to right).
        sampling: the frames that were analysed.
        frames_sampled: sampled frames actually decoded and analysed.
        warnings: problems met (damaged data), each naming the file and the time.
        sampled_frames: (frame_index, timestamp_s) of every frame analysed, in time order, with or
            without faces: the frames a person can draw a missed face on (see :meth:`frame`).
        scan: what detection ran: frames scanned whole, regions, pixels searched
            (:class:`workbench.footage.regions.ScanStats`).
    """

    info: SourceInfo
    tracks: tuple[Track, ...]
    sampling: Sampling
    frames_sampled: int
    warnings: tuple[str, ...] = ()
    sampled_frames: tuple[tuple[int, float], ...] = field(default=(), repr=False, compare=False)
    scan: ScanStats = field(default_factory=ScanStats, repr=False, compare=False)

    def track(self, track_id: int) -> Track:
        for track in self.tracks:
            if track.track_id == track_id:
                return track
        raise FootageError(f"{self.info.path}: no track {track_id} (tracks 1..{len(self.tracks)})")

    @cached_property
    def faces(self) -> pd.DataFrame:
        """One row per face: source, sha256, track_id, frame_index, timestamp_s, x1, y1, x2, y2,
        detector_score, quality, is_best (the track's best shot)."""
        import pandas as pd

        columns = [
            "source",
            "sha256",
            "track_id",
            "frame_index",
            "timestamp_s",
            "x1",
            "y1",
            "x2",
            "y2",
            "detector_score",
            "quality",
            "is_best",
        ]
        rows = [
            (
                self.info.path,
                self.info.sha256,
                t.track_id,
                f.frame_index,
                f.timestamp_s,
                *f.face.bbox_xyxy,
                f.face.detector_score,
                f.quality_score,
                i == t.best_index,
            )
            for t in self.tracks
            for i, f in enumerate(t.faces)
        ]
        frame = pd.DataFrame(rows, columns=columns)
        return frame.sort_values(["frame_index", "track_id"], kind="stable").reset_index(drop=True)

    def tracks_table(self) -> pd.DataFrame:
        """One row per track: track_id, start_s, end_s, n_faces, quality, best_frame_index, best_timestamp_s."""
        import pandas as pd

        rows = [(t.track_id, t.start_s, t.end_s, t.n_faces, t.quality, t.best.frame_index, t.best.timestamp_s) for t in self.tracks]
        return pd.DataFrame(rows, columns=["track_id", "start_s", "end_s", "n_faces", "quality", "best_frame_index", "best_timestamp_s"])

    def frame(self, frame_index: int, timestamp_s: float) -> np.ndarray:
        """Decode one frame again (upright RGB): for thumbnails and review."""
        return read_frames(self.info, [(frame_index, timestamp_s)])[0]

    def thumbnail(self, track_id: int, frame_index: int | None = None, *, margin: float = 0.5) -> np.ndarray:
        """A loose crop (RGB) around the track's face in one frame (default: the best shot).

        The frame is decoded again from the source, so the source must still be readable.
        ``margin`` is the share of the box size added on each side.
        """
        track = self.track(track_id)
        face = track.best if frame_index is None else next((f for f in track.faces if f.frame_index == frame_index), None)
        if face is None:
            raise FootageError(f"{self.info.path}: track {track_id} has no face in frame {frame_index}")
        return crop_box(self.frame(face.frame_index, face.timestamp_s), face.face.bbox_xyxy, margin)

    def best_shots(self, *, margin: float = 0.5) -> dict[int, np.ndarray]:
        """Best-shot crops of every track, decoding the source once: {track_id: RGB crop}."""
        wanted = [(t.best.frame_index, t.best.timestamp_s) for t in self.tracks]
        images = read_frames(self.info, wanted)
        return {t.track_id: crop_box(image, t.best.face.bbox_xyxy, margin) for t, image in zip(self.tracks, images)}

    def save_best_shots(self, folder: str | os.PathLike, *, margin: float = 0.5) -> dict[int, Path]:
        """Write each track's best shot as JPEG: ``<name>_<sha256[:8]>_track<id>.jpg``, owner-only
        (0600; a folder that does not exist is created 0700): they are face images.

        Raises:
            FootageError: ``folder`` is a file or cannot be written.
        """
        import io

        from PIL import Image

        from ..errors import WorkbenchError
        from ..fileio import atomic_write, checked_output_dir, os_error_message

        try:
            folder = checked_output_dir(folder, what="folder for face crops")
        except WorkbenchError as exc:
            raise FootageError(str(exc)) from exc
        stem = Path(self.info.path).stem or "footage"
        written = {}
        for track_id, crop in self.best_shots(margin=margin).items():
            target = folder / f"{stem}_{self.info.sha256[:8]}_track{track_id:03d}.jpg"
            buffer = io.BytesIO()
            Image.fromarray(crop).save(buffer, format="JPEG", quality=95)
            try:
                atomic_write(target, buffer.getvalue())
            except OSError as exc:
                raise FootageError(f"cannot save the face crops: {os_error_message(exc)}") from exc
            written[track_id] = target
        return written

    def as_dict(self) -> dict:
        return {
            "source": self.info.as_dict(),
            "frames_sampled": self.frames_sampled,
            "sampling": {"fps": self.sampling.fps, "start_s": self.sampling.start_s, "end_s": self.sampling.end_s},
            "warnings": list(self.warnings),
            "tracks": [t.as_dict() for t in self.tracks],
        }
