"""Decoding footage (the one module that imports PyAV): plan a source, decode its sampled frames.

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

Decoding no more than sampling needs
------------------------------------
FFmpeg decodes with its own frame and slice threads. Only sampled frames are converted to RGB,
decoding of a chunk stops at its last frame, and H.264 pictures that no other picture refers to
(``nal_ref_idc`` 0, typically B-frames) are not decoded at all unless sampling keeps them (read
from the packet bytes, for the avcC form of mp4/mov/mkv). FFmpeg's own ``skip_frame = NONREF``
is not used: it would drop sampled frames too (half the frames of the street clip are such
B-frames). Measured on the shared clips at 5 frames/s: the same pixels, decoding 1.2 to 1.9x faster.

Damaged input
-------------
A missing, empty, unreadable or non-video file is a :class:`FootageError` naming the file. So is
a video whose bytes change between planning and decoding (its size or modification time differ
from the plan's): the frame index no longer describes it. A video that ends early (truncated
download, cut recording) or holds undecodable packets keeps every frame before the damage; a
:class:`FootageWarning` names the file and the time. An mp4
cut before its index (``moov``) was written cannot be read at all (FFmpeg needs the index) and
is an error that says so.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import FootageError, ImageError
from ..fileio import input_problem, os_reason, sha256_file
from ..images import IMAGE_SUFFIXES, load_image
from .regions import WHOLE_SCAN_PERIODS, key_periods, whole_scan_groups

log = logging.getLogger(__name__)


VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".ogg", ".ogv", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts"}
    | {".wmv", ".asf", ".flv", ".3gp"}
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
    #: (size in bytes, modification time in ns) of a video when it was planned: decoding
    #: refuses a file that changed since (its frame index would not describe it any more).
    file_stat: tuple[int, int] | None = None
    #: "skip" scan: a key frame (whole-frame detection) at least every this many seconds of
    #: footage (see :mod:`workbench.footage.regions`); None = every sampled frame scanned whole.
    keyframe_s: float | None = None


@dataclass(frozen=True)
class SourcePlan:
    """A planned source: its identity, its chunks and the warnings found while indexing it."""

    info: SourceInfo
    sampling: Sampling
    chunks: tuple[Chunk, ...]
    warnings: tuple[str, ...] = ()


# -- identifying and planning sources ----------------------------------------------------------


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_stills(folder: str | os.PathLike) -> list[Path]:
    """The stills of a folder (not recursive), natural-sorted by file name."""
    folder = Path(folder)
    try:
        stills = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    except OSError as exc:
        raise FootageError(f"{folder}: cannot list the folder ({os_reason(exc)})") from exc
    return sorted(stills, key=lambda p: _natural_key(p.name))


def _check_path(path: Path) -> None:
    problem = input_problem(path)
    if problem == "no such file":
        raise FootageError(f"{path}: no such file or folder")
    if problem:
        raise FootageError(f"{path}: {problem}")
    if path.is_dir():
        return
    if not path.is_file():
        raise FootageError(f"{path}: not a regular file (device, pipe or socket); give a video, a still or a folder of stills")
    if path.stat().st_size == 0:
        raise FootageError(f"{path}: file is empty (0 bytes)")


def _file_stat(path: Path) -> tuple[int, int]:
    info = os.stat(path)
    return int(info.st_size), int(info.st_mtime_ns)


def plan_source(
    path: str | os.PathLike, sampling: Sampling | None = None, *, chunk_s: float | None = None, keyframe_s: float | None = None
) -> SourcePlan:
    """Identify a source (sha256), index its frames and cut it into chunks.

    Args:
        path: a video file, a still image, or a folder of stills.
        sampling: which frames to analyse (default: 5 frames per second, whole source).
        chunk_s: chunk length in seconds of footage (stills: ``chunk_s / STILL_INTERVAL_S``
            stills); None = one chunk.
        keyframe_s: the "skip" scan's key-frame period, seconds (None = full scan of every
            sampled frame). Chunks are then cut only where a whole scan is due whatever changed
            (every ``WHOLE_SCAN_PERIODS`` key periods; ``chunk_s`` rounded to whole stretches of
            them), so a chunked run detects exactly what one pass detects.

    Raises:
        FootageError: the path is missing, empty, not a video or still, or holds no frames.
    """
    sampling = sampling or Sampling()
    if chunk_s is not None and not chunk_s > 0:
        raise FootageError(f"chunk length must be positive seconds, got {chunk_s!r}")
    if keyframe_s is not None and not keyframe_s > 0:
        raise FootageError(f"key-frame period must be positive seconds, got {keyframe_s!r}")
    path = Path(path)
    _check_path(path)
    try:
        if path.is_dir():
            return _plan_stills(path, sampling, chunk_s, keyframe_s)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return _plan_image(path, sampling, keyframe_s)
        return _plan_video(path, sampling, chunk_s, keyframe_s)
    except FootageError:
        raise
    except OSError as exc:
        raise FootageError(f"{path}: cannot be read ({os_reason(exc)})") from exc
    except (av.FFmpegError, ValueError, TypeError, ZeroDivisionError, OverflowError) as exc:
        raise FootageError(f"{path}: cannot be indexed as footage ({type(exc).__name__}: {exc})") from exc


def _chunk_bounds(groups: np.ndarray | None, count: int) -> list[tuple[int, int]]:
    """[start, end) positions cutting ``count`` sampled frames into chunks where ``groups``
    (chunk number of each frame, non-decreasing; None = one chunk) changes."""
    if count == 0:
        return []
    if groups is None:
        return [(0, count)]
    cuts = np.flatnonzero(np.diff(groups)) + 1
    edges = [0, *cuts.tolist(), count]
    return list(zip(edges[:-1], edges[1:]))


def _chunk_groups(
    sampling: Sampling, times: np.ndarray, slots: np.ndarray, chunk_s: float | None, frame_rate: float, keyframe_s: float | None
) -> np.ndarray | None:
    """Chunk number of each sampled frame: runs of whole slots about ``chunk_s`` long, or of whole
    stretches between unconditional whole scans (``WHOLE_SCAN_PERIODS`` key periods) when the
    scan skips (None = one chunk)."""
    if chunk_s is None:
        return None
    if keyframe_s is not None:
        periods = key_periods(times, slots, fps=sampling.fps, start_s=sampling.start_s, keyframe_s=keyframe_s)
        return whole_scan_groups(periods) // max(1, round(chunk_s / (keyframe_s * WHOLE_SCAN_PERIODS)))
    per_second = sampling.fps if sampling.fps is not None else frame_rate
    return slots // max(1, round(chunk_s * per_second))


def _plan_image(path: Path, sampling: Sampling, keyframe_s: float | None) -> SourcePlan:
    try:
        load_image(path)  # fail here, naming the file, rather than inside a worker
    except ImageError as exc:
        raise FootageError(str(exc)) from exc
    sha = sha256_file(path)
    info = SourceInfo(str(path), sha, SourceKind.IMAGE, frame_count=1, files=(str(path),))
    chunk = Chunk(str(path), SourceKind.IMAGE, sampling, 0, files=(str(path),), keyframe_s=keyframe_s)
    chunks = (chunk,) if sampling.in_range(np.zeros(1))[0] else ()
    return SourcePlan(info, sampling, chunks)


def _plan_stills(folder: Path, sampling: Sampling, chunk_s: float | None, keyframe_s: float | None) -> SourcePlan:
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
    groups = _chunk_groups(sampling, times[keep], slots, chunk_s, 1.0 / STILL_INTERVAL_S, keyframe_s)
    chunks = tuple(
        Chunk(str(folder), SourceKind.STILLS, sampling, int(keep[a]), files=files[keep[a] : keep[b - 1] + 1], keyframe_s=keyframe_s)
        for a, b in _chunk_bounds(groups, len(keep))
    )
    return SourcePlan(info, sampling, chunks)


def _open_container(path: Path):
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as exc:
        detail = getattr(exc, "strerror", None) or str(exc)
        plain = "not a video that can be read: the file is damaged or not a video"
        if path.suffix.lower() in {".mp4", ".mov", ".m4v", ".3gp"}:
            # An mp4/mov keeps its index at the end: a recording or copy that stopped early has none.
            plain = (
                "not a video that can be read: it is damaged, not a video, or was copied or exported only in part "
                "(copy or export it again from the recorder)"
            )
        raise FootageError(f"{path}: {plain} (FFmpeg says: {detail})") from exc
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


def _plan_video(path: Path, sampling: Sampling, chunk_s: float | None, keyframe_s: float | None) -> SourcePlan:
    before = _file_stat(path)
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
    if _file_stat(path) != before:
        raise FootageError(f"{path}: the file changed while it was being indexed; extract it again once it is complete")
    keep = np.flatnonzero(sampling.in_range(times))
    slots = sampling.slots(times[keep], keep)
    chunks = tuple(
        Chunk(
            str(path),
            SourceKind.VIDEO,
            sampling,
            int(keep[a]),
            pts=pts[keep[a] : keep[b - 1] + 1],
            time_base=time_base,
            origin_s=origin,
            file_stat=before,
            keyframe_s=keyframe_s,
        )
        for a, b in _chunk_bounds(_chunk_groups(sampling, times[keep], slots, chunk_s, rate, keyframe_s), len(keep))
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
    """Decode one chunk: seek to the keyframe before it, keep its sampled frames.

    Raises:
        FootageError: the file is gone or changed since it was planned.
    """
    path = Path(chunk.path)
    try:
        now = _file_stat(path)
    except OSError as exc:
        raise FootageError(f"{path}: can no longer be read ({os_reason(exc)})") from exc
    if chunk.file_stat is not None and now != chunk.file_stat:
        raise FootageError(
            f"{path}: the file changed since it was indexed (size {chunk.file_stat[0]} -> {now[0]} bytes); "
            "the frame index no longer describes it: extract it again"
        )
    try:
        yield from _video_frames_unchecked(chunk, problems)
    except FootageError:
        raise
    except (av.FFmpegError, OSError, ValueError, TypeError, IndexError, OverflowError) as exc:
        problems.append(f"{path}: decoding stopped ({type(exc).__name__}: {exc}); faces found before it are kept")


def _video_frames_unchecked(chunk: Chunk, problems: list[str]) -> Iterator[Frame]:
    first, last = int(chunk.pts[0]), int(chunk.pts[-1])
    one_second = max(1, round(1 / chunk.time_base))
    # Seek targets, nearest first; None = decode from the start. Some demuxers (avi, ogg) may
    # land after the target; we then step further back rather than lose frames.
    targets: list[int | None] = [None] if chunk.index_offset == 0 else [first, first - 2 * one_second, first - 10 * one_second, None]
    for target in targets:
        container = _open_container(Path(chunk.path))
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # FFmpeg's frame and slice threads (thread_count 0: one per core)
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
    """Yield (frame, time_s) in presentation order, skipping undecodable packets (with a note)
    and H.264 frames that no sampled frame needs (:func:`_unneeded_packets`)."""
    errors = 0
    last_good = None
    name = chunk.path
    unneeded = _unneeded_packets(chunk, stream)
    try:
        packets = container.demux(stream)
        for packet in packets:
            if packet.size == 0 and packet.pts is not None:
                continue  # Theora "repeat previous frame": nothing new to decode
            if unneeded is not None and unneeded(packet):
                continue
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


def _sampled_pts(chunk: Chunk) -> set[int]:
    """Presentation timestamps of the frames of a video chunk that sampling keeps (the first of
    each slot), as :func:`_sample` picks them when every frame decodes."""
    pts = np.asarray(chunk.pts, np.int64)
    times = pts_to_seconds(pts, chunk.time_base, chunk.origin_s)
    slots = chunk.sampling.slots(times, chunk.index_offset + np.arange(len(pts)))
    first = np.ones(len(pts), bool)
    first[1:] = slots[1:] != slots[:-1]
    return set(pts[first].tolist())


def _unneeded_packets(chunk: Chunk, stream):
    """A test ``packet -> bool``: True for a packet that holds an H.264 picture no other picture
    refers to (every slice has ``nal_ref_idc`` 0) and that sampling does not keep. Such a packet
    need not be decoded at all: nothing else depends on it (what FFmpeg's ``skip_frame =
    NONREF`` does, but only for the frames sampling drops; ``skip_frame`` itself would drop
    sampled frames too: half of the street clip's frames are non-reference B-frames).

    None when this cannot be known from the packet bytes: other codecs, or H.264 in Annex B
    byte streams (mpeg-ts), which are decoded whole. Only a damaged sampled frame changes
    anything: the next frame of its slot, which would stand in for it, may have been skipped.
    """
    extradata = stream.codec_context.extradata
    if chunk.sampling.fps is None or stream.codec_context.name != "h264" or not extradata or extradata[0] != 1 or len(extradata) < 5:
        return None
    length_size = (extradata[4] & 3) + 1  # avcC: NAL units prefixed by their length
    keep = _sampled_pts(chunk)

    def unneeded(packet) -> bool:
        return packet.pts is not None and int(packet.pts) not in keep and _h264_non_reference(memoryview(packet), length_size)

    return unneeded


def _h264_non_reference(data, length_size: int) -> bool:
    """True when the length-prefixed NAL units hold slices (types 1, 5) and all have nal_ref_idc 0."""
    position, slices = 0, 0
    while position + length_size < len(data):
        size = int.from_bytes(data[position : position + length_size], "big")
        position += length_size
        if size <= 0 or position + size > len(data):
            return False  # malformed: decode it
        header = data[position]
        if header & 0x1F in (1, 5):
            if (header >> 5) & 3:
                return False
            slices += 1
        position += size
    return slices > 0


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
        stream.thread_type = "AUTO"  # FFmpeg's frame and slice threads
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
    except (av.FFmpegError, ValueError, TypeError, OverflowError) as exc:
        raise FootageError(f"{info.path}: cannot decode frames again ({exc})") from exc
    except OSError as exc:
        raise FootageError(f"{info.path}: cannot be read again ({os_reason(exc)})") from exc
    finally:
        container.close()
    return [found[i] for i in range(len(wanted))]


def emit_warnings(messages: Iterable[str]) -> None:
    for message in messages:
        log.warning(message)
        warnings.warn(message, FootageWarning, stacklevel=3)
