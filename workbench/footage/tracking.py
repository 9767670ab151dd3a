"""Linking faces found in successive sampled frames into tracks, and choosing best shots.

Input: the sampled frames of one source in time order, each with its faces (box, landmarks,
embedding, quality). Output: groups of faces, one per person seen, turned into
:class:`~workbench.types.Track` records with ids in a fixed order.

How a face joins a track
------------------------
At each frame, every live track is compared with every detection:

* **where**: the track's last box is moved by the track's velocity (from its last two faces) to
  the frame's time; ``iou`` is its overlap with the detection and ``shift`` the distance between
  the two centres in face sizes (sqrt of the box area).
* **who**: ``similarity`` is the larger cosine of the detection's embedding with the track's
  last embedding and with its quality-weighted mean embedding.

A pair is possible only if it passes three gates: ``similarity >= min_similarity`` (two
people crossing have overlapping boxes but dissimilar faces, so they do not swap),
``shift <= max_shift + max_shift_per_s * dt`` and a size change within ``max_scale_change``.
Possible pairs cost ``iou_weight * (1 - iou_or_shift) + (1 - iou_weight) * (1 - similarity)``
and are assigned by the Hungarian method (scipy's ``linear_sum_assignment``); a detection
left over starts a new track. A track is closed when it has not been matched for
``max_gap_s`` seconds, so a face hidden for a moment (a pillar, another person, a missed
detection) continues its track.

After the pass, fragments of one person that the online pass could not join (a face lost for
longer than the gap while partly hidden) are joined when they do not overlap in time, the
gap is at most ``relink_gap_s`` and their mean embeddings agree (``relink_similarity``).

Everything here is deterministic: detections are taken in a fixed order, ties fall to the
lower index, and track ids are numbered by (first frame, then left edge, then top edge). The
same frames therefore give the same tracks and ids, whether they were decoded in one process
or in chunks on a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..types import Face, FootageFace, Track

#: cost given to pairs that fail a gate; anything at or above it is never assigned.
_FORBIDDEN = 1e6
#: float slack when comparing times, seconds.
_TIME_EPS = 1e-6


class FrameFaces(NamedTuple):
    """The faces found in one sampled frame.

    ``signature``: the frame's colour histogram (:func:`scene_signature`), used to notice cuts
    between shots; None when unknown (no cut is then ever seen).
    """

    frame_index: int
    timestamp_s: float
    faces: tuple[Face, ...]
    signature: np.ndarray | None = None


#: colour histogram bins (hue, saturation, value) of a frame signature.
SIGNATURE_BINS = (8, 4, 4)


def scene_signature(hsv_small: np.ndarray) -> np.ndarray:
    """Normalised (8 x 4 x 4) HSV histogram of a small frame, float32 summing to 1.

    ``hsv_small``: (h, w, 3) uint8 in OpenCV's HSV ranges (hue 0..179), e.g. the frame
    shrunk to 64x36 (footage.py does this). The histogram ignores where things are, so people
    and camera moving change it little; a cut to another shot or camera changes it a lot.
    """
    h = np.minimum(hsv_small[..., 0].astype(np.int32) * SIGNATURE_BINS[0] // 180, SIGNATURE_BINS[0] - 1)
    s = hsv_small[..., 1].astype(np.int32) * SIGNATURE_BINS[1] // 256
    v = hsv_small[..., 2].astype(np.int32) * SIGNATURE_BINS[2] // 256
    index = (h * SIGNATURE_BINS[1] + s) * SIGNATURE_BINS[2] + v
    counts = np.bincount(index.ravel(), minlength=int(np.prod(SIGNATURE_BINS))).astype(np.float32)
    return counts / max(counts.sum(), 1.0)


def scene_change(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Bhattacharyya distance in [0, 1] between two signatures (0 when either is unknown)."""
    if a is None or b is None:
        return 0.0
    return float(np.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(a.astype(np.float64) * b))))))


