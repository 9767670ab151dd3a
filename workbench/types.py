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


# ---------------------------------------------------------------------------------------------
# Gallery search (issue 3): candidate lists. Appended here so other types stay untouched.

import enum as _enum  # noqa: E402  (kept with the types that use it)


class SearchMode(_enum.Enum):
    """How a candidate list is cut, as in NIST FRTE 1:N.

    * ``INVESTIGATION``: a fixed-length list (``top`` entries) for human review; the threshold
      only sets each candidate's ``above_threshold`` flag.
    * ``IDENTIFICATION``: only candidates whose score reaches the threshold (at most ``top``).
    """

    INVESTIGATION = "investigation"
    IDENTIFICATION = "identification"

    @classmethod
    def parse(cls, value: "str | SearchMode") -> "SearchMode":
        if isinstance(value, cls):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            known = ", ".join(m.value for m in cls)
            raise ValueError(f"search mode must be one of {known}, got {value!r}") from None


@dataclass(frozen=True)
class Candidate:
    """One entry of a candidate list: a gallery subject proposed for human review.

    Attributes:
        rank: 1 = highest score.
        subject_id: custody reference of the subject.
        score: cosine similarity in [-1, 1]; with several probe faces, the max over them.
        image_id: the custody image whose face gave ``score``.
        face_id: the stored face that gave ``score``.
        above_threshold: score >= the operating threshold; None when no threshold is set.
        per_probe_scores: the subject's best score against each probe face, in probe order.
    """

    rank: int
    subject_id: str
    score: float
    image_id: int
    face_id: int
    above_threshold: bool | None
    per_probe_scores: tuple[float, ...] = ()

    def as_dict(self) -> dict:
        """JSON-ready: the keys of DESIGN.md first, then face id and per-probe scores."""
        return {
            "rank": self.rank,
            "subject_id": self.subject_id,
            "score": round(float(self.score), 4),
            "image_id": self.image_id,
            "above_threshold": self.above_threshold,
            "face_id": self.face_id,
            "per_probe_scores": [round(float(s), 4) for s in self.per_probe_scores],
        }


@dataclass(frozen=True)
class CandidateList:
    """The ranked result of searching one probe (one person: one face or several fused).

    Attributes:
        candidates: ranked entries, at most ``top``.
        pack_id: the pack of the gallery and of the probe.
        threshold: operating threshold (cosine) used for ``above_threshold``; None = none set.
        mode: investigation (fixed length) or identification (only above threshold).
        method: ``"exact"`` (numpy over every stored embedding) or ``"index"`` (Annoy proposes,
            exact cosine re-ranks, not-yet-indexed records searched exactly and merged).
        gallery_faces: faces searched (live records, removed ones excluded).
        probe_faces: how many probe faces were fused.
    """

    candidates: tuple[Candidate, ...]
    pack_id: PackId
    threshold: float | None
    mode: SearchMode
    method: str
    gallery_faces: int
    probe_faces: int

    def __len__(self) -> int:
        return len(self.candidates)

    def __iter__(self):
        return iter(self.candidates)

    def __getitem__(self, index: int) -> Candidate:
        return self.candidates[index]

    @property
    def subject_ids(self) -> list[str]:
        return [c.subject_id for c in self.candidates]

    def to_frame(self):
        """The list as a pandas DataFrame, one row per candidate, columns as in :class:`Candidate`."""
        import pandas as pd  # only callers that want a frame pay for pandas

        columns = [f.name for f in dataclasses.fields(Candidate)]
        return pd.DataFrame([[getattr(c, name) for name in columns] for c in self.candidates], columns=columns)

    def as_dict(self) -> dict:
        return {
            "candidates": [c.as_dict() for c in self.candidates],
            "pack_id": str(self.pack_id),
            "threshold": self.threshold,
            "mode": self.mode.value,
            "method": self.method,
            "gallery_faces": self.gallery_faces,
            "probe_faces": self.probe_faces,
        }


# ---------------------------------------------------------------------------------------------
# Footage (issue 4): faces found in video or stills, linked into tracks.


