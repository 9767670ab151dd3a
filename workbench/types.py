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
import enum as _enum
from dataclasses import dataclass, field

import numpy as np

from .errors import ChoiceError, ModelPackError


def _frozen_array(value, dtype, shape_hint: str, expected_shape=None) -> np.ndarray:
    array = np.array(value, dtype=dtype, copy=True)
    if expected_shape is not None and array.shape != expected_shape:
        raise ValueError(f"{shape_hint} must have shape {expected_shape}, got {array.shape}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class PackId:
    """Identity of a model pack: its name plus the sha256 of its recogniser file.

    Two embeddings are comparable only if their pack ids are equal. The one string form is
    ``name@<64 hex>`` (``str()``, stored in the database, parsed by :meth:`parse`); ``short``
    abbreviates the hash for people to read.
    """

    name: str
    recogniser_sha256: str

    def __post_init__(self) -> None:
        digest = str(self.recogniser_sha256).lower()
        if not self.name or "@" in self.name or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ModelPackError(f"pack id needs a name without '@' and a 64-hex sha256, got {self.name!r} and {self.recogniser_sha256!r}")
        object.__setattr__(self, "recogniser_sha256", digest)

    def __str__(self) -> str:
        return f"{self.name}@{self.recogniser_sha256}"

    @property
    def short(self) -> str:
        """``name@<first 12 hex>``, for display only (never parsed)."""
        return f"{self.name}@{self.recogniser_sha256[:12]}"

    @classmethod
    def parse(cls, text: str) -> PackId:
        """The inverse of ``str()``: ``name@<64 hex>``."""
        name, sep, digest = str(text).partition("@")
        if not sep:
            raise ModelPackError(f"pack id must look like 'name@<sha256>', got {text!r}")
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


@dataclass(frozen=True, eq=False)
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

    def replace(self, **changes) -> Face:
        return dataclasses.replace(self, **changes)

    def _key(self) -> tuple:
        emb = None if self.embedding is None else self.embedding.tobytes()
        return (self.bbox_xyxy, self.landmarks.tobytes(), float(self.detector_score), self.quality, emb, self.pack_id)

    def __eq__(self, other) -> bool:
        """Equal when box, landmarks, score, quality, pack and embedding are all equal: two faces
        with different embeddings are different faces (the aligned crop is not compared)."""
        if not isinstance(other, Face):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

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


class SearchMode(_enum.Enum):
    """How a candidate list is cut, as in NIST FRTE 1:N.

    * ``INVESTIGATION``: a fixed-length list (``top`` entries) for human review; the threshold
      only sets each candidate's ``above_threshold`` flag.
    * ``IDENTIFICATION``: only candidates whose score reaches the threshold (at most ``top``).
    """

    INVESTIGATION = "investigation"
    IDENTIFICATION = "identification"

    @classmethod
    def parse(cls, value: str | SearchMode) -> SearchMode:
        return parse_choice(cls, value, "search mode")


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
        per_probe_scores: the subject's best score against each face of the probe, in the
            probe's face order (one value for a single face).
        probe_id: the probe whose list this candidate is on (None for a bare face search).
        fmr_at_score: the estimated false match rate of a non-mated face scoring this high, from
            the gallery's calibration (:mod:`workbench.thresholds`); 0.0 when no non-mated
            comparison of the calibration scored this high (below 1 in its size); None when no
            calibration was used.

    ``image_id`` and ``face_id`` are None only in a recorded list whose custody record was
    removed since (the list is kept as shown; the image is gone).
    """

    rank: int
    subject_id: str
    score: float
    image_id: int | None
    face_id: int | None
    above_threshold: bool | None
    per_probe_scores: tuple[float, ...] = ()
    probe_id: str | None = None
    fmr_at_score: float | None = None

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
            "probe_id": self.probe_id,
            "fmr_at_score": None if self.fmr_at_score is None else float(f"{self.fmr_at_score:.4g}"),
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
    """Faces of one person to search with, and the evidence of where they came from.

    Attributes:
        probe_id: unique within one search run (``"cctv.jpg#face2"``, ``"clip.mp4#track3"``,
            ``"clip.mp4#manual@12.40s"``).
        source: the file the faces came from (several joined by ``;``).
        faces: one or more faces with embeddings; their scores fuse (max) into one list.
        start_s, end_s: for video, times of the first and last face in seconds from the start;
            None for stills.
        source_sha256: sha256 of the source file (several joined by ``;``).
        frame_index, timestamp_s: the frame of the face shown (the best shot); None for stills.
        bbox_xyxy: box of the face shown, pixels of that frame or still.
        crop_png: the crop shown to reviewers, PNG bytes (RGB), or None.
        manual: True when a person drew the box (no detector found it).
        quality: quality score in [0, 1] of the best face; computed from the faces when not given.
    """

    probe_id: str
    source: str
    faces: tuple[Face, ...]
    start_s: float | None = None
    end_s: float | None = None
    source_sha256: str = ""
    frame_index: int | None = None
    timestamp_s: float | None = None
    bbox_xyxy: tuple[float, float, float, float] | None = None
    crop_png: bytes | None = field(default=None, compare=False, repr=False)
    manual: bool = False
    quality: float | None = None
    #: its crop and embeddings were deleted under the retention rule (the evidence fields stay).
    purged: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "faces", tuple(self.faces))
        if not self.faces and not self.purged:
            raise ValueError(f"probe {self.probe_id!r} holds no faces")
        if self.quality is None:
            scores = [f.quality.score for f in self.faces if f.quality is not None]
            object.__setattr__(self, "quality", max(scores) if scores else None)
        if self.bbox_xyxy is not None:
            object.__setattr__(self, "bbox_xyxy", tuple(round(float(v), 1) for v in self.bbox_xyxy))

    @property
    def n_faces(self) -> int:
        return len(self.faces)

    def replace(self, **changes) -> Probe:
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        """JSON-ready evidence (no embeddings, no pixels)."""
        return {
            "probe_id": self.probe_id,
            "source": self.source,
            "source_sha256": self.source_sha256,
            "frame_index": self.frame_index,
            "timestamp_s": self.timestamp_s,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "bbox_xyxy": list(self.bbox_xyxy) if self.bbox_xyxy else None,
            "quality": None if self.quality is None else round(float(self.quality), 4),
            "faces": self.n_faces,
            "manual": self.manual,
            "purged": self.purged,
        }


# ---------------------------------------------------------------------------------------------
# Closed choices of cases and review, and the one helper that parses any of them.


def parse_choice(enum_cls: type[_enum.Enum], value, what: str):
    """``value`` as a member of ``enum_cls``: a member, its value, or its name in any case with
    ``_``, ``-`` or spaces. An unknown value raises :class:`~workbench.errors.ChoiceError`
    naming ``what`` and the known values; nothing falls back silently."""
    if isinstance(value, enum_cls):
        return value
    text = " ".join(str(value).strip().lower().replace("_", " ").replace("-", " ").split())
    for member in enum_cls:
        if text in (str(member.value).lower(), member.name.lower().replace("_", " ")):
            return member
    known = ", ".join(repr(m.value) for m in enum_cls)
    raise ChoiceError(f"{what} must be one of {known}, got {value!r}")


class _Choice(_enum.Enum):
    """An Enum with ``parse`` (see :func:`parse_choice`)."""

    @classmethod
    def parse(cls, value):
        return parse_choice(cls, value, cls._what())

    @classmethod
    def _what(cls) -> str:
        return cls.__name__.lower()


class CaseStatus(_Choice):
    """Where a case stands: open cases take searches; closed ones take decisions; archived none."""

    OPEN = "open"
    CLOSED = "closed"
    ARCHIVED = "archived"

    @classmethod
    def _what(cls) -> str:
        return "case status"


class Verdict(_Choice):
    """A first reviewer's view of one candidate."""

    POSSIBLE_MATCH = "possible match"
    NO_MATCH = "no match"
    INCONCLUSIVE = "inconclusive"


class Agreement(_Choice):
    """A second reviewer's view of the first decision."""

    CONFIRM = "confirm"
    DISAGREE = "disagree"


class Stage(_Choice):
    """Which of the two people of the two-person rule made a decision."""

    FIRST = "first"
    SECOND = "second"


class Role(_Choice):
    """What a person may do in a workspace (a person may hold several roles).

    * analyst: cases, footage, searches, first verdicts;
    * reviewer: second verdicts, case reports;
    * technical: enrolment, index rebuilds, evaluation, thresholds, settings;
    * administrator: users and roles, model packs, removals of custody records, retention;
    * auditor: reads the audit log and case reports, changes nothing.
    """

    ANALYST = "analyst"
    REVIEWER = "reviewer"
    TECHNICAL = "technical"
    ADMINISTRATOR = "administrator"
    AUDITOR = "auditor"


class ReviewStatus(_Choice):
    """Where the review of one candidate stands (``superseded`` only for decisions replaced later)."""

    PENDING = "pending"
    AGREED = "agreed"
    DISPUTED = "disputed"

    @classmethod
    def _what(cls) -> str:
        return "review status"


@dataclass(frozen=True)
class Case:
    """One investigation: every search runs inside an open case.

    Attributes:
        reference: the force's case reference (unique in the workspace).
        offence: the offence under investigation.
        purpose: why searching faces is necessary (stated by the analyst; required).
        officer: the officer in charge.
        status: open, closed or archived.
        created_utc, updated_utc: ISO 8601 UTC times.
        created_by: the user who opened the case.
    """

    reference: str
    offence: str
    purpose: str
    officer: str
    status: CaseStatus
    created_utc: str
    created_by: str
    updated_utc: str

    def as_dict(self) -> dict:
        return {
            "reference": self.reference,
            "offence": self.offence,
            "purpose": self.purpose,
            "officer": self.officer,
            "status": self.status.value,
            "created_utc": self.created_utc,
            "created_by": self.created_by,
            "updated_utc": self.updated_utc,
        }


@dataclass(frozen=True)
class SearchRun:
    """One recorded search: settings, probes (best first) and the candidate lists exactly as shown.

    Attributes:
        search_id: the workspace's number for the search.
        case_ref: the case it ran in.
        time_utc: ISO 8601 UTC time; user: who ran it.
        pack_id: the model pack of the probes and the gallery.
        gallery_version: the index build and its checksum, and the live record counts.
        top, threshold, mode, method: the list length asked, the operating threshold (cosine, or
            None), investigation/identification, and ``"exact"`` or ``"index"``.
        replay_of: the search this one replayed, or None.
        probes: the probes searched, in the order shown, with their evidence and embeddings.
        candidates: every probe's list; each candidate names its probe.
        threshold_version: the pack's operating threshold version in force when it ran (see
            :mod:`workbench.thresholds`), or None when none was set.
        calibration: the score calibration behind each candidate's ``fmr_at_score`` (id, pack,
            time, pairs, faces, subjects, exhaustive), or None.
        notes: what the search says about its threshold (no version set for the pack...).
        warnings: what a reader must not miss (searched below the set operating point).
    """

    search_id: int
    case_ref: str
    time_utc: str
    user: str
    pack_id: PackId
    gallery_version: dict
    top: int
    threshold: float | None
    mode: SearchMode
    method: str
    replay_of: int | None
    probes: tuple[Probe, ...]
    candidates: tuple[Candidate, ...]
    threshold_version: int | None = None
    calibration: dict | None = None
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def candidates_of(self, probe_id: str) -> list[Candidate]:
        return [c for c in self.candidates if c.probe_id == probe_id]

    def probe(self, probe_id: str) -> Probe:
        for probe in self.probes:
            if probe.probe_id == probe_id:
                return probe
        raise KeyError(f"search {self.search_id} has no probe {probe_id!r}")

    def to_frame(self):
        """Every candidate of every probe as a pandas DataFrame, one row each, in the order shown."""
        import pandas as pd

        columns = ["probe_id", "rank", "subject_id", "score", "above_threshold", "fmr_at_score", "image_id", "face_id"]
        return pd.DataFrame([[getattr(c, name) for name in columns] for c in self.candidates], columns=columns)

    def as_dict(self) -> dict:
        """The ``search --json`` shape of DESIGN.md plus the recorded settings."""
        probes = [{**p.as_dict(), "candidates": [c.as_dict() for c in self.candidates_of(p.probe_id)]} for p in self.probes]
        return {
            "search_id": self.search_id,
            "case": self.case_ref,
            "time_utc": self.time_utc,
            "user": self.user,
            "pack_id": str(self.pack_id),
            "gallery_version": self.gallery_version,
            "top": self.top,
            "threshold": self.threshold,
            "mode": self.mode.value,
            "method": self.method,
            "gallery_faces": self.gallery_version.get("live_faces"),
            "replay_of": self.replay_of,
            "threshold_version": self.threshold_version,
            "calibration": self.calibration,
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "candidates": probes[0]["candidates"] if probes else [],
            "probes": probes,
        }


@dataclass(frozen=True)
class Decision:
    """One reviewer's decision on one candidate of a recorded search (never edited; a change
    supersedes it).

    Attributes:
        stage: first (a verdict) or second (confirm or disagree with the current first).
        verdict: the first reviewer's verdict (None for a second decision).
        agreement: the second reviewer's view (None for a first decision).
        supersedes: the decision of the same stage this one replaces, or None.
        reviews: for a second decision, the first decision it reviewed.
    """

    decision_id: int
    search_id: int
    probe_id: str
    subject_id: str
    stage: Stage
    reviewer: str
    verdict: Verdict | None
    agreement: Agreement | None
    reason: str
    time_utc: str
    supersedes: int | None
    reviews: int | None

    def as_dict(self) -> dict:
        return {
            "decision_id": self.decision_id,
            "search_id": self.search_id,
            "probe_id": self.probe_id,
            "subject_id": self.subject_id,
            "stage": self.stage.value,
            "reviewer": self.reviewer,
            "verdict": self.verdict.value if self.verdict else None,
            "agreement": self.agreement.value if self.agreement else None,
            "reason": self.reason,
            "time_utc": self.time_utc,
            "supersedes": self.supersedes,
            "reviews": self.reviews,
        }


@dataclass(frozen=True)
class CandidateReview:
    """Where the review of one candidate stands: its current decisions and the status."""

    search_id: int
    probe_id: str
    rank: int
    subject_id: str
    score: float
    first: Decision | None
    second: Decision | None
    status: ReviewStatus

    def as_dict(self) -> dict:
        return {
            "search_id": self.search_id,
            "probe_id": self.probe_id,
            "rank": self.rank,
            "subject_id": self.subject_id,
            "score": round(self.score, 4),
            "first": self.first.as_dict() if self.first else None,
            "second": self.second.as_dict() if self.second else None,
            "status": self.status.value,
        }