@dataclass(frozen=True)
class TrackerConfig:
    """Tracking parameters. Distances are in face sizes (sqrt of box area), times in seconds.

    The defaults suit CCTV sampled at 2 to 10 frames per second with the default SFace pack,
    whose same-person cosine in footage is mostly above 0.4 and different-person cosine
    mostly below 0.25.
    """

    #: a track ends when no face has joined it for this long.
    max_gap_s: float = 1.0
    #: embedding gate for a track seen in the previous sampled frame (cosine).
    min_similarity: float = 0.25
    #: embedding gate for a track missing from the previous sampled frame: after a gap the
    #: geometry says less (the face may have moved far), so appearance must say more.
    reacquire_similarity: float = 0.45
    #: centre shift allowed between a track's predicted box and a detection, face sizes...
    max_shift: float = 1.0
    #: ...plus this many face sizes per second since the track was last seen (a track of one
    #: face, whose motion is unknown)...
    max_shift_per_s: float = 6.0
    #: ...or this many for a track whose motion is known (the prediction's error).
    residual_shift_per_s: float = 2.5
    #: largest ratio of face sizes between a track's last face and a detection.
    max_scale_change: float = 1.8
    #: weight of the geometry term against the appearance term in the pairing cost.
    iou_weight: float = 0.5
    #: second, geometry-only pass: overlap with the predicted box needed to join without the
    #: embedding gate...
    min_iou: float = 0.3
    #: ...open only to faces below this quality score, whose embeddings are unreliable (a good
    #: face that fails the embedding gate is someone else, or must start its own track).
    reliable_quality: float = 0.4
    #: fragments further apart than this are never joined afterwards, seconds.
    relink_gap_s: float = 3.0
    #: mean embeddings of two fragments must be this similar to join them (cosine).
    relink_similarity: float = 0.5
    #: tracks with fewer faces are dropped (1 keeps every face seen).
    min_faces: int = 1
    #: a change of frame signature above this is a cut to another shot or camera: every track
    #: ends there and no fragments are joined across it. Measured on ../shared/data at 5 fps:
    #: cuts 0.38 to 0.50; walking crowds, hand-held pans and people passing the lens 0.28 at most.
    scene_cut: float = 0.35
    #: two faces of one frame overlapping by more than this share of the smaller box are one
    #: face found twice (pyramid levels the detector's NMS did not merge): the weaker is dropped.
    max_overlap: float = 0.5

    def __post_init__(self) -> None:
        checks = [
            ("max_gap_s", self.max_gap_s >= 0),
            ("max_shift", self.max_shift > 0),
            ("max_shift_per_s", self.max_shift_per_s >= 0),
            ("residual_shift_per_s", self.residual_shift_per_s >= 0),
            ("max_scale_change", self.max_scale_change >= 1),
            ("iou_weight", 0 <= self.iou_weight <= 1),
            ("min_iou", 0 < self.min_iou <= 1),
            ("reliable_quality", 0 <= self.reliable_quality <= 1),
            ("relink_gap_s", self.relink_gap_s >= 0),
            ("min_faces", self.min_faces >= 1),
            ("max_overlap", 0 < self.max_overlap <= 1),
            ("scene_cut", 0 < self.scene_cut <= 1),
            ("min_similarity", -1 <= self.min_similarity <= 1),
            ("reacquire_similarity", -1 <= self.reacquire_similarity <= 1),
            ("relink_similarity", -1 <= self.relink_similarity <= 1),
        ]
        for name, ok in checks:
            if not ok:
                raise ValueError(f"TrackerConfig.{name} is out of range: {getattr(self, name)!r}")


@dataclass
class _Growing:
    """A track being built: its faces, and what the next match is compared with.

    Appearance is judged on the *reliable* faces (quality >= ``reliable_quality``) when the
    track has any: a blurred face that joined on geometry alone must not become the model of
    what the person looks like, or the next person to pass would be matched to it.
    """

    reliable_quality: float
    faces: list[tuple[int, float, Face]] = field(default_factory=list)
    weighted_sum: np.ndarray | None = None
    reliable_sum: np.ndarray | None = None
    last_reliable: np.ndarray | None = None

    def add(self, frame_index: int, timestamp_s: float, face: Face) -> None:
        self.faces.append((frame_index, timestamp_s, face))
        if face.embedding is None:
            return
        # Quality-weighted so a sharp frontal face steers the mean more than a blurred one.
        quality = face.quality.score if face.quality else 0.5
        vector = face.embedding.astype(np.float64) * max(quality, 0.05)
        self.weighted_sum = vector if self.weighted_sum is None else self.weighted_sum + vector
        if quality >= self.reliable_quality:
            self.reliable_sum = vector if self.reliable_sum is None else self.reliable_sum + vector
            self.last_reliable = face.embedding

    @property
    def last_time(self) -> float:
        return self.faces[-1][1]

    def references(self) -> list[np.ndarray]:
        """Embeddings a new face is compared with: the last and the mean, of reliable faces if any."""
        last = self.last_reliable if self.last_reliable is not None else self.faces[-1][2].embedding
        mean = _unit(self.reliable_sum if self.reliable_sum is not None else self.weighted_sum)
        return [v for v in (last, mean) if v is not None]

    def reliable_mean(self) -> np.ndarray | None:
        """Quality-weighted mean embedding of the reliable faces, or None.

        Embeddings of tiny or blurred faces crowd together whoever the person is, so only
        faces good enough to recognise may vouch that two fragments are one person.
        """
        return _unit(self.reliable_sum)

    def predicted_box(self, timestamp_s: float) -> np.ndarray:
        """The last box moved at the velocity of the last two faces (constant-velocity model)."""
        box = np.asarray(self.faces[-1][2].bbox_xyxy, np.float64)
        if len(self.faces) < 2:
            return box
        (_, t0, f0), (_, t1, _) = self.faces[-2], self.faces[-1]
        if t1 - t0 <= _TIME_EPS:
            return box
        velocity = (_centre(box) - _centre(np.asarray(f0.bbox_xyxy, np.float64))) / (t1 - t0)
        shift = velocity * (timestamp_s - t1)
        return box + np.concatenate([shift, shift])


