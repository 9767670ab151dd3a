"""Core data types: one frozen dataclass per concept, field names carrying units and formats.

Conventions (see DESIGN.md):

* ``bbox_xyxy``: (x1, y1, x2, y2) in pixels of the image as loaded (EXIF orientation applied).
* ``landmarks``: 5x2 float32 pixels in ArcFace order: the eye, eye, nose tip, mouth corner, mouth
  corner, each pair in image order (left of the image first).
* ``embedding``: float32, L2-normalised, 1-D; its length depends on the model pack.
* Scores are cosine similarity in [-1, 1].
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .errors import ModelPackError


def _frozen_array(value, dtype, shape_hint: str, expected_shape=None) -> np.ndarray:
    array = np.array(value, dtype=dtype, copy=True)
    if expected_shape is not None and array.shape != expected_shape:
        raise ValueError(f"{shape_hint} must have shape {expected_shape}, got {array.shape}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class PackId:
    """Identity of a model pack: its name plus the sha256 of its recogniser file.

    Two embeddings are comparable only if their pack ids are equal.
    """

    name: str
    recogniser_sha256: str

    def __str__(self) -> str:
        return f"{self.name}@{self.recogniser_sha256[:12]}"

    @classmethod
    def parse(cls, text: str) -> "PackId":
        """Inverse of ``str()`` when the full hash was stored (``name@<64 hex>``)."""
        name, sep, digest = text.partition("@")
        if not sep or not name or len(digest) < 12:
            raise ModelPackError(f"pack id must look like 'name@sha256', got {text!r}")
        return cls(name, digest)


@dataclass(frozen=True)
class FaceQuality:
    """How useful one face image is for recognition.

    Attributes:
        inter_ocular_px: distance between the two eye landmarks, pixels of the source image.
        sharpness: variance of the Laplacian of the aligned 112x112 grey crop (unitless, >= 0).
        yaw_deg: left-right head turn estimated from the landmarks, degrees (0 = frontal).
        pitch_deg: up-down head tilt estimated from the landmarks, degrees (0 = frontal).
        score: overall quality in [0, 1]; see :func:`workbench.quality.overall_quality`.
    """

    inter_ocular_px: float
    sharpness: float
    yaw_deg: float
    pitch_deg: float
    score: float

    def as_dict(self) -> dict:
        return {k: round(float(v), 4) for k, v in dataclasses.asdict(self).items()}


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        bbox_xyxy: box (x1, y1, x2, y2), pixels.
        landmarks: (5, 2) float32 pixels, ArcFace order.
        detector_score: detector confidence in [0, 1].
        quality: quality record, or None when not computed.
        embedding: (D,) float32 L2-normalised, or None when not embedded.
        pack_id: the pack that produced the embedding.
        aligned: (112, 112, 3) uint8 RGB ArcFace-aligned crop, or None.
    """

    bbox_xyxy: tuple[float, float, float, float]
    landmarks: np.ndarray = field(compare=False, repr=False)
    detector_score: float
    quality: FaceQuality | None = None
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)
    pack_id: PackId | None = None
    aligned: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        box = tuple(float(v) for v in self.bbox_xyxy)
        if len(box) != 4 or box[2] < box[0] or box[3] < box[1]:
            raise ValueError(f"bbox_xyxy must be (x1, y1, x2, y2) with x2 >= x1, y2 >= y1, got {box}")
        object.__setattr__(self, "bbox_xyxy", box)
        object.__setattr__(
            self, "landmarks", _frozen_array(self.landmarks, np.float32, "landmarks", (5, 2))
        )
        if self.embedding is not None:
            embedding = _frozen_array(self.embedding, np.float32, "embedding")
            if embedding.ndim != 1:
                raise ValueError(f"embedding must be 1-D, got shape {embedding.shape}")
            norm = float(np.linalg.norm(embedding))
            if not 0.99 < norm < 1.01:
                raise ValueError(f"embedding must be L2-normalised, got norm {norm:.4f}")
            object.__setattr__(self, "embedding", embedding)
        if self.aligned is not None:
            object.__setattr__(self, "aligned", _frozen_array(self.aligned, np.uint8, "aligned"))

    @property
    def width(self) -> float:
        return self.bbox_xyxy[2] - self.bbox_xyxy[0]

    @property
    def height(self) -> float:
        return self.bbox_xyxy[3] - self.bbox_xyxy[1]

    def replace(self, **changes) -> "Face":
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """JSON-ready summary (no embedding, no pixels)."""
        return {
            "bbox_xyxy": [round(v, 1) for v in self.bbox_xyxy],
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "detector_score": round(float(self.detector_score), 4),
            "quality": self.quality.as_dict() if self.quality else None,
            "pack_id": str(self.pack_id) if self.pack_id else None,
        }
