"""FaceEngine: image -> faces with boxes, landmarks, aligned crops, embeddings and quality.

Pipeline per image::

    load (EXIF upright, RGB) -> detect on 640x640 canvases -> merge (NMS) -> align (ArcFace
    5-point similarity transform, 112x112) -> embed (batched) -> quality

Finding small faces in big images
---------------------------------
Both detectors here take a 640x640 canvas, and reliably find faces from about
``DETECTOR_MIN_FACE_PX`` (32 px) wide on it. A 1080p frame letterboxed whole onto one canvas
shrinks 3x, so a 20 px face becomes 7 px and is lost. The engine therefore searches a small
pyramid of scales:

1. the whole image, letterboxed onto one canvas (finds the large faces);
2. finer scales, spaced geometrically at most ``MAX_LEVEL_STEP`` (5x) apart, down to the scale
   at which a face of ``min_face_px`` becomes ``DETECTOR_MIN_FACE_PX`` wide (upsampling by up
   to ``MAX_UPSCALE``, 2x). A scaled image bigger than a canvas is cut into 640x640 tiles
   overlapping by ``TILE_OVERLAP_PX`` (160 px).

A face cut by a tile edge is dropped from that tile; the overlap guarantees that any face
small enough to need this level lies whole inside a neighbouring tile, and any face larger
than the overlap was already found at the coarser level (step 5x => >= 32 px there). All
detections are merged by non-maximum suppression in source-image pixels. Cost grows with the
number of canvases: at ``min_face_px=20`` a 640x480 image takes 5, a 1080p frame 29 and a
4000x3000 photo 143 (YuNet runs about 10 ms per canvas here). Raise ``min_face_px`` when
faces are known to be large (custody photos, close-up footage) to go several times faster.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .config import Settings
from .images import ImageSource, load_image
from .models.detectors import nms
from .models.loading import load_models
from .models.packs import PackInfo, read_pack
from .quality import assess
from .types import Face, PackId

#: smallest face (px on the canvas) the detectors find reliably: measured on t1.jpg's six faces
#: pasted into a 1080p frame, YuNet finds 3 of 6 at 20 px, 4 at 28 px and all 6 from 32 px.
DETECTOR_MIN_FACE_PX = 32
#: finest pyramid level may upsample the image this much (small faces need it).
MAX_UPSCALE = 2.0
MAX_LEVEL_STEP = 5.0
TILE_OVERLAP_PX = 160
MERGE_IOU = 0.4
#: YuNet and SCRFD box widths vary around the true face width; keep faces down to this share
#: of min_face_px so a face of exactly min_face_px is not lost to box jitter.
MIN_FACE_TOLERANCE = 0.8
#: canvases per detector call: on this CPU one at a time is fastest (batch 4 costs 35% more per canvas).
CANVAS_BATCH = 1

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
    """Scales at which the image is searched, coarsest (whole image on one canvas) first.

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


def most_prominent(faces: Sequence[Face], image_shape: tuple[int, ...]) -> Face:
    """The face a person would call 'the' face of the image: large and central.

    Prominence = relative size x (1 - 0.5 x relative distance from the centre), where relative
    size is sqrt(box area / image area) and relative distance is the centre offset over half the
    image diagonal. Unlike an absolute-pixel rule it behaves the same on a 400 px mugshot and a
    7000 px photo: a face twice as wide wins unless it sits at the very edge.
    """
    if not faces:
        raise ValueError("no faces to choose from")
    height, width = image_shape[:2]
    half_diagonal = 0.5 * math.hypot(width, height)

    def prominence(face: Face) -> float:
        x1, y1, x2, y2 = face.bbox_xyxy
        size = math.sqrt(max(x2 - x1, 0) * max(y2 - y1, 0) / (width * height))
        offset = math.hypot((x1 + x2) / 2 - width / 2, (y1 + y2) / 2 - height / 2) / half_diagonal
        return size * (1 - 0.5 * min(offset, 1.0))

    return max(faces, key=prominence)