def _centre(box: np.ndarray) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _size(box: Sequence[float]) -> float:
    return math.sqrt(max(box[2] - box[0], 1e-3) * max(box[3] - box[1], 1e-3))


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes, in [0, 1]."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def overlap_share(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection of two boxes over the area of the smaller, in [0, 1]."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return float(width * height / smaller) if smaller > 0 else 0.0


def drop_duplicates(faces: Sequence[Face], max_overlap: float) -> list[Face]:
    """Faces of one frame without duplicates, strongest detection first kept."""
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: (-f.detector_score, f.bbox_xyxy)):
        if all(overlap_share(face.bbox_xyxy, k.bbox_xyxy) <= max_overlap for k in kept):
            kept.append(face)
    return kept


def _unit(vector: np.ndarray | None) -> np.ndarray | None:
    if vector is None:
        return None
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else None


def _similarity(face: Face, track: _Growing) -> float:
    """Larger cosine of the face with the track's reference embeddings (see ``_Growing``)."""
    if face.embedding is None:
        return 1.0  # no appearance to compare: geometry alone decides
    scores = [float(face.embedding.astype(np.float64) @ ref) for ref in track.references()]
    return max(scores) if scores else 1.0


def pair_cost(track: _Growing, face: Face, timestamp_s: float, config: TrackerConfig, *, missed: int = 0) -> float:
    """Cost of adding ``face`` (seen at ``timestamp_s``) to ``track``; ``_FORBIDDEN`` if gated out.

    ``missed``: sampled frames since the track was last seen (0 = it was in the previous one).
    After more than one, or after one for a track whose motion is unknown, the stricter
    ``reacquire_similarity`` gate applies: the longer the gap, the less geometry says.
    """
    dt = timestamp_s - track.last_time
    predicted = track.predicted_box(timestamp_s)
    box = face.bbox_xyxy
    size_pred, size_face = _size(predicted), _size(box)
    if max(size_pred, size_face) / min(size_pred, size_face) > config.max_scale_change:
        return _FORBIDDEN
    shift = float(np.linalg.norm(_centre(predicted) - _centre(np.asarray(box)))) / math.sqrt(size_pred * size_face)
    # With two faces or more the prediction carries the track's own motion, so only a change
    # of motion is left to allow for; a new track may have moved anywhere a person can.
    moving = len(track.faces) >= 2
    allowed = config.max_shift + (config.residual_shift_per_s if moving else config.max_shift_per_s) * max(dt, 0.0)
    if shift > allowed:
        return _FORBIDDEN
    similarity = _similarity(face, track)
    if similarity < (config.min_similarity if missed == 0 or (missed == 1 and moving) else config.reacquire_similarity):
        return _FORBIDDEN
    # Overlap when boxes overlap; otherwise how far within the allowed shift (fast movers at a
    # low sampling rate often do not overlap their previous box at all).
    iou = box_iou(predicted, box)
    geometry = (1.0 - iou) if iou > 0 else 1.0 + shift / allowed
    return config.iou_weight * geometry + (1.0 - config.iou_weight) * (1.0 - similarity)


def overlap_cost(track: _Growing, face: Face, timestamp_s: float, config: TrackerConfig) -> float:
    """Geometry-only cost ``1 - IoU`` with the predicted box; ``_FORBIDDEN`` below ``min_iou``
    or for a face of reliable quality."""
    if face.quality is not None and face.quality.score >= config.reliable_quality:
        return _FORBIDDEN
    iou = box_iou(track.predicted_box(timestamp_s), face.bbox_xyxy)
    return 1.0 - iou if iou >= config.min_iou else _FORBIDDEN


