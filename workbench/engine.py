"""FaceEngine: image -> faces with boxes, landmarks, aligned crops, embeddings and quality.

Pipeline per image::

    load (EXIF upright, RGB) -> detect on 640x640 canvases -> merge (NMS) -> align (ArcFace
    5-point similarity transform, 112x112) -> embed (batched) -> quality

Finding small faces in big images: the detection schedule
----------------------------------------------------------
A detector finds faces down to its ``reliable_face_px`` wide on its canvas, measured per
detector by ``bench/bench_min_face.py`` (YuNet 26 px, SCRFD-500M 16 px; see
:mod:`workbench.models.detectors`). Smaller faces must be searched on an enlarged copy. The
default "planned" schedule searches the fewest canvases that see every face of
``min_face_px`` and up:

1. the whole image on one canvas (fitted into 640x640). It sees faces of
   ``reliable_face_px / scale`` source pixels and up; when that is ``min_face_px`` or less
   (a custody portrait, a 640x480 photo with SCRFD, a 1080p frame at ``min_face_px`` 80) it is
   the only canvas. The first canvas does not enlarge the image (except a thumbnail of at most
   half a canvas, ``SMALL_IMAGE_SHARE``, enlarged to fill it, as the dense schedule did): large
   faces are found at the image's own scale, as the dense schedule found them, so their
   landmarks and embeddings stay the same (enlarging a 480 px custody portrait 1.3x moved YuNet's landmarks enough to change
   SFace embeddings to a median cosine of 0.974 against the dense schedule's);
2. otherwise finer levels, only for the face sizes the first cannot see: the finest makes a
   ``min_face_px`` face ``reliable_face_px`` wide (enlarging by at most ``MAX_UPSCALE``, 2x),
   with levels in between when the step would exceed
   ``FINE_LEVEL_MAX_FACE_PX / (LEVEL_SLACK x reliable_face_px)`` (about 5x). A finer level keeps
   faces up to ``LEVEL_SLACK`` (1.25) times the width the coarser level sees reliably (NMS merges
   the few found twice) and drops wider ones (they belong to the coarser level). For YuNet, fixed
   at 640x640, a finer level is cut into 640 tiles overlapping by that widest face plus
   ``TILE_CONTEXT_PX``; a detector with dynamic input (SCRFD-500M) runs it as one canvas of the
   scaled image, sides rounded up to 32 (windows of up to ``DYNAMIC_WINDOW_PX`` beyond that),
   which costs about half the pixels of overlapping tiles.

Images are scaled bilinearly, as InsightFace does (``INTER_AREA`` reads every source pixel and
cost more than the model calls on a 12-megapixel photo). A face cut by an inner tile edge is
dropped from that tile: the overlap guarantees that every face the level keeps lies whole inside
a neighbouring tile. All detections are merged by non-maximum suppression in source-image
pixels, then faces narrower than ``MIN_FACE_TOLERANCE x min_face_px`` are dropped.

The "dense" schedule (``FaceEngine(..., schedule="dense")``) is the pyramid used before: it
assumes ``DETECTOR_MIN_FACE_PX`` (32 px) for every detector, steps at most ``MAX_LEVEL_STEP``
(5x) and cuts every level into 640x640 tiles overlapping by ``TILE_OVERLAP_PX`` (160 px),
scaling down with ``INTER_AREA``: at ``min_face_px=20`` a 640x480 image takes 5 canvases, a
1080p frame 29 and a 4000x3000 photo 143. It stays for side-by-side benchmarks
(``bench/bench_schedule.py``, ``bench/bench_engine.py``).

``FaceEngine.detection_stats`` counts what detection ran: canvases, canvas pixels, seconds
inside the bare model calls (``session.run``) and in ``detect_rows`` as a whole, so the
engine's own overhead is measured on the canvases it actually ran.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from .config import Settings
from .images import ImageSource, load_image
from .models.detectors import nms
from .models.loading import load_models
from .models.packs import PackInfo, read_pack
from .quality import assess
from .types import Face, PackId

#: the schedules a FaceEngine can run (see the module docstring); "planned" is the default.
SCHEDULES = ("planned", "dense")

# -- the "dense" schedule (the engine's pyramid before issue 12; kept for side-by-side benchmarks) --
#: smallest face (px on the canvas) the dense schedule assumes every detector finds: measured on
#: t1.jpg's six faces pasted into a 1080p frame, YuNet finds 3 of 6 at 20 px, 4 at 28 px and all 6 from 32 px
#: (the planned schedule uses each detector's own measured ``reliable_face_px`` instead).
DETECTOR_MIN_FACE_PX = 32
#: finest pyramid level may upsample the image this much (small faces need it).
MAX_UPSCALE = 2.0
MAX_LEVEL_STEP = 5.0
TILE_OVERLAP_PX = 160

# -- the "planned" schedule --
#: an image no larger than this share of the canvas (a thumbnail, a crop) is enlarged to fill it,
#: up to MAX_UPSCALE: a face filling a 112 px crop gets landmarks as good as the dense schedule's
#: 1.6x gave it (at its own size YuNet's box ran off the crop and the embedding lost 0.09 cosine).
SMALL_IMAGE_SHARE = 0.5
#: a finer level keeps faces up to this many times the width the coarser level sees reliably, so
#: a face just at the boundary that the coarser level misses is still found (NMS merges doubles).
LEVEL_SLACK = 1.25
#: widest face (canvas px) a finer level is asked to find; bounds the scale step between levels
#: to FINE_LEVEL_MAX_FACE_PX / (LEVEL_SLACK x reliable_face_px), about 6x for 16 px.
FINE_LEVEL_MAX_FACE_PX = 128
#: context kept round a face beside a tile edge (canvas px): tiles overlap by the level's widest
#: face plus this, so each face it must find lies whole, with context, inside one tile.
TILE_CONTEXT_PX = 32
#: largest window side (scaled px) a dynamic-input detector runs as one canvas: 2048 x 2048 is
#: a 50 MB input tensor; a larger scaled image is cut into windows this size.
DYNAMIC_WINDOW_PX = 2048

MERGE_IOU = 0.4
#: YuNet and SCRFD box widths vary around the true face width; keep faces down to this share
#: of min_face_px so a face of exactly min_face_px is not lost to box jitter.
MIN_FACE_TOLERANCE = 0.8

#: Where the five landmarks of a frontal face sit inside a detector box, as shares of the box
#: width and height (x, y). Measured on YuNet's boxes of the eight faces of t1.jpg, Tom Hanks and
#: the astronaut, then made left-right symmetric (a drawn box says nothing about head turn):
#: eyes 0.218 either side of the centre at 0.393 down, nose at 0.588, mouth corners 0.181
#: either side at 0.738. Used to align a box a person drew round a face the detector missed.
BOX_LANDMARK_SHARES = np.array(
    [[0.282, 0.393], [0.718, 0.393], [0.5, 0.588], [0.319, 0.738], [0.681, 0.738]], dtype=np.float64
)
#: width / height of those detector boxes (0.74 to 0.88, median 0.77).
BOX_ASPECT = 0.77

#: ArcFace 5-point template for a 112x112 crop (insightface's ``arcface_dst``).
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def arcface_transform(landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """2x3 similarity transform taking the 5 landmarks onto the ArcFace template (least squares)."""
    from skimage.transform import SimilarityTransform

    template = ARCFACE_TEMPLATE_112 * (size / 112.0)
    transform = SimilarityTransform.from_estimate(np.asarray(landmarks, np.float64), template)
    return transform.params[:2].astype(np.float64)


def align_face(image_rgb: np.ndarray, landmarks: np.ndarray, size: int = 112) -> np.ndarray:
    """The ArcFace-aligned ``(size, size, 3)`` uint8 crop of one face."""
    matrix = arcface_transform(landmarks, size)
    return cv2.warpAffine(image_rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def pyramid_scales(height: int, width: int, *, min_face_px: int, canvas: int = 640) -> list[float]:
    """Scales the "dense" schedule searches, coarsest (whole image on one canvas) first.

    The finest scale makes a ``min_face_px`` face ``DETECTOR_MIN_FACE_PX`` wide (upsampling up
    to ``MAX_UPSCALE``); levels in between are spaced geometrically, at most
    ``MAX_LEVEL_STEP`` apart. See the module docstring.
    """
    whole = min(1.0, canvas / max(height, width))
    finest = min(MAX_UPSCALE, DETECTOR_MIN_FACE_PX / float(min_face_px))
    if finest <= whole * 1.05:
        return [whole]
    if max(height, width) * finest <= canvas:
        return [finest]  # small image: one upsampled canvas holds every face size
    steps = math.ceil(math.log(finest / whole) / math.log(MAX_LEVEL_STEP) - 1e-9)
    ratio = (finest / whole) ** (1.0 / steps)
    return [whole * ratio**k for k in range(steps)] + [finest]


def tile_origins(length: int, canvas: int = 640, overlap: int = TILE_OVERLAP_PX) -> list[int]:
    """Start offsets of canvas-sized windows covering ``length`` pixels with ``overlap``."""
    if length <= canvas:
        return [0]
    step = canvas - overlap
    count = int(np.ceil((length - overlap) / step))
    origins = [min(i * step, length - canvas) for i in range(count)]
    return sorted(set(origins))


def balanced_spans(length: int, window: int, overlap: int, *, shrink: bool) -> list[tuple[int, int]]:
    """(start, size) of the fewest windows of at most ``window`` px covering ``length`` px,
    neighbours overlapping by at least ``overlap`` px, spread evenly.

    ``shrink``: make the windows only as large as the cover needs (rounded up to 32 px, for a
    detector that runs any shape); otherwise every window is ``window`` px (a fixed canvas).
    """
    if length <= window:
        return [(0, length)]
    count = math.ceil((length - overlap) / (window - overlap))
    size = window
    if shrink:
        size = min(window, 32 * math.ceil(math.ceil((length + (count - 1) * overlap) / count) / 32))
    return [(round(i * (length - size) / (count - 1)), size) for i in range(count)]


@dataclass(frozen=True)
class Level:
    """One level of a detection schedule: the image scaled by ``scale``, cut into windows.

    Attributes:
        scale: scaled size / source size.
        window: largest window side in scaled pixels (the canvas for a fixed-input detector).
        overlap: least overlap of neighbouring windows in scaled pixels.
        max_face_px: widest face (canvas px) kept from this level; wider ones belong to a coarser level.
        layout: "dense" (640 tiles as before issue 12), "fixed" (tiles of ``window`` spread
            evenly) or "shrink" (windows only as large as needed, for dynamic-input detectors).
    """

    scale: float
    window: int
    overlap: int
    max_face_px: float
    layout: str = "fixed"

    def scaled_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the scaled image, at least 1 px each."""
        return max(1, round(height * self.scale)), max(1, round(width * self.scale))

    def windows(self, height: int, width: int) -> list[tuple[int, int, int, int]]:
        """(x0, y0, width, height) of the windows covering the scaled image of a (height, width) source."""
        scaled_h, scaled_w = self.scaled_size(height, width)
        if self.layout == "dense":
            rows = [(y0, min(self.window, scaled_h - y0)) for y0 in tile_origins(scaled_h, self.window, self.overlap)]
            columns = [(x0, min(self.window, scaled_w - x0)) for x0 in tile_origins(scaled_w, self.window, self.overlap)]
        else:
            shrink = self.layout == "shrink"
            rows = balanced_spans(scaled_h, self.window, self.overlap, shrink=shrink)
            columns = balanced_spans(scaled_w, self.window, self.overlap, shrink=shrink)
        return [(x0, y0, w, h) for y0, h in rows for x0, w in columns]


