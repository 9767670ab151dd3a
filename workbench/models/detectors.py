"""Face detectors behind one interface: an RGB canvas in, boxes with 5 landmarks out.

A detector sees one canvas at a time: an RGB uint8 window of the (scaled) image, padded with
black at the bottom and right to the shape the model runs. YuNet's graph is fixed at 640x640;
SCRFD's takes any shape whose sides are multiples of its largest stride (32), so the engine may
hand it a whole scaled image as one canvas instead of overlapping 640x640 tiles. Fitting a real
image onto canvases (scales, tiles, merging) is the engine's job, so every detector gets the
same treatment; colour order, normalisation and padding are the detector's, written into an
input tensor reused from call to call.

Output rows are ``(x1, y1, x2, y2, score, lx1, ly1, ..., lx5, ly5)`` in canvas pixels, landmarks
in ArcFace order (image-left eye first).

Every detector counts its bare model calls (``model_calls``, ``model_pixels``,
``model_seconds``: the wall time inside ``session.run`` only), so the engine can report what it
ran and what its own work around the calls cost.
"""

from __future__ import annotations

import math
import threading
import time

import cv2
import numpy as np
import onnxruntime as ort

from ..errors import ModelPackError

DETECTION_COLUMNS = 15


class _ModelCallCounter:
    """Counts the bare ``session.run`` calls of a detector: calls, input pixels, seconds."""

    def __init__(self) -> None:
        self._tensors = _InputTensors()
        self.model_calls = 0
        self.model_pixels = 0
        self.model_seconds = 0.0

    def _run(self, session: ort.InferenceSession, output_names, feed: dict, pixels: int) -> list[np.ndarray]:
        start = time.perf_counter()
        values = session.run(output_names, feed)
        self.model_seconds += time.perf_counter() - start
        self.model_calls += 1
        self.model_pixels += pixels
        return values


class _InputTensors(threading.local):
    """Reusable (1, 3, H, W) float32 input tensors, one set per thread, a few shapes at a time.

    Filling a tensor that already exists costs a third of what ``cv2.dnn.blobFromImage`` does
    (which allocates 5 MB per 640x640 canvas and pays the page faults on each call) and needs no
    padded copy of the window: this was most of the engine's own time per canvas.
    """

    def __init__(self) -> None:
        self.by_shape: dict[tuple[int, int], np.ndarray] = {}
        #: per shape, the (rows, columns, black) of the last fill: its padding is still black
        self.padded: dict[tuple[int, int], tuple[int, int, float]] = {}

    def fill(self, window_rgb: np.ndarray, shape: tuple[int, int], channel_order: tuple[int, ...], mean: float, scale: float) -> np.ndarray:
        """(1, 3, H, W) float32 tensor of ``(window[..., c] - mean) * scale`` for c in ``channel_order``,
        the window at the top left of an (H, W) = ``shape`` canvas, black (0 before normalising) elsewhere.

        The tensor is reused by the next call on this thread with the same shape.
        """
        height, width = shape
        rows, columns = window_rgb.shape[:2]
        if rows > height or columns > width:
            raise ValueError(f"a {columns}x{rows} window does not fit a {width}x{height} canvas")
        tensor = self.by_shape.get(shape)
        if tensor is None:
            if len(self.by_shape) >= 4:  # footage and tiles repeat a few shapes; photos of many sizes must not pile up
                self.by_shape.clear()
                self.padded.clear()
            tensor = self.by_shape[shape] = np.empty((1, 3, height, width), np.float32)
        black = -mean * scale
        # The padding of the last window this size is still black: not written again (a 1080p
        # frame on a 640x640 canvas is 44% padding).
        pad = self.padded.get(shape) != (rows, columns, black)
        self.padded[shape] = (rows, columns, black)
        # One contiguous copy of the tile, split by OpenCV, then each plane cast into the tensor:
        # half the time of casting each channel straight from the interleaved tile (0.28 against
        # 0.58 ms per 640x640 tile here).
        planes = cv2.split(np.ascontiguousarray(window_rgb))
        for k, channel in enumerate(channel_order):
            target = tensor[0, k]
            inside = target[:rows, :columns]
            np.copyto(inside, planes[channel], casting="unsafe")
            if mean != 0.0 or scale != 1.0:
                inside -= mean
                inside *= scale
            if pad:
                target[rows:, :] = black
                target[:rows, columns:] = black
        return tensor