def _assign(tracks: Sequence[int], faces: Sequence[Face], cost_of) -> dict[int, int]:
    """Hungarian assignment {face position: track} of the pairs not gated out.

    ``tracks`` are track keys handed to ``cost_of(track, face)`` and returned as values.
    """
    if not len(tracks) or not faces:
        return {}
    cost = np.array([[cost_of(track, face) for face in faces] for track in tracks])
    rows, cols = linear_sum_assignment(cost)
    return {int(c): tracks[r] for r, c in zip(rows, cols) if cost[r, c] < _FORBIDDEN}


class Tracker:
    """Online linker: feed frames in time order with :meth:`update`, then call :meth:`groups`."""

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self._live: list[_Growing] = []
        self._closed: list[_Growing] = []
        self._last_time = -math.inf
        self._times: list[float] = []  # times of the frames seen, for counting missed frames
        self._last_signature: np.ndarray | None = None
        #: times of the first frame after each cut.
        self.cuts: list[float] = []

    def update(self, frame: FrameFaces) -> None:
        if frame.timestamp_s < self._last_time - _TIME_EPS:
            raise ValueError(f"frames must come in time order: {frame.timestamp_s} after {self._last_time}")
        self._last_time = frame.timestamp_s
        t = frame.timestamp_s
        if scene_change(self._last_signature, frame.signature) > self.config.scene_cut:
            self.cuts.append(t)
            self._closed.extend(self._live)
            self._live = []
        if frame.signature is not None:
            self._last_signature = frame.signature
        still_live = []
        for track in self._live:
            (still_live if t - track.last_time <= self.config.max_gap_s + _TIME_EPS else self._closed).append(track)
        self._live = still_live
        # A fixed detection order (left to right, top to bottom) makes ties resolve the same way.
        faces = sorted(drop_duplicates(frame.faces, self.config.max_overlap), key=lambda f: f.bbox_xyxy)
        missed = [self._missed(track.last_time) for track in self._live]
        matched = _assign(range(len(self._live)), faces, lambda i, face: pair_cost(self._live[i], face, t, self.config, missed=missed[i]))
        # Second pass, geometry only, for what is left of the tracks seen in the previous frame:
        # small or blurred faces have unreliable embeddings (same-person cosine can fall below
        # zero at 25 px), so a clear overlap with the predicted box is trusted on its own. Faces
        # already matched by appearance are not offered again, so a crossing person cannot be
        # taken this way.
        free_tracks = [i for i in range(len(self._live)) if i not in matched.values() and missed[i] == 0]
        free_faces = [j for j in range(len(faces)) if j not in matched]
        second = _assign(
            free_tracks,
            [faces[j] for j in free_faces],
            lambda i, face: overlap_cost(self._live[i], face, t, self.config),
        )
        matched.update({free_faces[j]: i for j, i in second.items()})
        self._times.append(t)
        for j, face in enumerate(faces):
            if j in matched:
                self._live[matched[j]].add(frame.frame_index, t, face)
            else:
                track = _Growing(self.config.reliable_quality)
                track.add(frame.frame_index, t, face)
                self._live.append(track)

    def _missed(self, last_seen: float) -> int:
        """Frames processed since ``last_seen`` (0: seen in the previous frame)."""
        return len(self._times) - int(np.searchsorted(self._times, last_seen - _TIME_EPS, side="left")) - 1

    def groups(self) -> list[list[tuple[int, float, Face]]]:
        """Every track's faces as (frame_index, timestamp_s, face), fragments joined."""
        tracks = self._closed + self._live
        return [t.faces for t in _relink(tracks, self.config, self.cuts)]


