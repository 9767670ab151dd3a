"""Footage: video files, single stills and folders of stills -> sampled frames -> face tracks.

Pipeline for one source::

    plan_source(path)        sha256; probe; index of every frame's timestamp (demux only, no
                             decoding); cut the sampled time line into chunks
    detect_chunk(chunk, e)   decode one chunk, keep the sampled frames, detect + embed faces
                             (one Dask task per chunk in workbench.distributed)
    assemble(plan, results)  link the faces of all chunks, in time order, into tracks
                             (workbench.tracking), pick best shots, report warnings

:func:`extract` runs the three steps in this process; :func:`workbench.distributed.extract_on_dask`
runs ``detect_chunk`` on a cluster. Tracking always runs once over the whole time line, so the
tracks, their order and their ids do not depend on how the footage was cut into chunks: a
track that crosses a chunk border is one track by construction.

Decoding
--------
PyAV (FFmpeg) reads every container and codec FFmpeg knows: mp4/mov, avi, mkv, webm, ogg, mpeg-ts
with h264, h265, mpeg4/xvid, vp8/vp9, theora, mjpeg, ... Frames are turned upright using the
stream's display matrix (phone videos) and stretched to square pixels when the stream has a
non-square sample aspect ratio (DVD/DV-style CCTV exports), so boxes are in display pixels.

Times and indices
-----------------
* ``timestamp_s``: the frame's presentation timestamp (pts x time base) minus the container's
  start time: the time a player shows for that frame. Never a frame count divided by a nominal
  rate, so variable-frame-rate and damaged footage still give true times.
* ``frame_index``: the frame's position in presentation order among all frames of the stream,
  taken from the demuxer's packet timestamps (read without decoding when the source is
  planned). It is the same whichever chunk decodes the frame.
* Stills have no clock: still ``i`` of a folder (natural sort: ``img2`` before ``img10``) gets
  ``frame_index = i`` and ``timestamp_s = i * STILL_INTERVAL_S``.

Sampling
--------
``Sampling(fps=5)`` cuts the time line from ``start_s`` into slots of 1/fps seconds and keeps
the first frame of each slot; ``fps=None`` keeps every frame. Chunks are whole runs of slots, so
a chunked run samples exactly the frames a single pass samples.

Identity of a source
--------------------
A file is identified by the sha256 of its bytes. A folder of stills by the sha256 of its
listing, one ``"<sha256 of the still>  <file name>\\n"`` line per still in the order used (the
``sha256sum`` format).

Damaged input
-------------
A missing, empty, unreadable or non-video file is a :class:`FootageError` naming the file. A
video that ends early (truncated download, cut recording) or holds undecodable packets keeps
every frame before the damage; a :class:`FootageWarning` names the file and the time. An mp4
cut before its index (``moov``) was written cannot be read at all (FFmpeg needs the index) and
is an error that says so.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import av
import cv2
import numpy as np

from .errors import FootageError, ImageError
from .fileio import sha256_file
from .images import IMAGE_SUFFIXES, crop_box, load_image
from .tracking import (
    FrameFaces,
    TrackerConfig,
    probe_faces,
    scene_signature,
    track_tracks,
)
from .types import Probe, Track

if TYPE_CHECKING:
    import pandas as pd

    from .engine import FaceEngine

#: suffixes taken for video when listing folders (any file that is not a still is tried as video).
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".ogg", ".ogv", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".wmv", ".asf", ".flv", ".3gp"}
)
#: seconds between two stills of a folder (stills carry no time of their own).
STILL_INTERVAL_S = 1.0
#: slack when putting a time into a sampling slot, so a frame exactly on a slot border is stable.
_SLOT_EPS = 1e-6
#: a video with more undecodable packets than this is abandoned at that point (with a warning).
MAX_DECODE_ERRORS = 25
#: sampled frames analysed per engine call (the engine batches their embeddings).
ANALYSE_BATCH = 4
#: default chunk length for scale-out, seconds of footage.
DEFAULT_CHUNK_S = 60.0
#: faces of a track used as a search probe: quality at least this (the best shot always)...
PROBE_MIN_QUALITY = 0.4
#: ...and at most this many, the best first (more add little and cost search time).
PROBE_MAX_FACES = 10


class FootageWarning(UserWarning):
    """Footage was read only in part (damaged or truncated); the message names the file and time."""


class SourceKind(Enum):
    VIDEO = "video"
    IMAGE = "image"
    STILLS = "stills"


@dataclass(frozen=True)
class Sampling:
    """Which frames of a source are analysed.

    Attributes:
        fps: frames per second to sample; None = every frame.
        start_s: first time analysed, seconds (inclusive).
        end_s: time where analysis stops, seconds (exclusive); None = the end.
    """

    fps: float | None = 5.0
    start_s: float = 0.0
    end_s: float | None = None

    def __post_init__(self) -> None:
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise FootageError(f"sampling rate must be a positive number of frames per second, got {self.fps!r}")
        if not (math.isfinite(self.start_s) and self.start_s >= 0):
            raise FootageError(f"start time must be >= 0 seconds, got {self.start_s!r}")
        if self.end_s is not None and not self.end_s > self.start_s:
            raise FootageError(f"end time must be after the start time ({self.start_s} s), got {self.end_s!r}")

    def in_range(self, times: np.ndarray) -> np.ndarray:
        """Boolean mask of the times inside [start_s, end_s)."""
        times = np.asarray(times, np.float64)
        mask = times >= self.start_s - _SLOT_EPS
        if self.end_s is not None:
            mask &= times < self.end_s - _SLOT_EPS
        return mask

    def slots(self, times: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Slot number of each time; a frame is sampled when it is the first of its slot.

        With ``fps=None`` every frame is its own slot (its position).
        """
        if self.fps is None:
            return np.asarray(positions, np.int64)
        return np.floor((np.asarray(times, np.float64) - self.start_s) * self.fps + _SLOT_EPS).astype(np.int64)