class FaceEngine:
    """Detects, aligns, embeds and assesses faces with one model pack.

    Args:
        pack: the model pack (see :func:`workbench.models.read_pack`).
        settings: detection threshold, minimum face size, batch size, image limits.
        threads: onnxruntime threads per session (0 = all cores; 1 inside Dask workers).

    Loading takes about a second; create one engine and reuse it.
    """

    def __init__(self, pack: PackInfo, settings: Settings | None = None, *, threads: int = 0):
        self.pack = pack
        self.settings = settings or Settings()
        self.detector, self.recogniser = load_models(pack, threads=threads)
        self.detection_threshold = self.settings.detection_threshold or self.detector.default_threshold

    @classmethod
    def from_settings(cls, settings: Settings, *, threads: int = 0) -> FaceEngine:
        """The engine for ``settings.pack`` in ``settings.home`` (the default pack is converted on first use)."""
        return cls(read_pack(settings.models_dir, settings.pack), settings, threads=threads)

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

    def detect(self, image: ImageSource | np.ndarray) -> list[Face]:
        """Faces (box, landmarks, detector score; no embedding), most prominent first."""
        rgb = self.load(image)
        rows = self.detect_rows(rgb)
        faces = [Face(bbox_xyxy=tuple(r[:4]), landmarks=r[5:15].reshape(5, 2), detector_score=float(r[4])) for r in rows]
        if not faces:
            return []
        first = most_prominent(faces, rgb.shape)
        return [first] + [f for f in faces if f is not first]

    def detect_rows(self, rgb: np.ndarray) -> np.ndarray:
        """(N, 15) detections in source pixels for an RGB array: x1, y1, x2, y2, score, 5 landmarks."""
        height, width = rgb.shape[:2]
        size = self.detector.canvas_size
        scales = pyramid_scales(height, width, min_face_px=self.settings.min_face_px, canvas=size)
        canvases, windows = [], []
        for level, scale in enumerate(scales):
            scaled_w, scaled_h = max(1, round(width * scale)), max(1, round(height * scale))
            interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
            scaled = rgb if scale == 1.0 else cv2.resize(rgb, (scaled_w, scaled_h), interpolation=interpolation)
            # Faces this wide on the canvas were already found reliably one level coarser.
            max_face = np.inf if level == 0 else DETECTOR_MIN_FACE_PX * scale / scales[level - 1]
            for y0 in tile_origins(scaled_h, size):
                for x0 in tile_origins(scaled_w, size):
                    window = scaled[y0 : y0 + size, x0 : x0 + size]
                    bgr = cv2.cvtColor(window, cv2.COLOR_RGB2BGR)  # detectors take BGR
                    pad_bottom, pad_right = size - window.shape[0], size - window.shape[1]
                    canvases.append(cv2.copyMakeBorder(bgr, 0, pad_bottom, 0, pad_right, cv2.BORDER_CONSTANT, value=0))
                    windows.append(_Window(x0, y0, window.shape[1], window.shape[0], scaled_w, scaled_h, width, height, max_face))
        found = []
        for start in range(0, len(canvases), CANVAS_BATCH):
            batch = np.stack(canvases[start : start + CANVAS_BATCH])
            for rows, window in zip(self.detector.detect(batch, self.detection_threshold), windows[start : start + CANVAS_BATCH]):
                found.append(window.to_source(rows))
        rows = nms(np.concatenate(found), MERGE_IOU) if found else np.zeros((0, 15), np.float32)
        widths = rows[:, 2] - rows[:, 0]
        return rows[widths >= self.settings.min_face_px * MIN_FACE_TOLERANCE]

    # -- embedding -----------------------------------------------------------------------------

    def embed_aligned(self, crops_rgb: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB aligned crops -> (N, D) float32 L2-normalised, in batches."""
        batch = self.settings.embed_batch_size
        parts = [self.recogniser.embed(crops_rgb[i : i + batch]) for i in range(0, len(crops_rgb), batch)]
        return np.concatenate(parts) if parts else np.zeros((0, self.embedding_dim), np.float32)

    def analyse(self, image: ImageSource | np.ndarray) -> list[Face]:
        """Every face with embedding, quality and aligned crop, most prominent first."""
        return self.analyse_many([image])[0]

    def analyse_many(self, images: Iterable[ImageSource | np.ndarray]) -> list[list[Face]]:
        """:meth:`analyse` for several images, embedding all their faces in shared batches."""
        per_image = []
        for image in images:
            rgb = self.load(image)
            faces = self.detect(rgb)
            crops = [align_face(rgb, f.landmarks, self.crop_size) for f in faces]
            per_image.append((faces, crops))
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
                        aligned=crop,
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
        faces = self.analyse(image)
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