def _relink(tracks: list[_Growing], config: TrackerConfig, cuts: Sequence[float] = ()) -> list[_Growing]:
    """Join fragments of one person: no time overlap, a short gap, a plausible move, and
    similar mean embeddings of their good faces (quality >= ``reliable_quality``).

    Each fragment gets at most one successor and one predecessor; candidate pairs are taken
    most similar first (ties by position), so the result does not depend on the order in which
    tracks were closed. Only fragments starting within ``relink_gap_s`` after another ends are
    compared, which keeps this linear in the number of tracks for long footage.
    """
    if config.relink_gap_s <= 0 or len(tracks) < 2:
        return tracks
    tracks = sorted(tracks, key=lambda t: (t.faces[0][0], t.faces[0][2].bbox_xyxy))
    starts = np.array([t.faces[0][1] for t in tracks])
    cut_times = np.asarray(sorted(cuts), np.float64)
    means = [t.reliable_mean() for t in tracks]
    pairs = []
    for i, a in enumerate(tracks):
        if means[i] is None:
            continue
        lo = np.searchsorted(starts, a.last_time + _TIME_EPS, side="right")
        hi = np.searchsorted(starts, a.last_time + config.relink_gap_s + _TIME_EPS, side="right")
        for j in range(lo, hi):
            # A cut between the two fragments: another shot, where nothing about place holds.
            across_cut = np.searchsorted(cut_times, a.last_time, side="right") != np.searchsorted(cut_times, starts[j], side="right")
            if means[j] is not None and not across_cut and _plausible_move(a, tracks[j], config):
                similarity = float(means[i] @ means[j])
                if similarity >= config.relink_similarity:
                    pairs.append((-similarity, i, j))
    successor: dict[int, int] = {}
    predecessor: dict[int, int] = {}
    for _, i, j in sorted(pairs):
        if i not in successor and j not in predecessor:
            successor[i], predecessor[j] = j, i
    joined = []
    for i in range(len(tracks)):
        if i in predecessor:
            continue  # part of a chain started earlier
        chain = _Growing(config.reliable_quality)
        k: int | None = i
        while k is not None:
            for frame_index, t, face in tracks[k].faces:
                chain.add(frame_index, t, face)
            k = successor.get(k)
        joined.append(chain)
    return joined


def _plausible_move(a: _Growing, b: _Growing, config: TrackerConfig) -> bool:
    """Could the face that left ``a`` have reached the start of ``b`` (the online shift gate)?"""
    last, first = a.faces[-1][2].bbox_xyxy, b.faces[0][2].bbox_xyxy
    gap = b.faces[0][1] - a.last_time
    shift = float(np.linalg.norm(_centre(np.asarray(last)) - _centre(np.asarray(first)))) / math.sqrt(_size(last) * _size(first))
    return shift <= config.max_shift + config.max_shift_per_s * gap


def link_faces(frames: Iterable[FrameFaces], config: TrackerConfig | None = None) -> list[list[tuple[int, float, Face]]]:
    """Group the faces of frames (in time order) into per-person lists of (frame_index, timestamp_s, face)."""
    tracker = Tracker(config)
    for frame in frames:
        tracker.update(frame)
    return tracker.groups()


def best_shot_index(qualities: Sequence[float]) -> int:
    """Position of the highest quality score; the earliest wins ties."""
    return int(np.argmax(np.asarray(qualities, np.float64))) if len(qualities) else 0


def build_tracks(
    groups: Iterable[Sequence[tuple[int, float, Face]]],
    *,
    source_path: str,
    source_sha256: str,
    min_faces: int = 1,
) -> tuple[Track, ...]:
    """Number groups of faces as tracks: ids 1..N by first frame, then left edge, then top edge."""
    kept = [sorted(g, key=lambda item: item[0]) for g in groups if len(g) >= min_faces]
    kept.sort(key=lambda g: (g[0][0], g[0][2].bbox_xyxy[0], g[0][2].bbox_xyxy[1]))
    tracks = []
    for track_id, group in enumerate(kept, start=1):
        faces = tuple(FootageFace(track_id, frame_index, t, face) for frame_index, t, face in group)
        best = best_shot_index([f.quality_score for f in faces])
        tracks.append(Track(track_id, source_path, source_sha256, faces, best))
    return tuple(tracks)


def track_tracks(
    frames: Iterable[FrameFaces],
    *,
    source_path: str,
    source_sha256: str,
    config: TrackerConfig | None = None,
) -> tuple[Track, ...]:
    """Frames of one source (time order) -> numbered tracks with best shots."""
    config = config or TrackerConfig()
    return build_tracks(link_faces(frames, config), source_path=source_path, source_sha256=source_sha256, min_faces=config.min_faces)


def probe_faces(track: Track, *, min_quality: float = 0.4, relative_quality: float = 0.75, max_faces: int = 10) -> list[Face]:
    """The track's faces worth searching with, best quality first.

    A face is good when its quality reaches ``min_quality`` or ``relative_quality`` x the
    track's best (so a track seen only in poor footage still offers its several best frames);
    at most ``max_faces`` of them, the best ones. The best shot is always included. Only faces
    with an embedding are returned.
    """
    if max_faces < 1:
        raise ValueError(f"max_faces must be at least 1, got {max_faces}")
    ranked = sorted(
        (f for f in track.faces if f.face.embedding is not None),
        key=lambda f: (-f.quality_score, f.frame_index),
    )
    if not ranked:
        return []
    bar = min(min_quality, relative_quality * ranked[0].quality_score)
    return [f.face for f in ranked if f.quality_score >= bar][:max_faces]
