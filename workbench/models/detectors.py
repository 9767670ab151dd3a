"""Face detectors behind one interface: square BGR canvases in, boxes with 5 landmarks out.

A detector sees only fixed-size square canvases (``canvas_size`` pixels, 640 for both kinds
here). Fitting a real image onto canvases (letterboxing, tiling for small faces) is the engine's
job, so every detector gets the same treatment.

Output rows are ``(x1, y1, x2, y2, score, lx1, ly1, ..., lx5, ly5)`` in canvas pixels, landmarks
in ArcFace order (image-left eye first).
"""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

from ..errors import ModelPackError

DETECTION_COLUMNS = 15


class YuNetDetector:
    """OpenCV Zoo YuNet (2023mar) run on onnxruntime, decoded as OpenCV's FaceDetectorYN does.

    Input: BGR 0..255, no normalisation. Outputs per stride s in (8, 16, 32): cls and obj
    scores, box offsets (dx, dy, log w, log h) and 5 landmark offsets, all in units of s from
    the grid cell. The final score is sqrt(cls * obj), as in OpenCV.
    """

    canvas_size = 640
    #: OpenCV's demo uses 0.9; CCTV faces score lower. At 0.7 the compreface samples give no
    #: false detections in photos up to 1000 px and one or two in 30-megapixel photos.
    default_threshold = 0.7
    nms_iou = 0.3
    strides = (8, 16, 32)

    def __init__(self, session: ort.InferenceSession):
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

    def raw_detect(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        """The bare model call: (B, 3, 640, 640) float32 BGR -> named outputs."""
        if not self.batched and len(tensor) > 1:
            parts = [self.raw_detect(tensor[i : i + 1]) for i in range(len(tensor))]
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        values = self.session.run(self.output_names, {self.input_name: tensor})
        return dict(zip(self.output_names, values))

    def detect(self, canvases_bgr: np.ndarray, threshold: float) -> list[np.ndarray]:
        """(B, 640, 640, 3) uint8 BGR -> B arrays of shape (N, 15), after NMS."""
        tensor = cv2.dnn.blobFromImages(list(canvases_bgr))  # (B, 3, H, W) float32, same values
        out = self.raw_detect(tensor)
        results = []
        for b in range(len(canvases_bgr)):
            rows = [self._decode(out, b, s, threshold) for s in self.strides]
            results.append(nms(np.concatenate(rows), self.nms_iou))
        return results

    def _decode(self, out: dict[str, np.ndarray], b: int, stride: int, threshold: float) -> np.ndarray:
        cls = np.clip(out[f"cls_{stride}"][b, :, 0], 0, 1)
        obj = np.clip(out[f"obj_{stride}"][b, :, 0], 0, 1)
        score = np.sqrt(cls * obj)
        keep = score >= threshold
        if not keep.any():
            return np.zeros((0, DETECTION_COLUMNS), np.float32)
        grid = self._grids[stride][keep]
        box = out[f"bbox_{stride}"][b][keep]
        kps = out[f"kps_{stride}"][b][keep].reshape(-1, 5, 2)
        centre = (grid + box[:, :2]) * stride
        size = np.exp(box[:, 2:4]) * stride
        landmarks = (kps + grid[:, None, :]) * stride
        rows = np.concatenate(
            [centre - size / 2, centre + size / 2, score[keep, None], landmarks.reshape(-1, 10)], axis=1
        )
        return rows.astype(np.float32)


class InsightFaceDetector:
    """An InsightFace detector with 5 landmarks (SCRFD, RetinaFace) loaded by insightface.model_zoo.

    Preprocessing is InsightFace's own (RGB, (x - 127.5) / 128 for SCRFD); decoding and NMS too.
    """

    canvas_size = 640
    default_threshold = 0.5

    def __init__(self, model):
        if getattr(model, "taskname", None) != "detection" or not getattr(model, "use_kps", False):
            raise ModelPackError("detector model must be an InsightFace detector with 5 landmarks")
        self.model = model
        self.model.prepare(ctx_id=-1, input_size=(self.canvas_size, self.canvas_size))
        self.session = model.session

    def detect(self, canvases_bgr: np.ndarray, threshold: float) -> list[np.ndarray]:
        results = []
        for canvas in canvases_bgr:
            det, kps = self.model.detect(canvas, input_size=(self.canvas_size, self.canvas_size), det_thresh=threshold)
            if det is None or len(det) == 0:
                results.append(np.zeros((0, DETECTION_COLUMNS), np.float32))
                continue
            results.append(np.concatenate([det[:, :5], kps.reshape(-1, 10)], axis=1).astype(np.float32))
        return results


def nms(rows: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Non-maximum suppression (OpenCV's) on (N, >=5) rows (x1, y1, x2, y2, score, ...), best first."""
    if len(rows) <= 1:
        return rows
    boxes = np.stack([rows[:, 0], rows[:, 1], rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1]], axis=1)
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), rows[:, 4].tolist(), 0.0, iou_threshold)
    keep = np.asarray(keep, dtype=int).ravel()
    return rows[keep[np.argsort(-rows[keep, 4], kind="stable")]]
