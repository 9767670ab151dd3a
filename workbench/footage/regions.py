"""Where a new face can be: the schedule of the "skip" footage scan (``footage_scan = skip``).

Most of a CCTV frame is the same as a fraction of a second before, and a face that was not
there cannot appear in pixels that did not change. So between key frames only two kinds of
region are searched:

* **live tracks**: every face found in the previous sampled frame, moved by its velocity to
  this frame's time and expanded by the motion a person can make in between
  (``TRACK_MARGIN_FACES`` + ``TRACK_SPEED_FACES_PER_S`` x dt face sizes on each side);
* **changes**: pixels that changed since the previous sampled frame, found on grey frames
  shrunk ``CHANGE_SCALE`` times (absolute difference above ``CHANGE_LEVEL`` grey levels,
  dilated), as the bounding boxes of the change blobs grown by ``CHANGE_MARGIN_FACES`` smallest
  wanted faces; blobs smaller than ``NOISE_SHARE`` of a smallest face are noise.

A live track's region is shrunk so its face is ``TRACK_FACE_PX`` wide; regions start on the
detectors' coarsest stride (``ALIGN_PX``), overlapping ones are merged, and the small ones are
packed side by side into mosaics the engine searches on one canvas each
(:func:`one_canvas_side`). A face is kept from the region holding its centre, unless a region
edge inside the frame cuts it; the regions' faces are merged by NMS. A frame with nothing
changed and no live track is not searched at all.

When the regions cover more than ``FULL_SHARE`` of the frame (a moving camera, a crowd) the
frame is scanned whole (``MOVING_SCAN``), so such footage costs what the full scan costs. A
frame no larger than one detector canvas is also scanned whole whenever anything in it must be
searched (regions would save little, and its faces stay exactly the full scan's).

**Key frames**: the first sampled frame of every key period (``footage_keyframe_s`` of
footage, counted in sampling slots from the sampling start, see :func:`key_periods`). Every
``WHOLE_SCAN_PERIODS``-th one (16 s at the default 4 s period; and the first frame of a chunk)
is scanned whole, with the engine's full pyramid. The key frames between them are searched
where the picture changed since the last whole scan (not only since the previous sample: a
slow change, below the per-sample threshold, adds up and is caught there) and round the live
tracks; like any frame, whole when that covers most of it. A static scene then costs one
whole scan per ``WHOLE_SCAN_PERIODS`` periods. A frame after a cut to another shot (the colour
signature jumps, :func:`workbench.footage.tracking.scene_change`) and a frame in which a live
track is lost (no face in its expanded region while it is still inside the frame: the frame is
scanned again) are scanned whole too. At a whole-scan key frame the schedule forgets
everything before it (faces, motion, the references for changes), so what happens from one to
the next depends on that stretch alone: the planner cuts chunks only at those borders
(:func:`whole_scan_groups`), and a chunked run (Dask) gives the result of one pass exactly.

Everything here is plain numpy/OpenCV on boxes ``(x1, y1, x2, y2)`` in source pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..models.detectors import nms
from .tracking import TrackerConfig, scene_change

#: change detection runs on frames shrunk this many times (1080p -> 240x135).
CHANGE_SCALE = 8
#: a pixel of the shrunk grey frame changed when it differs by more than this (0..255).
CHANGE_LEVEL = 14
#: dilation of the change mask, shrunk pixels: joins the pieces of one moving person.
CHANGE_DILATE = 2
#: a change blob is grown by this many smallest-face widths on each side (a face at its edge is whole).
CHANGE_MARGIN_FACES = 1.0
#: change blobs smaller than this share of a smallest face's area are sensor and codec noise.
NOISE_SHARE = 0.25
#: a live track's region: its predicted box grown by this many face sizes on each side...
TRACK_MARGIN_FACES = 0.75
#: ...plus this many face sizes per second since it was seen (motion the prediction misses).
TRACK_SPEED_FACES_PER_S = 4.0
#: a live track's region is searched shrunk so its face is this wide (px) at most: the face
#: is found as well, and the regions of several tracks then share one canvas.
TRACK_FACE_PX = 48
#: regions covering more than this share of the frame: scan the whole frame instead.
FULL_SHARE = 0.6
#: what a frame whose changes cover it (a moving camera, a crowd) searches between key frames:
#: "full" = the whole frame, as a key frame (nothing is lost; no saving on such footage);
#: "coarse" = the live tracks' regions plus the whole frame shrunk onto one canvas
#: (``COARSE_SIDE``), which finds new faces of ``min_face_px x frame side / COARSE_SIDE`` and
#: up; a smaller new face is found at the next key frame only, if it is still there. Measured on
#: the shared clips (bench/bench_footage.py), "coarse" is 1.5 to 2x faster on the moving street
#: and marathon clips but loses short tracks of small faces (1 to 4 faces of 16 to 26 px), so
#: "full" is the default.
MOVING_SCAN = "full"
#: longest side (px) of the shrunk whole frame searched by the coarse pass: one detector canvas.
COARSE_SIDE = 640
#: a face whose box comes this close (px) to a crop edge inside the frame is cut: dropped.
EDGE_PX = 2.0
#: a lost track's predicted centre this close to the frame edge (face sizes) has left the frame.
EXIT_FACES = 0.5
#: a face must have been found in this many successive sampled frames before losing it calls
#: for a rescan (a detection that flickers at the threshold is not a track being lost).
STABLE_HITS = 2
#: default side (px) of a mosaic: regions no wider or taller than this (at their scale) are packed
#: side by side into one image, so several small regions share one detector canvas. The
#: pipeline passes :func:`one_canvas_side` of its engine instead.
MOSAIC_SIDE = 480
#: black pixels between packed regions (no face spans two of them).
MOSAIC_GAP = 16
#: regions searched at full scale start on multiples of this (px) in the frame and in their
#: mosaic: the detectors' coarsest stride, so a face falls on the same anchor grid as in a
#: whole-frame scan at scale 1 and is found with the same box and landmarks.
ALIGN_PX = 32
#: detections of several regions that overlap this much (IoU) are one face (the engine's merge).
MERGE_IOU = 0.4
#: columns of an (N, 15) detection row holding x and y coordinates.
_XS = [0, 2, 5, 7, 9, 11, 13]
_YS = [1, 3, 6, 8, 10, 12, 14]
#: float slack for slot arithmetic.
_EPS = 1e-6
#: every this many key periods the key frame is scanned whole whatever changed; the key frames
#: between are searched only where the picture changed since the last whole scan. On the static
#: benchmark clip 4 (16 s at the default period) runs a quarter of the whole-frame canvases;
#: tracks and search results of the shared clips are unchanged (bench/bench_footage.py).
WHOLE_SCAN_PERIODS = 4


def key_periods(times_s: np.ndarray, slots: np.ndarray, *, fps: float | None, start_s: float, keyframe_s: float) -> np.ndarray:
    """Key period of each sampled time: the period's first sampled frame is a key frame.

    With a sampling rate, a period is ``round(keyframe_s * fps)`` sampling slots (integers,
    so every chunk computes the same periods); with every frame sampled (``fps=None``),
    ``keyframe_s`` seconds from ``start_s``.
    """
    if fps is not None:
        return np.asarray(slots, np.int64) // max(1, round(keyframe_s * fps))
    return np.floor((np.asarray(times_s, np.float64) - start_s) / keyframe_s + _EPS).astype(np.int64)


def whole_scan_groups(periods: np.ndarray | int) -> np.ndarray:
    """Stretch of each key period: the periods from one unconditional whole scan to the next
    (``WHOLE_SCAN_PERIODS`` periods). Chunks hold whole stretches."""
    return np.asarray(periods, np.int64) // WHOLE_SCAN_PERIODS


@dataclass(frozen=True)
class ScanPlan:
    """What to detect in one frame: the whole frame (``full``) or only ``regions``.

    A region is ``(x1, y1, x2, y2, scale)``: a box in source pixels (ints) searched at
    ``scale`` (< 1 for a live track's region, shrunk so its face is ``TRACK_FACE_PX`` wide).
    """

    full: bool
    regions: tuple[tuple[int, int, int, int, float], ...] = ()
    reason: str = ""
    coarse: bool = False  # also search the whole frame shrunk to COARSE_SIDE

    def whole(self, width: int, height: int) -> bool:
        """True when the plan searches the whole (width x height) frame at full scale."""
        return self.full or any(r[:4] == (0, 0, width, height) and r[4] == 1.0 for r in self.regions)

    @property
    def pixels(self) -> int:
        """Source pixels of the regions."""
        return sum((r[2] - r[0]) * (r[3] - r[1]) for r in self.regions)


@dataclass
class ScanStats:
    """What a scan ran: frames scanned whole, regions searched and the pixels of both.

    ``pixels_full`` counts every scanned frame as whole: ``pixels_searched / pixels_full`` is the
    share of the full scan's detection work left (before the pyramid multiplies it).
    """

    frames: int = 0
    key_frames: int = 0  # frames scanned whole (key frames; small frames with anything to search)
    rescans: int = 0  # frames scanned whole again because a live track was lost
    coarse: int = 0  # frames searched whole at COARSE_SIDE (besides their regions)
    regions: int = 0
    pixels_searched: int = 0
    pixels_full: int = 0

    def add(self, other: ScanStats) -> None:
        for name in ("frames", "key_frames", "rescans", "coarse", "regions", "pixels_searched", "pixels_full"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def searched_share(self) -> float:
        return self.pixels_searched / self.pixels_full if self.pixels_full else 0.0


@dataclass
class _Seen:
    """A face of the previous sampled frame: box (source px), time, centre velocity (px/s) if known."""

    box: np.ndarray
    t: float
    velocity: np.ndarray | None = None
    hits: int = 1  # successive sampled frames it was found in

    def predicted(self, t: float) -> np.ndarray:
        if self.velocity is None:
            return self.box
        shift = self.velocity * (t - self.t)
        return self.box + np.concatenate([shift, shift])


@dataclass
class SkipScheduler:
    """Decides, frame by frame of one chunk, where to detect (see the module docstring).

    Call :meth:`plan` with each sampled frame in time order and run the detection it asks for;
    when it searched regions and :meth:`lost` says a live track is lost, search the frame whole;
    then :meth:`observe` the faces found (``key=True`` after a whole-frame search).
    """

    min_face_px: float
    #: side (px) of the largest square image the engine searches on one canvas (:func:`one_canvas_side`).
    mosaic_side: int = MOSAIC_SIDE
    #: a frame no larger than this (px, the detector's canvas) is searched whole whenever anything
    #: in it must be searched: regions would save at most a canvas or two, and the faces found
    #: stay exactly the full scan's (a face found in a region has slightly different landmarks,
    #: which can tip the tracker's appearance gate on blurred faces).
    whole_side: int = 640
    scene_cut: float = TrackerConfig.scene_cut
    _period: int | None = None
    _signature: np.ndarray | None = None
    _reference: np.ndarray | None = None  # shrunk grey previous frame
    _whole_reference: np.ndarray | None = None  # shrunk grey frame of the last whole scan
    _seen: list[_Seen] = field(default_factory=list)
    _regions: list[np.ndarray] = field(default_factory=list)  # search region of each _seen, this frame

    def plan(self, rgb: np.ndarray, t: float, period: int, signature: np.ndarray | None) -> ScanPlan:
        """Where to detect in this frame ((H, W, 3) uint8 RGB at ``t`` seconds, key period ``period``)."""
        small = shrink_grey(rgb)
        previous_small, previous_signature = self._reference, self._signature
        self._reference, self._signature = small, signature
        previous_period, self._period = self._period, period
        new_period = period != previous_period
        if new_period and (self._whole_reference is None or whole_scan_groups(period) != whole_scan_groups(previous_period)):
            return self._key("key period")
        if scene_change(previous_signature, signature) > self.scene_cut:
            return self._key("cut")
        # a key frame between whole scans: what changed since the last whole scan, slow changes included
        reference = self._whole_reference if new_period else previous_small
        height, width = rgb.shape[:2]
        self._regions = [self._track_region(s, t, width, height) for s in self._seen]
        tracks = [np.append(region, min(1.0, TRACK_FACE_PX / _size(s.box))) for s, region in zip(self._seen, self._regions)]
        changes = [np.append(box, 1.0) for box in change_boxes(reference, small, self.min_face_px, width, height)]
        regions = merge_boxes(aligned([*tracks, *changes], width, height))
        if not regions:
            return ScanPlan(False, (), "nothing changed since the last whole scan" if new_period else "nothing changed, no live track")
        if max(width, height) <= self.whole_side:
            return ScanPlan(True, (), "a small frame with changes or live tracks is searched whole")
        if _area(regions) > FULL_SHARE * width * height:
            if MOVING_SCAN == "full":
                return self._key("changes cover the frame")
            return ScanPlan(False, _as_tuples(merge_boxes(tracks)), "changes cover the frame: live tracks and a coarse pass", coarse=True)
        return ScanPlan(False, _as_tuples(regions))

    def _key(self, reason: str) -> ScanPlan:
        self._seen, self._regions = [], []
        return ScanPlan(True, (), reason)

    def _track_region(self, seen: _Seen, t: float, width: int, height: int) -> np.ndarray:
        box = seen.predicted(t)
        size = _size(box)
        grow = size * (TRACK_MARGIN_FACES + TRACK_SPEED_FACES_PER_S * max(t - seen.t, 0.0))
        return clip_box(box + np.array([-grow, -grow, grow, grow]), width, height)

    def lost(self, rows: np.ndarray, t: float, width: int, height: int) -> bool:
        """True when a face of the previous frame, still inside the frame, has no face in its region."""
        for seen, region in zip(self._seen, self._regions):
            if seen.hits < STABLE_HITS or any(_centre_inside(row[:4], region) for row in rows):
                continue
            cx, cy = _centre(seen.predicted(t))
            edge = EXIT_FACES * _size(seen.box)
            if edge <= cx <= width - edge and edge <= cy <= height - edge:
                return True
        return False

    def observe(self, rows: np.ndarray, t: float, *, key: bool) -> None:
        """Remember the faces found in this frame ((N, >=4) rows); velocities from the previous
        frame's faces unless this was a key frame (which forgets what came before)."""
        if key:
            self._whole_reference = self._reference
        previous = [] if key else list(zip(self._seen, self._regions))
        seen = []
        for row in rows:
            box = np.asarray(row[:4], np.float64)
            velocity, hits = None, 1
            match = _nearest(box, previous)
            if match is not None and t > match.t + _EPS:
                velocity, hits = (_centre(box) - _centre(match.box)) / (t - match.t), match.hits + 1
            seen.append(_Seen(box, t, velocity, hits))
        self._seen, self._regions = seen, []


def _nearest(box: np.ndarray, previous: Sequence[tuple[_Seen, np.ndarray]]) -> _Seen | None:
    """The previous face whose region holds this box's centre, nearest predicted centre first."""
    best, best_distance = None, math.inf
    for seen, region in previous:
        if not _centre_inside(box, region):
            continue
        distance = float(np.linalg.norm(_centre(box) - _centre(seen.box)))
        if distance < best_distance:
            best, best_distance = seen, distance
    return best


def shrink_grey(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB -> (H / CHANGE_SCALE, W / CHANGE_SCALE) uint8 grey, averaged (noise cancels).

    Grey first, then averaged: a third of the pixels to average (1.0 against 2.6 ms per 1080p
    frame here), and the same values to rounding.
    """
    height, width = rgb.shape[:2]
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (max(1, width // CHANGE_SCALE), max(1, height // CHANGE_SCALE)), interpolation=cv2.INTER_AREA)


def change_boxes(before: np.ndarray | None, after: np.ndarray, min_face_px: float, width: int, height: int) -> list[np.ndarray]:
    """Boxes (source px, float) round what changed between two shrunk grey frames, grown by a margin.

    ``width``/``height``: the source frame size (the shrunk frames are ``CHANGE_SCALE`` times smaller).
    """
    if before is None or before.shape != after.shape:
        return [np.array([0.0, 0.0, width, height])]
    changed = (cv2.absdiff(before, after) > CHANGE_LEVEL).astype(np.uint8)
    if CHANGE_DILATE:
        changed = cv2.dilate(changed, np.ones((3, 3), np.uint8), iterations=CHANGE_DILATE)
    count, _, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
    sx, sy = width / after.shape[1], height / after.shape[0]
    noise = NOISE_SHARE * (min_face_px / sx) * (min_face_px / sy)
    margin = CHANGE_MARGIN_FACES * min_face_px
    boxes = []
    for x, y, w, h, area in stats[1:]:
        if area < noise:
            continue
        box = np.array([x * sx - margin, y * sy - margin, (x + w) * sx + margin, (y + h) * sy + margin])
        boxes.append(clip_box(box, width, height))
    return boxes


def merge_boxes(regions: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Union regions (x1, y1, x2, y2, scale) that overlap, until none do, at the finer of their
    scales; corners rounded outwards to whole pixels, sorted top-left first (deterministic)."""
    merged = [np.asarray(r, np.float64) for r in regions]
    changed = True
    while changed:
        changed = False
        out: list[np.ndarray] = []
        for box in merged:
            for i, kept in enumerate(out):
                if box[0] < kept[2] and kept[0] < box[2] and box[1] < kept[3] and kept[1] < box[3]:
                    out[i] = np.array(
                        [min(box[0], kept[0]), min(box[1], kept[1]), max(box[2], kept[2]), max(box[3], kept[3]), max(box[4], kept[4])]
                    )
                    changed = True
                    break
            else:
                out.append(box)
        merged = out
    rounded = [np.array([math.floor(b[0]), math.floor(b[1]), math.ceil(b[2]), math.ceil(b[3]), b[4]]) for b in merged]
    return sorted((b for b in rounded if b[2] > b[0] and b[3] > b[1]), key=lambda b: (b[1], b[0]))


def aligned(regions: Sequence[np.ndarray], width: int, height: int) -> list[np.ndarray]:
    """Full-scale regions grown to start on multiples of ``ALIGN_PX`` (scaled ones unchanged)."""
    out = []
    for r in regions:
        if r[4] == 1.0:
            r = np.array([ALIGN_PX * math.floor(r[0] / ALIGN_PX), ALIGN_PX * math.floor(r[1] / ALIGN_PX), r[2], r[3], 1.0])
        out.append(clip_box(r[:4], width, height).tolist() + [r[4]])
    return [np.asarray(r, np.float64) for r in out]


def _area(regions: Sequence[np.ndarray]) -> float:
    return sum(float((r[2] - r[0]) * (r[3] - r[1])) for r in regions)


def _as_tuples(regions: Sequence[np.ndarray]) -> tuple[tuple[int, int, int, int, float], ...]:
    return tuple((int(r[0]), int(r[1]), int(r[2]), int(r[3]), float(r[4])) for r in regions)


def clip_box(box: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.array([max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(width)), min(box[3], float(height))])


def _centre(box: Sequence[float]) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


def _size(box: Sequence[float]) -> float:
    return math.sqrt(max(box[2] - box[0], 1.0) * max(box[3] - box[1], 1.0))


def _centre_inside(box: Sequence[float], region: Sequence[float]) -> bool:
    cx, cy = _centre(box)
    return bool(region[0] <= cx <= region[2] and region[1] <= cy <= region[3])


@dataclass(frozen=True)
class _Placed:
    """A region (x1, y1, x2, y2 source px; scale) placed at ``(mx, my)`` in a mosaic."""

    box: tuple[int, int, int, int]
    scale: float
    mx: int
    my: int

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the region at its scale, px."""
        return _scaled_size(self.box, self.scale)


def _scaled_size(box: Sequence[int], scale: float) -> tuple[int, int]:
    return max(1, round((box[2] - box[0]) * scale)), max(1, round((box[3] - box[1]) * scale))


def pack_regions(regions: Sequence[Sequence[float]], side: int = MOSAIC_SIDE, gap: int = MOSAIC_GAP) -> list[list[_Placed]]:
    """Group regions (x1, y1, x2, y2, scale) into images to detect on: those no larger than
    ``side`` px at their scale packed in shelves into mosaics (tallest first), larger ones
    alone. Deterministic for the same regions."""
    items = [((int(r[0]), int(r[1]), int(r[2]), int(r[3])), float(r[4])) for r in regions]
    small = [(b, k) for b, k in items if max(_scaled_size(b, k)) <= side]
    images: list[list[_Placed]] = [[_Placed(b, k, 0, 0)] for b, k in items if max(_scaled_size(b, k)) > side]
    mosaic: list[_Placed] = []
    x = y = shelf = 0
    for box, scale in sorted(small, key=lambda item: (-_scaled_size(*item)[1], item[0][1], item[0][0])):
        w, h = _scaled_size(box, scale)
        if x + w > side:  # next shelf
            x, y, shelf = 0, _align_up(y + shelf + gap), 0
        if y + h > side:  # next mosaic
            images.append(mosaic)
            mosaic, x, y, shelf = [], 0, 0, 0
        mosaic.append(_Placed(box, scale, x, y))
        x, shelf = _align_up(x + w + gap), max(shelf, h)
    if mosaic:
        images.append(mosaic)
    return images


def _align_up(value: int) -> int:
    return ALIGN_PX * math.ceil(value / ALIGN_PX)


def _region_pixels(rgb: np.ndarray, p: _Placed) -> np.ndarray:
    x1, y1, x2, y2 = p.box
    crop = rgb[y1:y2, x1:x2]
    return crop if p.scale == 1.0 else cv2.resize(crop, p.size, interpolation=cv2.INTER_AREA)


def _compose(rgb: np.ndarray, placed: Sequence[_Placed], side: int = MOSAIC_SIDE) -> np.ndarray:
    """The image for one group: a region larger than a mosaic as it is, else a black
    ``side`` x ``side`` mosaic of the regions (always that size, so the engine searches it at
    scale 1, as it searches a whole frame of that size)."""
    if len(placed) == 1 and max(placed[0].size) > side:
        return _region_pixels(rgb, placed[0])
    mosaic = np.zeros((side, side, 3), np.uint8)
    for p in placed:
        w, h = p.size
        mosaic[p.my : p.my + h, p.mx : p.mx + w] = _region_pixels(rgb, p)
    return mosaic


def one_canvas_side(canvas_px: int, min_face_px: float, reliable_face_px: float) -> int:
    """Side (px, a multiple of ``ALIGN_PX``) of the largest square image a detector with
    ``canvas_px`` canvases, finding faces from ``reliable_face_px`` on its canvas, searches for
    faces of ``min_face_px`` on one canvas: the image enlarged by reliable / min_face must fit."""
    side = canvas_px * min(1.0, min_face_px / reliable_face_px)
    return max(ALIGN_PX, ALIGN_PX * int(side // ALIGN_PX))


def detect_in_regions(
    detect_rows, rgb: np.ndarray, regions: Sequence[Sequence[float]], side: int = MOSAIC_SIDE
) -> tuple[np.ndarray, int]:
    """Faces found inside ``regions`` (x1, y1, x2, y2, scale) of a frame, in frame pixels, merged by NMS.

    ``detect_rows(rgb) -> (N, 15)`` is the engine's detector (x1, y1, x2, y2, score, 5
    landmarks). Small regions are packed into mosaics (:func:`pack_regions`); a face is kept
    only from the region holding its centre, and not when a region edge inside the frame cuts
    it. Returns the rows and the number of images the detector ran on.
    """
    height, width = rgb.shape[:2]
    groups = pack_regions(regions, side)
    found = []
    for placed in groups:
        rows = np.asarray(detect_rows(_compose(rgb, placed, side)), np.float32).reshape(-1, 15)
        found.extend(_rows_of(rows, p, width, height) for p in placed)
    rows = np.concatenate(found) if found else np.zeros((0, 15), np.float32)
    return (nms(rows, MERGE_IOU) if len(rows) > 1 else rows), len(groups)


def detect_coarse(detect_rows, rgb: np.ndarray, side: int = COARSE_SIDE) -> np.ndarray:
    """Faces of the whole frame shrunk so its longest side is ``side`` px, in frame pixels."""
    height, width = rgb.shape[:2]
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = rgb if scale == 1.0 else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    rows = np.asarray(detect_rows(small), np.float32).reshape(-1, 15).copy()
    rows[:, _XS] *= width / small.shape[1]
    rows[:, _YS] *= height / small.shape[0]
    return rows


def merge_rows(*parts: np.ndarray) -> np.ndarray:
    """(N, 15) rows of several searches of one frame, one row per face (NMS)."""
    rows = np.concatenate([p.reshape(-1, 15) for p in parts]) if parts else np.zeros((0, 15), np.float32)
    return nms(rows, MERGE_IOU) if len(rows) > 1 else rows


def _rows_of(rows: np.ndarray, p: _Placed, width: int, height: int) -> np.ndarray:
    """The mosaic's rows that belong to region ``p``, whole, mapped to frame pixels."""
    w, h = p.size
    local = rows.copy()
    local[:, _XS] -= p.mx
    local[:, _YS] -= p.my
    centre_x, centre_y = (local[:, 0] + local[:, 2]) / 2, (local[:, 1] + local[:, 3]) / 2
    local = local[(centre_x >= 0) & (centre_x < w) & (centre_y >= 0) & (centre_y < h)]
    x1, y1, x2, y2 = p.box
    cut = np.zeros(len(local), bool)
    if x1 > 0:
        cut |= local[:, 0] <= EDGE_PX
    if y1 > 0:
        cut |= local[:, 1] <= EDGE_PX
    if x2 < width:
        cut |= local[:, 2] >= w - EDGE_PX
    if y2 < height:
        cut |= local[:, 3] >= h - EDGE_PX
    local = local[~cut]
    local[:, _XS] = local[:, _XS] * ((x2 - x1) / w) + x1
    local[:, _YS] = local[:, _YS] * ((y2 - y1) / h) + y1
    return local