def dense_levels(height: int, width: int, *, min_face_px: int, canvas: int = 640) -> list[Level]:
    """The "dense" schedule: :func:`pyramid_scales`, 640 tiles overlapping by 160 px, as before issue 12."""
    scales = pyramid_scales(height, width, min_face_px=min_face_px, canvas=canvas)
    return [
        Level(scale, canvas, TILE_OVERLAP_PX, math.inf if k == 0 else DETECTOR_MIN_FACE_PX * scale / scales[k - 1], "dense")
        for k, scale in enumerate(scales)
    ]


def planned_levels(
    height: int, width: int, *, min_face_px: int, reliable_face_px: float, canvas: int = 640, window: int = 640, shrink: bool = False
) -> list[Level]:
    """The "planned" schedule: the whole image on one canvas, finer levels only for faces it cannot see.

    Args:
        height, width: source image size (px).
        min_face_px: smallest face wanted (source px).
        reliable_face_px: smallest face the detector finds reliably (canvas px; its ``reliable_face_px``).
        canvas: the detector's canvas side (the whole image is fitted into it).
        window: largest window side of the finer levels (``canvas`` for a fixed-input detector,
            ``DYNAMIC_WINDOW_PX`` for one that runs any shape).
        shrink: windows only as large as needed (a detector that runs any shape).

    The first level sees faces of ``reliable_face_px / scale`` source px and up. When that is
    already ``min_face_px`` or less it is the only level. Otherwise finer levels follow, spaced
    geometrically at most FINE_LEVEL_MAX_FACE_PX / (LEVEL_SLACK x reliable_face_px) apart, the
    finest making a ``min_face_px`` face ``reliable_face_px`` wide (upsampling at most
    ``MAX_UPSCALE``). Each finer level keeps faces up to LEVEL_SLACK x the coarser level's
    reliable size, and its windows overlap by that width plus ``TILE_CONTEXT_PX``.
    """
    whole = min(1.0, canvas / max(height, width))  # the whole image on one canvas, not enlarged (module docstring)
    if max(height, width) <= SMALL_IMAGE_SHARE * canvas:  # a thumbnail: enlarged, as the dense schedule did
        whole = min(MAX_UPSCALE, canvas / max(height, width))
    finest = min(MAX_UPSCALE, reliable_face_px / float(min_face_px))
    if finest <= whole:  # one canvas sees every face
        return [Level(whole, canvas, 0, math.inf)]
    max_step = FINE_LEVEL_MAX_FACE_PX / (LEVEL_SLACK * reliable_face_px)
    steps = max(1, math.ceil(math.log(finest / whole) / math.log(max_step) - 1e-9))
    ratio = (finest / whole) ** (1.0 / steps)
    levels = [Level(whole, canvas, 0, math.inf)]
    for k in range(1, steps + 1):
        max_face = LEVEL_SLACK * reliable_face_px * ratio
        overlap = min(window // 2, math.ceil(max_face) + TILE_CONTEXT_PX)
        levels.append(Level(finest if k == steps else whole * ratio**k, window, overlap, max_face, "shrink" if shrink else "fixed"))
    return levels


def faces_from_rows(rows: np.ndarray) -> list[Face]:
    """Faces (box, landmarks, detector score) of (N, 15) detection rows in source pixels."""
    return [Face(bbox_xyxy=tuple(float(v) for v in r[:4]), landmarks=r[5:15].reshape(5, 2), detector_score=float(r[4])) for r in rows]


def most_prominent(faces: Sequence[Face], image_shape: tuple[int, ...]) -> Face:
    """The face a person would call 'the' face of the image: large and central.

    Prominence = relative size x (1 - 0.5 x relative distance from the centre), where relative
    size is sqrt(box area / image area) and relative distance is the centre offset over half the
    image diagonal. Unlike an absolute-pixel rule it behaves the same on a 400 px mugshot and a
    7000 px photo: a face twice as wide wins unless it sits at the very edge.
    """
    if not faces:
        raise ValueError("no faces to choose from")
    return max(faces, key=lambda face: prominence(face.bbox_xyxy, image_shape))


def prominence(bbox_xyxy: Sequence[float], image_shape: tuple[int, ...]) -> float:
    """How prominent a face box is in an image (see :func:`most_prominent`): at most its relative size."""
    height, width = image_shape[:2]
    x1, y1, x2, y2 = (float(v) for v in bbox_xyxy[:4])
    size = math.sqrt(max(x2 - x1, 0) * max(y2 - y1, 0) / (width * height))
    offset = math.hypot((x1 + x2) / 2 - width / 2, (y1 + y2) / 2 - height / 2) / (0.5 * math.hypot(width, height))
    return size * (1 - 0.5 * min(offset, 1.0))


#: detector boxes are at most this much higher than wide (YuNet's width/height: 0.74 to 0.88):
#: bounds how prominent a face no wider than a level keeps can be.
TALLEST_BOX = 1 / 0.7


def prominence_settled(rows: np.ndarray, remaining: Sequence[Level], image_shape: tuple[int, ...]) -> bool:
    """Whether no face the ``remaining`` levels could add can be more prominent than the best of ``rows``.

    A finer level keeps faces narrower than ``max_face_px / scale`` source px; such a face is at
    most as prominent as its relative size, sqrt(w x TALLEST_BOX x w / image area).
    """
    if len(rows) == 0 or not remaining:
        return bool(len(rows)) or not remaining
    height, width = image_shape[:2]
    widest = max(level.max_face_px / level.scale for level in remaining)
    bound = math.sqrt(widest * widest * TALLEST_BOX / (width * height))
    return max(prominence(r, image_shape) for r in rows) > bound


@dataclass
class DetectionStats:
    """What :meth:`FaceEngine.detect_rows` ran, summed over calls since the last reset.

    Attributes:
        images: detect_rows calls.
        canvases: detector model calls (one per canvas).
        canvas_pixels: pixels of the canvases as run (padding included).
        model_seconds: wall time inside the bare model calls (``session.run``) only.
        total_seconds: wall time of detect_rows, model calls included.
        canvas_shapes: canvases run per (height, width).
    """

    images: int = 0
    canvases: int = 0
    canvas_pixels: int = 0
    model_seconds: float = 0.0
    total_seconds: float = 0.0
    canvas_shapes: Counter = field(default_factory=Counter)

    @property
    def overhead(self) -> float:
        """total / model seconds: 1.0 means detect_rows costs nothing beyond the model calls."""
        return self.total_seconds / self.model_seconds if self.model_seconds else math.nan


class FaceEngine:
    """Detects, aligns, embeds and assesses faces with one model pack.

    Args:
        pack: the model pack (see :func:`workbench.models.read_pack`).
        settings: detection threshold, minimum face size, batch size, image limits.
        threads: onnxruntime threads per session (0 = all cores; 1 inside Dask workers).
        schedule: "planned" (default: the fewest canvases that find every face of ``min_face_px``
            and up, see the module docstring) or "dense" (the pyramid before issue 12, for
            side-by-side comparisons).
        rewrite: run the models' PReLUs as the same function in faster operations (default;
            :mod:`workbench.models.graph`); False runs the graphs exactly as stored (benchmarks).

    Loading takes about a second; create one engine and reuse it. ``detection_stats`` counts
    the canvases detection ran and the time inside the model calls; reset it with
    ``engine.detection_stats = DetectionStats()``.
    """

    def __init__(
        self, pack: PackInfo, settings: Settings | None = None, *, threads: int = 0, schedule: str = "planned", rewrite: bool = True
    ):
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        self.pack = pack
        self.settings = settings or Settings()
        self.schedule = schedule
        self.rewrite = rewrite
        self.detector, self.recogniser = load_models(pack, threads=threads, rewrite=rewrite)
        self.detection_threshold = self.settings.detection_threshold or self.detector.default_threshold
        self.detection_stats = DetectionStats()
        self._lanes: list[FaceEngine] = []
        self._lanes_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, threads: int = 0, schedule: str = "planned", rewrite: bool = True) -> FaceEngine:
        """The engine for ``settings.pack`` in ``settings.home`` (the default pack is converted on first use)."""
        return cls(read_pack(settings.models_dir, settings.pack), settings, threads=threads, schedule=schedule, rewrite=rewrite)

    def lanes(self, count: int) -> list[FaceEngine]:
        """``count`` engines on this engine's pack, settings and schedule whose onnxruntime
        sessions run on one thread each, for ``count`` threads analysing at once.

        Throughput work (enrolment) runs one lane per core: one-thread sessions side by side
        neither split small convolutions across cores nor wait for each other. On this 2-core
        machine that enrols 47.5 portraits/s against 44.4 with this engine alone
        (``bench/bench_enrol.py``), for about 200 MB of sessions; on more cores one session's
        threads scale less well. A single image still runs fastest on this engine's own
        sessions. The lanes are made on first use (about 0.1 s each) and kept with this engine.
        """
        with self._lanes_lock:
            while len(self._lanes) < count:
                self._lanes.append(FaceEngine(self.pack, self.settings, threads=1, schedule=self.schedule, rewrite=self.rewrite))
            return self._lanes[:count]

    @property
    def lanes_made(self) -> list[FaceEngine]:
        """The lanes :meth:`lanes` has made so far (for their ``detection_stats``)."""
        return list(self._lanes)

    @property
    def pack_id(self) -> PackId:
        return self.pack.pack_id

    @property
    def embedding_dim(self) -> int:
        return self.recogniser.embedding_dim

    @property
    def crop_size(self) -> int:
        return self.recogniser.input_size

    # -- loading -------------------------------------------------------------------------------

    def load(self, image: ImageSource) -> np.ndarray:
        """Read an image with this engine's size limits: upright (H, W, 3) uint8 RGB."""
        return load_image(image, max_pixels=self.settings.max_image_pixels, max_bytes=self.settings.max_file_bytes)

    # -- detection -----------------------------------------------------------------------------

    def detect(self, image: ImageSource | np.ndarray, *, prominent_only: bool = False) -> list[Face]:
        """Faces (box, landmarks, detector score; no embedding), most prominent first
        (``prominent_only``: see :meth:`detect_rows`)."""
        rgb = self.load(image)
        rows = self.detect_rows(rgb, prominent_only=prominent_only)
        faces = faces_from_rows(rows)
        if not faces:
            return []
        first = most_prominent(faces, rgb.shape)
        return [first] + [f for f in faces if f is not first]

    def plan(self, height: int, width: int) -> list[Level]:
        """The levels this engine's schedule searches in a (height, width) image."""
        size = self.detector.canvas_size
        if self.schedule == "dense":
            return dense_levels(height, width, min_face_px=self.settings.min_face_px, canvas=size)
        dynamic = self.detector.dynamic_input
        window = DYNAMIC_WINDOW_PX if dynamic else size
        reliable = self.detector.reliable_face_px
        return planned_levels(
            height, width, min_face_px=self.settings.min_face_px, reliable_face_px=reliable, canvas=size, window=window, shrink=dynamic
        )

    def detect_rows(self, rgb: np.ndarray, *, prominent_only: bool = False) -> np.ndarray:
        """(N, 15) float32 detections in source pixels for an (H, W, 3) uint8 RGB array:
        x1, y1, x2, y2, score, 5 landmarks (x, y).

        ``prominent_only``: stop before a finer level once no face it could add can be more
        prominent than one already found (:func:`prominence_settled`). The most prominent face is
        the same as with every level; smaller faces may be missing. A custody portrait then
        needs one canvas. The "dense" schedule ignores it (it is the method before).
        """
        started = time.perf_counter()
        calls, pixels, model_seconds = self.detector.model_calls, self.detector.model_pixels, self.detector.model_seconds
        height, width = rgb.shape[:2]
        levels = self.plan(height, width)
        found: list[np.ndarray] = []
        for k, level in enumerate(levels):
            found += self._detect_level(rgb, level)
            # The dense schedule always runs every level: it is the method before, for comparison.
            stop_early = prominent_only and self.schedule == "planned" and k + 1 < len(levels)
            if stop_early and prominence_settled(self._merged(found), levels[k + 1 :], rgb.shape):
                break
        rows = self._merged(found)
        stats = self.detection_stats
        stats.images += 1
        stats.canvases += self.detector.model_calls - calls
        stats.canvas_pixels += self.detector.model_pixels - pixels
        stats.model_seconds += self.detector.model_seconds - model_seconds
        stats.total_seconds += time.perf_counter() - started
        return rows

    def _merged(self, found: list[np.ndarray]) -> np.ndarray:
        """Detections of several windows merged by NMS, faces narrower than ``min_face_px`` (with tolerance) dropped."""
        rows = nms(np.concatenate(found), MERGE_IOU) if found else np.zeros((0, 15), np.float32)
        return rows[(rows[:, 2] - rows[:, 0]) >= self.settings.min_face_px * MIN_FACE_TOLERANCE]

    def _detect_level(self, rgb: np.ndarray, level: Level) -> list[np.ndarray]:
        """Detections of one level, in source pixels, faces cut by inner window edges dropped."""
        height, width = rgb.shape[:2]
        scaled_h, scaled_w = level.scaled_size(height, width)
        if (scaled_h, scaled_w) == (height, width):
            scaled = rgb
        elif self.schedule == "dense":
            interpolation = cv2.INTER_AREA if level.scale < 1.0 else cv2.INTER_LINEAR
            scaled = cv2.resize(rgb, (scaled_w, scaled_h), interpolation=interpolation)
        else:
            # Bilinear reads only the source pixels it needs (as InsightFace does): INTER_AREA reads
            # all of them and costs 30x more on a 12-megapixel photo, more than the model calls.
            scaled = cv2.resize(rgb, (scaled_w, scaled_h), interpolation=cv2.INTER_LINEAR)
        # the dense schedule runs every window on a full 640x640 canvas, as it always did
        forced_shape = (level.window, level.window) if self.schedule == "dense" else None
        found = []
        for x0, y0, window_w, window_h in level.windows(height, width):
            window = scaled[y0 : y0 + window_h, x0 : x0 + window_w]
            shape = forced_shape or self.detector.canvas_shape(*window.shape[:2])
            self.detection_stats.canvas_shapes[shape] += 1
            rows = self.detector.detect(window, self.detection_threshold, shape)
            placement = _Window(x0, y0, window.shape[1], window.shape[0], scaled_w, scaled_h, width, height, level.max_face_px)
            found.append(placement.to_source(rows))
        return found

    # -- embedding -----------------------------------------------------------------------------

    def embed_aligned(self, crops_rgb: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB aligned crops -> (N, D) float32 L2-normalised, in batches."""
        batch = self.settings.embed_batch_size
        parts = [self.recogniser.embed(crops_rgb[i : i + batch]) for i in range(0, len(crops_rgb), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, self.embedding_dim), np.float32)

    def analyse(self, image: ImageSource | np.ndarray) -> list[Face]:
        """Every face with embedding, quality and aligned crop, most prominent first."""
        return self.analyse_many([image])[0]

    def analyse_many(self, images: Iterable[ImageSource | np.ndarray], *, prominent_only: bool = False) -> list[list[Face]]:
        """:meth:`analyse` for several images, embedding all their faces in shared batches
        (``prominent_only``: see :meth:`detect_rows`)."""
        detected = []
        for image in images:
            rgb = self.load(image)
            detected.append((rgb, self.detect(rgb, prominent_only=prominent_only)))
        return self.complete_faces(detected)

    def complete_faces(self, detected: Sequence[tuple[np.ndarray, Sequence[Face]]], *, keep_crops: bool = True) -> list[list[Face]]:
        """Detected faces with their embedding, quality and (``keep_crops``) aligned crop.

        ``detected``: ((H, W, 3) uint8 RGB, faces found in it) pairs; the crops of all of them are
        embedded in shared batches. Footage passes ``keep_crops=False``: it keeps no crop per frame.
        """
        per_image = [(faces, [align_face(rgb, f.landmarks, self.crop_size) for f in faces]) for rgb, faces in detected]
        all_crops = [c for _, crops in per_image for c in crops]
        embeddings = self.embed_aligned(np.stack(all_crops)) if all_crops else None
        results, k = [], 0
        for faces, crops in per_image:
            done = []
            for face, crop in zip(faces, crops):
                done.append(
                    face.replace(
                        embedding=embeddings[k],
                        pack_id=self.pack_id,
                        aligned=crop if keep_crops else None,
                        quality=assess(face.landmarks, crop, face.detector_score),
                    )
                )
                k += 1
            results.append(done)
        return results

    def embed_crop(self, crop_rgb: np.ndarray) -> Face:
        """A Face for an image that is already an aligned crop (skips detection).

        The crop is resized to the recogniser's input size if needed; the landmarks are the
        template's, so pose reads as frontal.
        """
        crop = load_image(crop_rgb) if isinstance(crop_rgb, np.ndarray) else self.load(crop_rgb)
        size = self.crop_size
        if crop.shape[:2] != (size, size):
            crop = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if crop.shape[0] > size else cv2.INTER_LINEAR)
        landmarks = ARCFACE_TEMPLATE_112 * (size / 112.0)
        embedding = self.embed_aligned(crop[None])[0]
        return Face(
            bbox_xyxy=(0.0, 0.0, float(size), float(size)),
            landmarks=landmarks,
            detector_score=1.0,
            quality=assess(landmarks, crop, 1.0),
            embedding=embedding,
            pack_id=self.pack_id,
            aligned=crop,
        )

    def face_from_box(self, image: ImageSource | np.ndarray, bbox_xyxy: Sequence[float]) -> Face:
        """A Face for a box a person drew round a face, aligned and embedded as drawn (no detector).

        The landmarks are placed where a frontal face's sit inside a detector box
        (:data:`BOX_LANDMARK_SHARES`), so the crop is aligned like a detected face of that box;
        the detector score is recorded as 1.0 and the pose reads frontal.

        Raises:
            ValueError: the box is not (x1, y1, x2, y2) with a positive size inside the image.
        """
        rgb = self.load(image)
        x1, y1, x2, y2 = (float(v) for v in bbox_xyxy)
        height, width = rgb.shape[:2]
        x1, y1, x2, y2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))
        if x2 - x1 < 4 or y2 - y1 < 4:
            raise ValueError(f"a face box must be at least 4 px wide and high inside the {width}x{height} image, got {tuple(bbox_xyxy)}")
        # People draw boxes of any shape round a face; keep its centre and area and give it a
        # detector box's proportions, so a square or a tall box aligns like a detected face.
        cx, cy, area = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) * (y2 - y1)
        box_w, box_h = math.sqrt(area * BOX_ASPECT), math.sqrt(area / BOX_ASPECT)
        landmarks = np.array([cx - box_w / 2, cy - box_h / 2]) + BOX_LANDMARK_SHARES * np.array([box_w, box_h])
        crop = align_face(rgb, landmarks, self.crop_size)
        return Face(
            bbox_xyxy=(x1, y1, x2, y2),
            landmarks=landmarks,
            detector_score=1.0,
            quality=assess(landmarks, crop, 1.0),
            embedding=self.embed_aligned(crop[None])[0],
            pack_id=self.pack_id,
            aligned=crop,
        )

    def prominent_face(self, image: ImageSource | np.ndarray) -> Face | None:
        """The most prominent face with its embedding, or None when the image has no face."""
        faces = self.analyse_many([image], prominent_only=True)[0]
        return faces[0] if faces else None


@dataclass(frozen=True)
class _Window:
    """Where one canvas came from: its tile origin in the scaled image and the scale."""

    x0: int
    y0: int
    width: int  # pixels of the scaled image inside the canvas
    height: int
    scaled_width: int
    scaled_height: int
    source_width: int
    source_height: int
    max_face_px: float  # canvas pixels; wider faces belong to a coarser level

    def to_source(self, rows: np.ndarray) -> np.ndarray:
        """Map canvas detections to source pixels, dropping faces cut by an inner tile edge
        and faces too wide for this level."""
        if len(rows) == 0:
            return rows.reshape(0, 15)
        margin = 2.0
        drop = (rows[:, 2] - rows[:, 0]) >= self.max_face_px
        if self.x0 > 0:
            drop |= rows[:, 0] <= margin
        if self.y0 > 0:
            drop |= rows[:, 1] <= margin
        if self.x0 + self.width < self.scaled_width:
            drop |= rows[:, 2] >= self.width - margin
        if self.y0 + self.height < self.scaled_height:
            drop |= rows[:, 3] >= self.height - margin
        rows = rows[~drop].copy()
        xs = [0, 2, 5, 7, 9, 11, 13]
        ys = [1, 3, 6, 8, 10, 12, 14]
        rows[:, xs] = (rows[:, xs] + self.x0) * (self.source_width / self.scaled_width)
        rows[:, ys] = (rows[:, ys] + self.y0) * (self.source_height / self.scaled_height)
        return rows