@dataclass(frozen=True)
class FootageFace:
    """One face found in one sampled frame of footage.

    Attributes:
        track_id: the track this face belongs to (1-based within its source).
        frame_index: position of the frame in presentation order (0-based; for a folder of
            stills, the position of the still in the sorted listing).
        timestamp_s: presentation time of the frame, seconds from the start of the footage.
        face: the face; its ``aligned`` crop is dropped to keep long footage in memory (see
            ``FootageResult.thumbnail`` to get pixels back on demand).
    """

    track_id: int
    frame_index: int
    timestamp_s: float
    face: Face

    @property
    def quality_score(self) -> float:
        return self.face.quality.score if self.face.quality else 0.0

    def as_dict(self) -> dict:
        return {
            "frame_index": self.frame_index,
            "timestamp_s": round(float(self.timestamp_s), 3),
            "bbox_xyxy": [round(v, 1) for v in self.face.bbox_xyxy],
            "quality": round(self.quality_score, 4),
        }


@dataclass(frozen=True)
class Track:
    """One person followed through footage: their faces in time order and the best shot.

    Attributes:
        track_id: 1-based, in order of first appearance (then left to right) within the source.
        source_path: the video file, still or folder of stills the track was found in.
        source_sha256: sha256 of that source (for a folder, of its listing; see footage.py).
        faces: the track's faces, strictly increasing in ``frame_index``.
        best_index: position in ``faces`` of the best shot (highest quality score, earliest
            on ties).
    """

    track_id: int
    source_path: str
    source_sha256: str
    faces: tuple[FootageFace, ...]
    best_index: int

    def __post_init__(self) -> None:
        faces = tuple(self.faces)
        if not faces:
            raise ValueError(f"track {self.track_id} has no faces")
        if not 0 <= self.best_index < len(faces):
            raise ValueError(f"best_index must be in [0, {len(faces)}), got {self.best_index}")
        frames = [f.frame_index for f in faces]
        if any(b <= a for a, b in zip(frames, frames[1:])):
            raise ValueError(f"track {self.track_id}: faces must be in increasing frame order, got {frames}")
        if any(f.track_id != self.track_id for f in faces):
            raise ValueError(f"track {self.track_id}: every face must carry track_id {self.track_id}")
        object.__setattr__(self, "faces", faces)

    @property
    def best(self) -> FootageFace:
        return self.faces[self.best_index]

    @property
    def start_s(self) -> float:
        return self.faces[0].timestamp_s

    @property
    def end_s(self) -> float:
        return self.faces[-1].timestamp_s

    @property
    def n_faces(self) -> int:
        return len(self.faces)

    @property
    def quality(self) -> float:
        """Quality score of the best shot, in [0, 1]."""
        return self.best.quality_score

    def as_dict(self) -> dict:
        """JSON-ready summary: times, size and best shot (no embeddings, no pixels)."""
        return {
            "track_id": self.track_id,
            "source": self.source_path,
            "sha256": self.source_sha256,
            "start_s": round(float(self.start_s), 3),
            "end_s": round(float(self.end_s), 3),
            "n_faces": self.n_faces,
            "quality": round(self.quality, 4),
            "best": self.best.as_dict(),
        }


@dataclass(frozen=True)
class Probe:
    """Faces of one person to search with: a face of a still, a face track, or several stills.

    Attributes:
        probe_id: unique within one search run (e.g. ``"cctv.jpg#face2"``, a track id).
        source: the file the faces came from (several joined by ``;``).
        faces: one or more faces with embeddings; their scores fuse (max) into one list.
        start_s: for video, time of the first face in seconds from the start; None for stills.
        end_s: for video, time of the last face; None for stills.
    """

    probe_id: str
    source: str
    faces: tuple[Face, ...]
    start_s: float | None = None
    end_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "faces", tuple(self.faces))
        if not self.faces:
            raise ValueError(f"probe {self.probe_id!r} holds no faces")

    @property
    def quality(self) -> float | None:
        """Best face quality score in [0, 1], or None when no face has a quality record."""
        scores = [f.quality.score for f in self.faces if f.quality is not None]
        return max(scores) if scores else None