def _round_up(length: int, stride: int) -> int:
    """The smallest positive multiple of ``stride`` >= ``length``."""
    return max(stride, math.ceil(length / stride) * stride)


class YuNetDetector(_ModelCallCounter):
    """OpenCV Zoo YuNet (2023mar) run on onnxruntime, decoded as OpenCV's FaceDetectorYN does.

    Input: BGR 0..255, no normalisation, fixed 640x640. Outputs per stride s in (8, 16, 32): cls
    and obj scores, box offsets (dx, dy, log w, log h) and 5 landmark offsets, all in units of s
    from the grid cell. The final score is sqrt(cls * obj), as in OpenCV.
    """

    canvas_size = 640
    #: the graph's input is fixed at canvas_size x canvas_size.
    dynamic_input = False
    stride = 32
    #: smallest face (detector box width, canvas px) YuNet finds reliably. 173 real faces (t1.jpg,
    #: the astronaut, 120 ISS portraits, fr_examples, iss_onboard, compreface_samples) pasted onto
    #: 640 canvases at sub-stride offsets: of the 170 it finds at 40 px, it finds 0.994 at 24-28 px,
    #: 0.988 at 18-22, 0.971 at 16, 0.906 at 12, 0.700 at 10, 0.153 at 8, and all from 34 px.
    #: Turned heads need the most: t1.jpg's two left faces score under the 0.7 threshold at 24-28
    #: px on some grid offsets, over it from 30. 26 px keeps the 0.994 and finds those two when
    #: they are 20 px wide in the image. ``.venv/bin/python bench/bench_min_face.py`` (2026-12-02).
    reliable_face_px = 26
    #: OpenCV's demo uses 0.9; CCTV faces score lower. At 0.7 the compreface samples give no
    #: false detections in photos up to 1000 px and one or two in 30-megapixel photos.
    default_threshold = 0.7
    nms_iou = 0.3
    strides = (8, 16, 32)

    def __init__(self, session: ort.InferenceSession):
        super().__init__()
        self.session = session
        self.input_name = session.get_inputs()[0].name
        shape = session.get_inputs()[0].shape
        if shape[2:] != [self.canvas_size, self.canvas_size]:
            raise ModelPackError(f"YuNet input must be 640x640, got {shape}")
        names = {o.name for o in session.get_outputs()}
        expected = {f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in self.strides}
        if not expected <= names:
            raise ModelPackError(f"not a YuNet 2023mar model: outputs {sorted(names)}")
        self.output_names = sorted(expected)
        self.batched = not isinstance(shape[0], int)
        self._grids = {s: self._grid(s) for s in self.strides}

    def _grid(self, stride: int) -> np.ndarray:
        cells = self.canvas_size // stride
        rows, cols = np.mgrid[0:cells, 0:cells]
        return np.stack([cols.ravel(), rows.ravel()], axis=1).astype(np.float32)

    def canvas_shape(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) the model runs for a window of this size: always 640x640."""
        return self.canvas_size, self.canvas_size

    def raw_detect(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        """The bare model call: (B, 3, 640, 640) float32 BGR -> named outputs."""
        if not self.batched and len(tensor) > 1:
            parts = [self.raw_detect(tensor[i : i + 1]) for i in range(len(tensor))]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        values = self._run(self.session, self.output_names, {self.input_name: tensor}, tensor.shape[0] * tensor.shape[2] * tensor.shape[3])
        return dict(zip(self.output_names, values))

    def detect(self, window_rgb: np.ndarray, threshold: float, canvas_shape: tuple[int, int] | None = None) -> np.ndarray:
        """(h, w, 3) uint8 RGB window, h and w <= 640 -> (N, 15) rows in window pixels, after NMS.

        ``canvas_shape`` is accepted for symmetry with dynamic detectors; YuNet always runs 640x640.
        """
        size = (self.canvas_size, self.canvas_size)
        tensor = self._tensors.fill(window_rgb, size, (2, 1, 0), 0.0, 1.0)  # (1, 3, 640, 640) float32 BGR 0..255
        out = self.raw_detect(tensor)
        rows = [self._decode(out, s, threshold) for s in self.strides]
        return nms(np.concatenate(rows), self.nms_iou)

    def _decode(self, out: dict[str, np.ndarray], stride: int, threshold: float) -> np.ndarray:
        cls = out[f"cls_{stride}"][0, :, 0]
        obj = out[f"obj_{stride}"][0, :, 0]
        # sqrt(cls * obj) >= t  <=>  cls * obj >= t^2. The scores are sigmoids in [0, 1]; clipping
        # (as OpenCV does) only the few kept ones saves two passes over 8,400 anchors per stride.
        keep = np.flatnonzero(cls * obj >= threshold * threshold)
        if len(keep) == 0:
            return np.zeros((0, DETECTION_COLUMNS), np.float32)
        product = np.clip(cls[keep], 0, 1) * np.clip(obj[keep], 0, 1)
        keep = keep[product >= threshold * threshold]
        product = product[product >= threshold * threshold]
        if len(keep) == 0:
            return np.zeros((0, DETECTION_COLUMNS), np.float32)
        grid = self._grids[stride][keep]
        box = out[f"bbox_{stride}"][0][keep]
        kps = out[f"kps_{stride}"][0][keep].reshape(-1, 5, 2)
        centre = (grid + box[:, :2]) * stride
        size = np.exp(box[:, 2:4]) * stride
        landmarks = (kps + grid[:, None, :]) * stride
        rows = np.concatenate([centre - size / 2, centre + size / 2, np.sqrt(product)[:, None], landmarks.reshape(-1, 10)], axis=1)
        return rows.astype(np.float32)


class InsightFaceDetector(_ModelCallCounter):
    """An InsightFace detector with 5 landmarks (SCRFD, RetinaFace) as insightface.model_zoo reads it.

    The model object gives the layout (strides, anchors per cell, output order, pixel mean and
    std); this class runs it on its own onnxruntime session (so the engine's thread setting
    applies) and decodes as InsightFace's ``SCRFD.forward`` does: box and landmark distances from
    the anchor centres, in units of the stride. Dynamic models (SCRFD-500M) run any canvas
    whose sides are multiples of 32; fixed ones only their own size.
    """

    canvas_size = 640
    stride = 32
    #: smallest face (detector box width, canvas px) SCRFD-500M finds reliably: of 169 real faces
    #: pasted as for YuNet (all found at 40 px) it finds 0.994 at 16-24 px, 0.982 at 14, 0.947 at
    #: 12, 0.385 at 10, none at 8, and all from 26 px (turned heads need up to 26-32 px). Other
    #: InsightFace detectors are assumed alike (SCRFD's smallest anchors are 16 px).
    #: ``.venv/bin/python bench/bench_min_face.py`` (2026-12-02).
    reliable_face_px = 16
    default_threshold = 0.5

    def __init__(self, model, session: ort.InferenceSession):
        super().__init__()
        if getattr(model, "taskname", None) != "detection" or not getattr(model, "use_kps", False):
            raise ModelPackError("detector model must be an InsightFace detector with 5 landmarks")
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.output_names = [o.name for o in session.get_outputs()]
        shape = session.get_inputs()[0].shape
        self.dynamic_input = not (isinstance(shape[2], int) and isinstance(shape[3], int))
        self.fixed_shape = None if self.dynamic_input else (int(shape[2]), int(shape[3]))
        self.feature_strides = list(model._feat_stride_fpn)
        self.anchors_per_cell = int(model._num_anchors)
        self.levels = int(model.fmc)
        self.mean = float(model.input_mean)
        self.scale = 1.0 / float(model.input_std)
        self.nms_iou = float(getattr(model, "nms_thresh", 0.4))
        self._centres: dict[tuple[int, int, int], np.ndarray] = {}

    def canvas_shape(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) the model runs for a window of this size: the next multiples of 32
        for a dynamic model (at least 32), the model's own size for a fixed one."""
        if self.fixed_shape:
            return self.fixed_shape
        return _round_up(height, self.stride), _round_up(width, self.stride)

    def raw_detect(self, tensor: np.ndarray) -> list[np.ndarray]:
        """The bare model call: (1, 3, H, W) float32 normalised RGB -> the model's outputs in order."""
        return self._run(self.session, self.output_names, {self.input_name: tensor}, tensor.shape[2] * tensor.shape[3])

    def detect(self, window_rgb: np.ndarray, threshold: float, canvas_shape: tuple[int, int] | None = None) -> np.ndarray:
        """(h, w, 3) uint8 RGB window -> (N, 15) rows in window pixels, after NMS.

        The window is padded to ``canvas_shape`` (default :meth:`canvas_shape`), which must be a
        shape the model accepts.
        """
        height, width = canvas_shape or self.canvas_shape(*window_rgb.shape[:2])
        tensor = self._tensors.fill(window_rgb, (height, width), (0, 1, 2), self.mean, self.scale)  # RGB, (x - mean) / std
        outputs = self.raw_detect(tensor)
        rows = [self._decode(outputs, level, height, width, threshold) for level in range(self.levels)]
        return nms(np.concatenate(rows), self.nms_iou)

    def _anchor_centres(self, height: int, width: int, stride: int) -> np.ndarray:
        key = (height, width, stride)
        centres = self._centres.get(key)
        if centres is None:
            cells_y, cells_x = height // stride, width // stride
            grid = np.stack(np.mgrid[:cells_y, :cells_x][::-1], axis=-1).astype(np.float32).reshape(-1, 2) * stride
            centres = np.repeat(grid, self.anchors_per_cell, axis=0)
            if len(self._centres) < 64:  # footage and tiles repeat a few shapes; bound the cache anyway
                self._centres[key] = centres
        return centres

    def _decode(self, outputs: list[np.ndarray], level: int, height: int, width: int, threshold: float) -> np.ndarray:
        stride = self.feature_strides[level]

        def output(kind: int) -> np.ndarray:
            value = outputs[level + kind * self.levels]
            return value[0] if value.ndim == 3 else value

        scores = output(0).reshape(-1)
        keep = np.flatnonzero(scores >= threshold)
        if len(keep) == 0:
            return np.zeros((0, DETECTION_COLUMNS), np.float32)
        centres = self._anchor_centres(height, width, stride)[keep]
        distances = output(1)[keep] * stride
        kps = output(2)[keep].reshape(-1, 5, 2) * stride + centres[:, None, :]
        rows = np.concatenate([centres - distances[:, :2], centres + distances[:, 2:4], scores[keep, None], kps.reshape(-1, 10)], axis=1)
        return rows.astype(np.float32)


def nms(rows: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Non-maximum suppression (OpenCV's) on (N, >=5) rows (x1, y1, x2, y2, score, ...), best first."""
    if len(rows) <= 1:
        return rows
    boxes = np.stack([rows[:, 0], rows[:, 1], rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1]], axis=1)
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), rows[:, 4].tolist(), 0.0, iou_threshold)
    keep = np.asarray(keep, dtype=int).ravel()
    return rows[keep[np.argsort(-rows[keep, 4], kind="stable")]]