@dataclass(frozen=True)
class Frame:
    """One sampled frame: ``rgb`` is (H, W, 3) uint8, upright, square pixels."""

    frame_index: int
    timestamp_s: float
    rgb: np.ndarray = field(repr=False, compare=False)


@dataclass(frozen=True)
class SourceInfo:
    """What a source is. ``files`` lists the stills of a folder in the order used (frame_index)."""

    path: str
    sha256: str
    kind: SourceKind
    frame_count: int
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    container: str | None = None
    nominal_fps: float | None = None
    files: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "kind": self.kind.value,
            "frame_count": self.frame_count,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "width": self.width,
            "height": self.height,
            "codec": self.codec,
            "container": self.container,
            "nominal_fps": None if self.nominal_fps is None else round(self.nominal_fps, 3),
        }


@dataclass(frozen=True, eq=False)
class Chunk:
    """A run of whole sampling slots of one source: the unit of work of one worker.

    For video, ``pts`` holds the presentation timestamps (stream time base) of every frame of the
    chunk in order, ``index_offset`` the frame_index of the first. For stills, ``files`` holds
    the chunk's stills and ``index_offset`` the position of the first in the folder.
    """

    path: str
    kind: SourceKind
    sampling: Sampling
    index_offset: int
    pts: np.ndarray | None = None
    time_base: Fraction | None = None
    origin_s: float = 0.0
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class SourcePlan:
    """A planned source: its identity, its chunks and the warnings found while indexing it."""

    info: SourceInfo
    sampling: Sampling
    chunks: tuple[Chunk, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChunkResult:
    """Faces of the sampled frames of one chunk (aligned crops dropped), and what went wrong."""

    frames: tuple[FrameFaces, ...]
    warnings: tuple[str, ...] = ()


# -- identifying and planning sources ----------------------------------------------------------


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_stills(folder: str | os.PathLike) -> list[Path]:
    """The stills of a folder (not recursive), natural-sorted by file name."""
    folder = Path(folder)
    stills = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(stills, key=lambda p: _natural_key(p.name))


def _check_path(path: Path) -> None:
    if not path.exists():
        raise FootageError(f"{path}: no such file or folder")
    if path.is_file() and path.stat().st_size == 0:
        raise FootageError(f"{path}: file is empty (0 bytes)")


def plan_source(path: str | os.PathLike, sampling: Sampling | None = None, *, chunk_s: float | None = None) -> SourcePlan:
    """Identify a source (sha256), index its frames and cut it into chunks.

    Args:
        path: a video file, a still image, or a folder of stills.
        sampling: which frames to analyse (default: 5 frames per second, whole source).
        chunk_s: chunk length in seconds of footage (stills: ``chunk_s / STILL_INTERVAL_S``
            stills); None = one chunk.

    Raises:
        FootageError: the path is missing, empty, not a video or still, or holds no frames.
    """
    sampling = sampling or Sampling()
    if chunk_s is not None and not chunk_s > 0:
        raise FootageError(f"chunk length must be positive seconds, got {chunk_s!r}")
    path = Path(path)
    _check_path(path)
    if path.is_dir():
        return _plan_stills(path, sampling, chunk_s)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _plan_image(path, sampling)
    return _plan_video(path, sampling, chunk_s)


def _chunk_bounds(slots: np.ndarray, slots_per_chunk: int | None) -> list[tuple[int, int]]:
    """[start, end) positions into ``slots`` (non-decreasing) cutting them into runs of whole slots."""
    if len(slots) == 0:
        return []
    if slots_per_chunk is None:
        return [(0, len(slots))]
    groups = slots // slots_per_chunk
    cuts = np.flatnonzero(np.diff(groups)) + 1
    edges = [0, *cuts.tolist(), len(slots)]
    return list(zip(edges[:-1], edges[1:]))


def _slots_per_chunk(sampling: Sampling, chunk_s: float | None, frame_rate: float) -> int | None:
    if chunk_s is None:
        return None
    per_second = sampling.fps if sampling.fps is not None else frame_rate
    return max(1, round(chunk_s * per_second))


def _plan_image(path: Path, sampling: Sampling) -> SourcePlan:
    try:
        load_image(path)  # fail here, naming the file, rather than inside a worker
    except ImageError as exc:
        raise FootageError(str(exc)) from exc
    sha = sha256_file(path)
    info = SourceInfo(str(path), sha, SourceKind.IMAGE, frame_count=1, files=(str(path),))
    chunks = (Chunk(str(path), SourceKind.IMAGE, sampling, 0, files=(str(path),)),) if sampling.in_range(np.zeros(1))[0] else ()
    return SourcePlan(info, sampling, chunks)


def _plan_stills(folder: Path, sampling: Sampling, chunk_s: float | None) -> SourcePlan:
    stills = list_stills(folder)
    if not stills:
        videos = [p.name for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES]
        hint = f" (it holds {len(videos)} video file(s): pass them as files)" if videos else ""
        raise FootageError(f"{folder}: no still images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder{hint}")
    listing = "".join(f"{sha256_file(p)}  {p.name}\n" for p in stills)
    sha = hashlib.sha256(listing.encode("utf-8")).hexdigest()
    files = tuple(str(p) for p in stills)
    info = SourceInfo(str(folder), sha, SourceKind.STILLS, frame_count=len(files), files=files)
    positions = np.arange(len(files))
    times = positions * STILL_INTERVAL_S
    keep = np.flatnonzero(sampling.in_range(times))
    slots = sampling.slots(times[keep], keep)
    chunks = tuple(
        Chunk(str(folder), SourceKind.STILLS, sampling, int(keep[a]), files=files[keep[a] : keep[b - 1] + 1])
        for a, b in _chunk_bounds(slots, _slots_per_chunk(sampling, chunk_s, 1.0 / STILL_INTERVAL_S))
    )
    return SourcePlan(info, sampling, chunks)


def _open_container(path: Path):
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        detail = getattr(exc, "strerror", None) or str(exc)
        hint = ""
        if path.suffix.lower() in {".mp4", ".mov", ".m4v", ".3gp"}:
            hint = "; an mp4/mov cut before its index ('moov' atom) was written cannot be read"
        raise FootageError(f"{path}: not a video FFmpeg can read ({detail}){hint}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise FootageError(f"{path}: cannot be opened ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise FootageError(f"{path}: holds no video stream (streams: {', '.join(s.type for s in container.streams) or 'none'})")
    return container


def _origin_s(container, stream) -> float:
    """Start of the presentation, seconds: the container's start time, which players subtract."""
    if container.start_time is not None:
        return container.start_time / 1_000_000
    if stream.start_time is not None and stream.time_base is not None:
        return float(stream.start_time * stream.time_base)
    return 0.0


def pts_to_seconds(pts, time_base: Fraction, origin_s: float) -> np.ndarray:
    """Presentation timestamps (stream time base) -> seconds from the start. One formula
    everywhere, so the planner and every chunk compute bit-identical times."""
    return np.asarray(pts, np.float64) * time_base.numerator / time_base.denominator - origin_s


def _frame_rate(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 25.0


def _plan_video(path: Path, sampling: Sampling, chunk_s: float | None) -> SourcePlan:
    sha = sha256_file(path)
    container = _open_container(path)
    try:
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
        origin = _origin_s(container, stream)
        rate = _frame_rate(stream)
        pts, problems = _index_packets(path, container, stream, time_base, origin, rate)
        declared = _declared_end_s(container, stream, time_base, origin, rate)
        width, height = _display_size(stream.codec_context.width, stream.codec_context.height, stream.sample_aspect_ratio)
        info = SourceInfo(
            str(path),
            sha,
            SourceKind.VIDEO,
            frame_count=len(pts),
            duration_s=declared,
            width=width,
            height=height,
            codec=stream.codec_context.name,
            container=container.format.name,
            nominal_fps=rate,
        )
    finally:
        container.close()
    if len(pts) == 0:
        raise FootageError(f"{path}: the video stream holds no frames" + (f" ({problems[0]})" if problems else ""))
    times = pts_to_seconds(pts, time_base, origin)
    found_end = float(times[-1]) + 1.0 / rate
    if declared is not None and found_end < declared - max(0.5, 3.0 / rate):
        problems.append(
            f"{path}: video data ends at {found_end:.2f} s but the file declares {declared:.2f} s "
            f"(truncated or damaged); faces before {found_end:.2f} s are kept"
        )
    keep = np.flatnonzero(sampling.in_range(times))
    slots = sampling.slots(times[keep], keep)
    chunks = tuple(
        Chunk(str(path), SourceKind.VIDEO, sampling, int(keep[a]), pts=pts[keep[a] : keep[b - 1] + 1], time_base=time_base, origin_s=origin)
        for a, b in _chunk_bounds(slots, _slots_per_chunk(sampling, chunk_s, rate))
    )
    return SourcePlan(info, sampling, chunks, tuple(problems))


def _index_packets(path: Path, container, stream, time_base: Fraction, origin: float, rate: float) -> tuple[np.ndarray, list[str]]:
    """Sorted presentation timestamps of every frame, from the demuxer (no decoding)."""
    values: list[int] = []
    problems: list[str] = []
    step = max(1, round(1 / (rate * time_base)))
    missing = 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # flush packet, or a Theora "repeat the previous frame" marker
            pts = packet.pts if packet.pts is not None else packet.dts
            if pts is None:
                missing += 1
                pts = (values[-1] + step) if values else 0
            values.append(int(pts))
    except av.FFmpegError as exc:
        at = float(pts_to_seconds(max(values), time_base, origin)[()]) if values else 0.0
        problems.append(f"{path}: unreadable after {at:.2f} s ({exc}); faces before {at:.2f} s are kept")
    if missing:
        problems.append(f"{path}: {missing} packet(s) carry no timestamp; their times are estimated from the nominal frame rate")
    return np.unique(np.asarray(values, np.int64)), problems


def _declared_end_s(container, stream, time_base: Fraction, origin: float, rate: float) -> float | None:
    """End of the video as the file's headers declare it, seconds from the start (None if unknown).

    The stream's own duration or frame count is preferred: the container's duration may be the
    audio's, which often runs a little longer.
    """
    candidates = []
    start = float(stream.start_time * time_base) - origin if stream.start_time is not None else 0.0
    if stream.duration:
        candidates.append(start + float(stream.duration * time_base))
    if stream.frames:
        candidates.append(start + stream.frames / rate)
    if candidates:
        return max(candidates)
    if container.duration:
        return container.duration / 1_000_000
    return None


def _display_size(width: int, height: int, sar) -> tuple[int, int]:
    """Frame size in square pixels: the width is stretched by the sample aspect ratio."""
    if sar and sar.numerator and sar.denominator and sar != 1:
        return max(1, round(width * float(sar))), height
    return width, height


# -- decoding ------------------------------------------------------------------------------------


def iter_frames(
    path: str | os.PathLike,
    sampling: Sampling | None = None,
    *,
    problems: list[str] | None = None,
) -> Iterator[Frame]:
    """The sampled frames of a source, in time order (plans the source first).

    Problems met on the way (damaged data) are appended to ``problems`` when given, else
    emitted as :class:`FootageWarning`.
    """
    plan = plan_source(path, sampling)
    collected: list[str] = list(plan.warnings)
    for chunk in plan.chunks:
        yield from _chunk_frames(chunk, collected)
    if problems is not None:
        problems.extend(collected)
    else:
        emit_warnings(collected)


def _chunk_frames(chunk: Chunk, problems: list[str]) -> Iterator[Frame]:
    if chunk.kind is SourceKind.VIDEO:
        yield from _video_frames(chunk, problems)
    else:
        yield from _still_frames(chunk, problems)


def _still_frames(chunk: Chunk, problems: list[str]) -> Iterator[Frame]:
    positions = np.arange(chunk.index_offset, chunk.index_offset + len(chunk.files))
    times = positions * STILL_INTERVAL_S
    last_slot = None
    for position, t, slot, file in zip(positions, times, chunk.sampling.slots(times, positions), chunk.files):
        if last_slot is not None and slot <= last_slot:
            continue
        last_slot = slot
        try:
            rgb = load_image(file)
        except ImageError as exc:
            if chunk.kind is SourceKind.IMAGE:
                raise FootageError(str(exc)) from exc
            problems.append(f"{file}: skipped still {position} (at {t:.2f} s): {exc}")
            continue
        yield Frame(int(position), float(t), rgb)


def _video_frames(chunk: Chunk, problems: list[str]) -> Iterator[Frame]:
    """Decode one chunk: seek to the keyframe before it, keep its sampled frames."""
    first, last = int(chunk.pts[0]), int(chunk.pts[-1])
    one_second = max(1, round(1 / chunk.time_base))
    # Seek targets, nearest first; None = decode from the start. Some demuxers (avi, ogg) may
    # land after the target; we then step further back rather than lose frames.
    targets: list[int | None] = [None] if chunk.index_offset == 0 else [first, first - 2 * one_second, first - 10 * one_second, None]
    for target in targets:
        container = _open_container(Path(chunk.path))
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if target is not None:
                container.seek(max(target, 0), stream=stream, backward=True, any_frame=False)
            decoded = _decode(container, stream, chunk, problems)
            head = next(decoded, None)
            if head is None:
                return
            if target is not None and head[0].pts is not None and head[0].pts > first:
                continue  # overshot: try an earlier target
            yield from _sample(chunk, _prepend(head, decoded), first, last, stream.sample_aspect_ratio)
            return
        finally:
            container.close()


def _prepend(head, rest):
    yield head
    yield from rest


def _decode(container, stream, chunk: Chunk, problems: list[str]):
    """Yield (frame, time_s) in presentation order, skipping undecodable packets (with a note)."""
    errors = 0
    last_good = None
    name = chunk.path
    try:
        packets = container.demux(stream)
        for packet in packets:
            if packet.size == 0 and packet.pts is not None:
                continue  # Theora "repeat previous frame": nothing new to decode
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                errors += 1
                at = last_good if last_good is not None else _packet_time(packet, chunk)
                problems.append(f"{name}: undecodable data after {at:.2f} s ({exc}); faces before it are kept")
                if errors > MAX_DECODE_ERRORS:
                    problems.append(f"{name}: gave up after {errors} decoding errors at {at:.2f} s")
                    return
                continue
            for frame in frames:
                if frame.pts is None:
                    continue
                t = float(pts_to_seconds(frame.pts, chunk.time_base, chunk.origin_s)[()])
                last_good = t
                yield frame, t
    except av.FFmpegError as exc:
        at = last_good or 0.0
        problems.append(f"{name}: unreadable after {at:.2f} s ({exc}); faces before {at:.2f} s are kept")


def _packet_time(packet, chunk: Chunk) -> float:
    pts = packet.pts if packet.pts is not None else packet.dts
    return float(pts_to_seconds(pts, chunk.time_base, chunk.origin_s)[()]) if pts is not None else 0.0


def _sample(chunk: Chunk, decoded, first: int, last: int, sar) -> Iterator[Frame]:
    last_slot = None
    for frame, t in decoded:
        if frame.pts < first:
            continue  # pre-roll from the keyframe before the chunk
        if frame.pts > last:
            return
        position = chunk.index_offset + int(np.searchsorted(chunk.pts, frame.pts))
        slot = int(chunk.sampling.slots(np.array([t]), np.array([position]))[0])
        if last_slot is not None and slot <= last_slot:
            continue
        last_slot = slot
        yield Frame(position, t, _frame_rgb(frame, sar))


def _frame_rgb(frame, sar) -> np.ndarray:
    """Upright, square-pixel (H, W, 3) uint8 RGB (``sar``: the stream's sample aspect ratio)."""
    width, height = _display_size(frame.width, frame.height, sar)
    if (width, height) != (frame.width, frame.height):
        rgb = frame.reformat(width=width, height=height, format="rgb24").to_ndarray()
    else:
        rgb = frame.to_ndarray(format="rgb24")
    rotation = int(round((frame.rotation or 0) / 90.0)) % 4
    if rotation:
        # The display matrix rotates the decoded picture counter-clockwise by `rotation` degrees.
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation))
    return rgb


# -- faces ---------------------------------------------------------------------------------------


def detect_chunk(chunk: Chunk, engine: FaceEngine, *, batch: int = ANALYSE_BATCH) -> ChunkResult:
    """Decode one chunk and find every face (with embedding and quality) in its sampled frames.

    Aligned crops are dropped from the faces to keep long footage in memory; get pixels back
    with :meth:`FootageResult.thumbnail`.
    """
    problems: list[str] = []
    results: list[FrameFaces] = []
    pending: list[Frame] = []

    def flush() -> None:
        for frame, faces in zip(pending, engine.analyse_many([f.rgb for f in pending])):
            faces = tuple(f.replace(aligned=None) for f in faces)
            results.append(FrameFaces(frame.frame_index, frame.timestamp_s, faces, frame_signature(frame.rgb)))
        pending.clear()

    for frame in _chunk_frames(chunk, problems):
        pending.append(frame)
        if len(pending) >= batch:
            flush()
    flush()
    return ChunkResult(tuple(results), tuple(problems))


def frame_signature(rgb: np.ndarray) -> np.ndarray:
    """The frame's colour signature for cut detection (see :func:`workbench.tracking.scene_signature`)."""
    small = cv2.resize(rgb, (64, 36), interpolation=cv2.INTER_AREA)
    return scene_signature(cv2.cvtColor(small, cv2.COLOR_RGB2HSV))


def emit_warnings(messages: Iterable[str]) -> None:
    for message in messages:
        warnings.warn(message, FootageWarning, stacklevel=3)


def assemble(plan: SourcePlan, results: Sequence[ChunkResult], tracking: TrackerConfig | None = None, *, warn: bool = True) -> FootageResult:
    """Tracks of one source from its chunks' faces (chunks in plan order)."""
    frames = [frame for result in results for frame in result.frames]
    problems = list(dict.fromkeys([*plan.warnings, *(w for r in results for w in r.warnings)]))
    if not plan.chunks:
        problems.append(f"{plan.info.path}: no frames between {plan.sampling.start_s:g} s and {plan.sampling.end_s} s")
    tracks = track_tracks(frames, source_path=plan.info.path, source_sha256=plan.info.sha256, config=tracking)
    if warn:
        emit_warnings(problems)
    return FootageResult(plan.info, tracks, plan.sampling, len(frames), tuple(problems))


def extract(
    path: str | os.PathLike,
    engine: FaceEngine,
    *,
    sampling: Sampling | None = None,
    tracking: TrackerConfig | None = None,
    chunk_s: float | None = None,
) -> FootageResult:
    """Every distinct face of one source, as tracks with best shots, in this process.

    Args:
        path: a video file, a still, or a folder of stills.
        engine: the face engine (its pack's embeddings go into the tracks).
        sampling: frames to analyse; default ``Sampling(fps=engine.settings.footage_fps)``.
        tracking: tracker parameters (see :mod:`workbench.tracking`).
        chunk_s: decode in chunks of this many seconds (the result is the same; only memory
            and seeking differ). None = one pass.

    Raises:
        FootageError: the source cannot be read at all. Partial damage is a FootageWarning.
    """
    sampling = sampling or Sampling(fps=engine.settings.footage_fps)
    plan = plan_source(path, sampling, chunk_s=chunk_s)
    return assemble(plan, [detect_chunk(chunk, engine) for chunk in plan.chunks], tracking)


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
    """A search probe from a face track: its good faces (:func:`workbench.tracking.probe_faces`),
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
    """

    info: SourceInfo
    tracks: tuple[Track, ...]
    sampling: Sampling
    frames_sampled: int
    warnings: tuple[str, ...] = ()

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

        columns = ["source", "sha256", "track_id", "frame_index", "timestamp_s", "x1", "y1", "x2", "y2", "detector_score", "quality", "is_best"]
        rows = [
            (self.info.path, self.info.sha256, t.track_id, f.frame_index, f.timestamp_s, *f.face.bbox_xyxy, f.face.detector_score, f.quality_score, i == t.best_index)
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
        """Write each track's best shot as JPEG: ``<name>_<sha256[:8]>_track<id>.jpg``."""
        from PIL import Image

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stem = Path(self.info.path).stem or "footage"
        written = {}
        for track_id, crop in self.best_shots(margin=margin).items():
            target = folder / f"{stem}_{self.info.sha256[:8]}_track{track_id:03d}.jpg"
            Image.fromarray(crop).save(target, quality=95)
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


def read_frames(info: SourceInfo, wanted: Sequence[tuple[int, float]]) -> list[np.ndarray]:
    """Decode the frames (frame_index, timestamp_s) of a source again, in the order asked.

    Video frames are found by timestamp in one forward pass (seeking ahead when the next
    frame is more than a few seconds away).
    """
    if info.kind is not SourceKind.VIDEO:
        return [load_image(info.files[index]) for index, _ in wanted]
    order = sorted(range(len(wanted)), key=lambda i: wanted[i][1])
    found: dict[int, np.ndarray] = {}
    container = _open_container(Path(info.path))
    try:
        stream = container.streams.video[0]
        time_base = Fraction(stream.time_base)
        origin = _origin_s(container, stream)
        frames = None
        current: tuple[float, np.ndarray] | None = None  # the last frame found (several tracks share frames)
        for i in order:
            target = wanted[i][1]
            if current is not None and abs(current[0] - target) <= _SLOT_EPS:
                found[i] = current[1]
                continue
            if frames is None or current is None or target - current[0] > 5.0:
                container.seek(max(0, int(math.floor((target + origin - 1.0) / time_base))), stream=stream, backward=True, any_frame=False)
                frames = container.decode(stream)
            for frame in frames:
                if frame.pts is None:
                    continue
                position = float(pts_to_seconds(frame.pts, time_base, origin)[()])
                if position >= target - _SLOT_EPS:
                    current = (position, _frame_rgb(frame, stream.sample_aspect_ratio))
                    found[i] = current[1]
                    break
            if i not in found:
                raise FootageError(f"{info.path}: frame at {target:.3f} s can no longer be decoded")
    except av.FFmpegError as exc:
        raise FootageError(f"{info.path}: cannot decode frames again ({exc})") from exc
    finally:
        container.close()
    return [found[i] for i in range(len(wanted))]
