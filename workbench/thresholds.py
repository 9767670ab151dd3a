"""Operating thresholds, versioned per model pack, and what a score means on this gallery.

Two things technical staff and analysts need beside a cosine score:

**Threshold versions.** An operating threshold is a decision: technical staff set it from
measured evidence (``workbench threshold recommend`` on labelled images like their own), with
a reason, and the workspace keeps every version (who, when, why, the sha256 of the evaluation
file it came from, the pack). Versions are never edited or deleted; a new one supersedes the
last for its pack. Every recorded search stores the version in force (or None), and:

* a search whose threshold is lower than the set one carries a **warning** in its result, the
  command line, the dashboards and the case report: more candidates are marked above the
  threshold than the unit decided;
* a search with a pack that has no set version carries a **note** saying so (investigation
  mode works without one; identification mode still cuts at the pack's default, unchecked on
  the unit's data).

Which threshold a search uses: the one given, else the set version for the pack, else the
``threshold`` setting, else the pack's default (:func:`operating_point`).

**Calibration.** A cosine of 0.43 means nothing to an analyst. :func:`calibrate` scores faces
of *different* subjects in the gallery against each other (every pair for a small gallery;
for a large one, random blocks of faces by matrix products, up to ``max_pairs``, 2 million by
default: about a second) and keeps the highest scores exactly plus the quantiles of the rest.
Then the estimated false match rate at a score, :meth:`Calibration.fmr_at`, is the share of
those non-mated comparisons scoring at least that much, and :func:`fmr_phrase` says it in
words: "about 1 in 20,000 unrelated faces score this high (calibrated on 2,000,000 comparisons,
2025-03-01)". Where no non-mated comparison scored that high the phrase says "fewer than 1 in
N" and that there are too few comparisons to say more. Biases to state wherever it is shown:

* a person enrolled twice under two subject ids makes their own pairs count as non-mated, so
  the estimated rates at high scores are too high;
* custody photos are not CCTV: probe faces of poor quality score lower against everyone, so the
  gallery-on-gallery rate describes good-quality comparisons.

A search recalibrates first when the gallery changed since the last calibration (any change
for an exhaustive one; more than 5% of the faces for a sampled one); each calibration is
stored (pack, size, date, quantiles) and audited.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import audit
from .db import utc_now
from .errors import WorkbenchError
from .fileio import sha256_file
from .types import CandidateList, PackId, SearchMode

if TYPE_CHECKING:
    from .gallery.store import Gallery

#: non-mated comparisons scored at most by one calibration.
MAX_PAIRS = 2_000_000
#: faces per side of one sampled block (a block is at most this squared comparisons).
BLOCK_FACES = 1024
#: the highest scores a calibration keeps exactly (the tail that matters for candidates).
TOP_KEPT = 10_000
#: quantile levels kept for the body of the distribution.
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 1001)
#: a sampled calibration is redone when the gallery's face count moved by more than this share.
STALE_SHARE = 0.05
#: below this many non-mated comparisons at or above a score, the phrase says how few there are.
FEW_COMPARISONS = 10

DUPLICATES_CAVEAT = (
    "The estimate treats faces enrolled under different subject ids as different people: a person enrolled twice under two "
    "ids makes their own pairs count as unrelated, so the rates at high scores are overstated. It is measured on custody "
    "photos against custody photos; poor-quality probe faces score lower against everyone."
)


# ---------------------------------------------------------------------------------------------
# Threshold versions


@dataclass(frozen=True)
class ThresholdVersion:
    """One operating threshold set for a pack (never edited; a later version supersedes it).

    Attributes:
        version: the workspace's number for it (increasing across packs).
        pack_id: ``name@sha256`` of the pack it applies to.
        threshold: cosine in [-1, 1].
        reason: why it was set (required).
        set_by, time_utc: who set it and when (ISO 8601 UTC).
        previous: the threshold of the pack's version before it, or None.
        evaluation_path, evaluation_sha256: the evaluation file it came from (or None).
        evaluation: figures read from that file when it is the JSON of ``workbench evaluate`` or
            ``threshold recommend`` (target, threshold, expected FNMR...), else None.
    """

    version: int
    pack_id: str
    threshold: float
    reason: str
    set_by: str
    time_utc: str
    previous: float | None = None
    evaluation_path: str | None = None
    evaluation_sha256: str | None = None
    evaluation: dict | None = field(default=None, compare=False)

    @property
    def pack_short(self) -> str:
        try:
            return PackId.parse(self.pack_id).short
        except WorkbenchError:
            return self.pack_id

    def as_dict(self) -> dict:
        return {
            "version": self.version,
            "pack_id": self.pack_id,
            "threshold": self.threshold,
            "reason": self.reason,
            "set_by": self.set_by,
            "time_utc": self.time_utc,
            "previous": self.previous,
            "evaluation_path": self.evaluation_path,
            "evaluation_sha256": self.evaluation_sha256,
            "evaluation": self.evaluation,
        }


#: figures copied from an evaluation JSON into a threshold version.
_EVALUATION_KEYS = (
    "kind", "pack_id", "target_fmr", "target_fpir", "threshold", "threshold_observed", "threshold_interval", "expected_fnmr",
    "expected_fnir", "fnmr_interval", "reason", "accuracy", "auc", "eer", "pairs", "n_mated", "n_nonmated", "rank1",
    "bootstrap", "aligned",
)  # fmt: skip


def _read_evaluation(path: Path, pack_id: str) -> tuple[str, dict | None]:
    """The evaluation file's sha256 and, for a JSON document, the figures worth keeping.

    Raises:
        WorkbenchError: no such file, or a JSON evaluation of another pack (not evidence for this one).
    """
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such evaluation file (give the JSON of `workbench threshold recommend --json`)")
    digest = sha256_file(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, OSError):
        return digest, None  # any file may be the evidence (a PDF of a study): its hash is kept
    if not isinstance(document, dict):
        return digest, None
    other = document.get("pack_id")
    if other and str(other) != pack_id:
        raise WorkbenchError(
            f"{path}: this evaluation measured pack {other}, but the threshold is for pack {pack_id}; "
            "an evaluation of another pack is no evidence for this one"
        )
    return digest, {key: document[key] for key in _EVALUATION_KEYS if key in document}


def _version(row) -> ThresholdVersion:
    return ThresholdVersion(
        version=int(row["version"]),
        pack_id=row["pack_id"],
        threshold=float(row["threshold"]),
        reason=row["reason"],
        set_by=row["set_by"],
        time_utc=row["time_utc"],
        previous=row["previous"],
        evaluation_path=row["evaluation_path"],
        evaluation_sha256=row["evaluation_sha256"],
        evaluation=json.loads(row["evaluation_json"]) if row["evaluation_json"] else None,
    )


def current_threshold(conn: sqlite3.Connection, pack_id: PackId | str) -> ThresholdVersion | None:
    """The version in force for a pack (its latest), or None when none was ever set."""
    row = conn.execute("SELECT * FROM threshold_versions WHERE pack_id = ? ORDER BY version DESC LIMIT 1", (str(pack_id),)).fetchone()
    return _version(row) if row else None


def threshold_version(conn: sqlite3.Connection, version: int) -> ThresholdVersion | None:
    row = conn.execute("SELECT * FROM threshold_versions WHERE version = ?", (int(version),)).fetchone()
    return _version(row) if row else None


def threshold_history(conn: sqlite3.Connection, pack_id: PackId | str | None = None) -> list[ThresholdVersion]:
    """Every version (of one pack, or of all), oldest first."""
    if pack_id is None:
        rows = conn.execute("SELECT * FROM threshold_versions ORDER BY version")
    else:
        rows = conn.execute("SELECT * FROM threshold_versions WHERE pack_id = ? ORDER BY version", (str(pack_id),))
    return [_version(r) for r in rows]


def set_threshold(
    conn: sqlite3.Connection,
    *,
    user: str,
    pack_id: PackId | str,
    threshold: float,
    reason: str,
    evaluation: str | Path | None = None,
) -> ThresholdVersion:
    """Store a new threshold version for a pack, audited in the same transaction.

    Raises:
        WorkbenchError: a threshold outside [-1, 1], no reason, or an evaluation file that is
            missing or measured another pack.
    """
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        value = float("nan")
    if not -1.0 <= value <= 1.0:
        raise WorkbenchError(f"a threshold is a cosine similarity in [-1, 1] (such as 0.45), got {threshold!r}")
    reason = (reason or "").strip()
    if not reason:
        raise WorkbenchError("say why this threshold is set (--reason): the evaluation it rests on, the target, who agreed it")
    pack_id = str(pack_id)
    path = digest = summary = None
    if evaluation is not None:
        path = Path(evaluation)
        digest, summary = _read_evaluation(path, pack_id)
    previous = current_threshold(conn, pack_id)
    now = utc_now()
    with audit.transaction(conn):
        cursor = conn.execute(
            "INSERT INTO threshold_versions (pack_id, threshold, reason, set_by, time_utc, previous, evaluation_path, "
            "evaluation_sha256, evaluation_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                pack_id,
                value,
                reason,
                user,
                now,
                previous.threshold if previous else None,
                str(path) if path else None,
                digest,
                json.dumps(summary, sort_keys=True) if summary is not None else None,
            ),
        )
        version = int(cursor.lastrowid)
        audit.append(
            conn,
            user=user,
            action="threshold.set",
            details={
                "version": version,
                "pack_id": pack_id,
                "threshold": value,
                "previous": previous.threshold if previous else None,
                "previous_version": previous.version if previous else None,
                "reason": reason,
                "evaluation_path": str(path) if path else None,
                "evaluation_sha256": digest,
            },
            covers={"threshold": [version]},
        )
    return threshold_version(conn, version)


# ---------------------------------------------------------------------------------------------
# Which threshold a search uses, and what it says about it


@dataclass(frozen=True)
class OperatingPoint:
    """The threshold a search uses and where it came from.

    Attributes:
        threshold: cosine, or None when nothing sets one.
        source: ``"given"`` (passed to the search), ``"set version N"``, ``"settings"``,
            ``"pack default"`` or ``"none"``.
        version: the pack's threshold version in force (also when another threshold was given), or None.
    """

    threshold: float | None
    source: str
    version: ThresholdVersion | None = None

    def as_dict(self) -> dict:
        return {"threshold": self.threshold, "source": self.source, "version": self.version.version if self.version else None}


def operating_point(
    given: float | None,
    version: ThresholdVersion | None,
    *,
    settings_threshold: float | None = None,
    pack_default: float | None = None,
) -> OperatingPoint:
    """The given threshold, else the set version's, else the ``threshold`` setting, else the pack's default."""
    if given is not None:
        return OperatingPoint(float(given), "given", version)
    if version is not None:
        return OperatingPoint(version.threshold, f"set version {version.version}", version)
    if settings_threshold is not None:
        return OperatingPoint(float(settings_threshold), "settings", None)
    if pack_default is not None:
        return OperatingPoint(float(pack_default), "pack default", None)
    return OperatingPoint(None, "none", None)


def search_notes(
    point: OperatingPoint, *, mode: SearchMode | str, pack_id: PackId | str, calibration: Calibration | None = None
) -> tuple[list[str], list[str]]:
    """(notes, warnings) a search carries about its threshold.

    A warning when the threshold is below the pack's set version; a note when the pack has no
    set version (what the threshold used then is, and that it was not set from the unit's data).
    """
    mode = SearchMode.parse(mode)
    notes: list[str] = []
    warnings: list[str] = []
    try:
        pack = PackId.parse(str(pack_id)).short
    except WorkbenchError:
        pack = str(pack_id)
    t = point.threshold
    if point.version is None:
        used = "no threshold" if t is None else f"the {'threshold given' if point.source == 'given' else point.source} {t:.3f}"
        if mode is SearchMode.IDENTIFICATION:
            notes.append(
                f"No operating threshold has been set for pack {pack}: identification mode listed only candidates at or above "
                f"{used}, which was not set from measured evidence (technical staff: `workbench threshold recommend`, then "
                "`workbench threshold set`)."
            )
        else:
            notes.append(
                f"No operating threshold has been set for pack {pack}: 'above threshold' marks use {used} "
                "(technical staff: `workbench threshold set`). Investigation mode lists candidates whatever their score."
            )
    elif t is not None and t < point.version.threshold:
        v = point.version
        text = (
            f"Searched below the set operating point: threshold {t:.3f} is lower than {v.threshold:.3f} "
            f"(threshold version {v.version}, set by {v.set_by} on {v.time_utc[:10]}: {v.reason}). "
            + (
                "More candidates are marked above the threshold than the unit decided."
                if mode is SearchMode.INVESTIGATION
                else "The list holds candidates the unit decided not to show."
            )
        )
        if calibration is not None:
            text += (
                f" On this gallery {_rate_words(calibration.fmr_at(t))} unrelated faces score {t:.3f} or more, against "
                f"{_rate_words(calibration.fmr_at(v.threshold), calibration.pairs)} at {v.threshold:.3f}."
            )
        warnings.append(text)
    return notes, warnings


def annotate(found: CandidateList, calibration: Calibration | None) -> CandidateList:
    """The list with each candidate's ``fmr_at_score`` from the calibration (None without one)."""
    import dataclasses

    if calibration is None:
        return found
    candidates = tuple(dataclasses.replace(c, fmr_at_score=calibration.fmr_at(c.score)) for c in found.candidates)
    return dataclasses.replace(found, candidates=candidates)


# ---------------------------------------------------------------------------------------------
# Calibration against non-mated comparisons in the gallery


@dataclass(frozen=True, eq=False)
class Calibration:
    """Scores of non-mated comparisons (faces of different subjects) in one pack's gallery.

    Attributes:
        calibration_id: the workspace's number (None until stored).
        pack_id: ``name@sha256``.
        time_utc, user: when and by whom (or by whose search) it was made.
        faces, subjects: the live gallery it was measured on.
        pairs: non-mated comparisons scored.
        exhaustive: True when every non-mated pair was scored; False when random blocks were.
        max_pairs, seed: the sampling budget and seed.
        gallery_state: the gallery's state (live faces, largest face id, removals seen, index build).
        top_scores: the highest non-mated scores, descending (up to :data:`TOP_KEPT`), float32.
        quantiles: non-mated scores at :data:`QUANTILE_LEVELS`, ascending.
    """

    calibration_id: int | None
    pack_id: str
    time_utc: str
    user: str
    faces: int
    subjects: int
    pairs: int
    exhaustive: bool
    max_pairs: int
    seed: int
    gallery_state: dict
    top_scores: np.ndarray = field(repr=False)
    quantiles: np.ndarray = field(repr=False)

    def count_at(self, score: float) -> float:
        """How many of the non-mated comparisons score ``score`` or more (exact in the kept tail)."""
        score = float(score)
        top = self.top_scores
        if not self.pairs:
            return 0.0
        if len(top) >= self.pairs or (len(top) and score >= float(top[-1])):
            return float(np.sum(top >= np.float32(score)))
        below = float(np.interp(score, self.quantiles, QUANTILE_LEVELS))
        return max(float(len(top)), (1.0 - below) * self.pairs)

    def fmr_at(self, score: float) -> float:
        """Estimated false match rate at ``score``: the share of non-mated comparisons at or above it
        (0.0 when none is: the rate is then below 1/``pairs``, see :func:`fmr_phrase`)."""
        return self.count_at(score) / self.pairs if self.pairs else float("nan")

    def phrase(self, score: float) -> str:
        return fmr_phrase(self.fmr_at(score), pairs=self.pairs, time_utc=self.time_utc)

    def summary(self) -> dict:
        """What a search records and shows about the calibration it used."""
        return {
            "calibration_id": self.calibration_id,
            "pack_id": self.pack_id,
            "time_utc": self.time_utc,
            "pairs": self.pairs,
            "faces": self.faces,
            "subjects": self.subjects,
            "exhaustive": self.exhaustive,
        }

    def as_dict(self) -> dict:
        return {**self.summary(), "user": self.user, "max_pairs": self.max_pairs, "seed": self.seed, "gallery_state": self.gallery_state,
                "score_at_fmr": {f"{r:g}": self.score_at_fmr(r) for r in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)}}  # fmt: skip

    def score_at_fmr(self, rate: float) -> float | None:
        """The lowest score that at most ``rate`` of the non-mated comparisons reach, or None when
        the calibration holds too few comparisons to say (fewer than 1/rate)."""
        if not self.pairs or rate * self.pairs < 1:
            return None
        k = int(math.floor(rate * self.pairs))
        if k < len(self.top_scores):
            return float(np.nextafter(self.top_scores[k], np.float32(np.inf)))
        return float(np.interp(1.0 - rate, QUANTILE_LEVELS, self.quantiles))


def _round_people(value: float) -> int:
    """1 / rate for people to read: two significant figures (19,873 -> 20,000)."""
    if value < 10:
        return max(1, round(value))
    digits = int(math.floor(math.log10(value))) - 1
    return int(round(value, -digits))


def _rate_words(fmr: float, pairs: int | None = None) -> str:
    if fmr is None or (isinstance(fmr, float) and math.isnan(fmr)):
        return "an unknown share of"
    if fmr <= 0:
        return f"fewer than 1 in {pairs:,}" if pairs else "none of the"
    if fmr >= 0.1:
        return f"about {round(fmr * 10)} in 10"
    return f"about 1 in {_round_people(1 / fmr):,}"


def fmr_phrase(fmr: float | None, *, pairs: int | None, time_utc: str | None, basis: bool = True) -> str:
    """An estimated false match rate in words, with what it rests on.

    "about 1 in 20,000 unrelated faces score this high (calibrated on 2,000,000 comparisons,
    2025-03-01)"; "fewer than 1 in 28 unrelated faces score this high — too few comparisons to
    say more (calibrated on 28 comparisons, ...)" when none of them scored that high; and a
    note of how few when fewer than :data:`FEW_COMPARISONS` did. ``basis=False`` leaves out
    the calibration's size and date (for a list whose heading gives them).
    """
    if fmr is None or not pairs or (isinstance(fmr, float) and math.isnan(fmr)):
        return "not calibrated: no estimate of how often unrelated faces score this high"
    parts = [f"calibrated on {pairs:,} comparisons, {(time_utc or 'date not recorded')[:10]}"] if basis else []
    count = fmr * pairs
    if count < 0.5:
        text = f"fewer than 1 in {pairs:,} unrelated faces score this high — too few comparisons to say more"
    else:
        text = f"{_rate_words(fmr)} unrelated faces score this high"
        if count < FEW_COMPARISONS:
            shown = round(count)
            parts.append(f"rests on {shown} comparison{'s' if shown != 1 else ''} that high")
    return text + (f" ({'; '.join(parts)})" if parts else "")


def fmr_short(fmr: float | None, pairs: int | None) -> str:
    """:func:`fmr_phrase` without the basis, for a table whose caption gives it: "about 1 in
    20,000", "fewer than 1 in 28 — too few comparisons to say more"."""
    if fmr is None or not pairs or (isinstance(fmr, float) and math.isnan(fmr)):
        return "not calibrated"
    count = fmr * pairs
    if count < 0.5:
        return f"fewer than 1 in {pairs:,} — too few comparisons to say more"
    text = _rate_words(fmr)
    if count < FEW_COMPARISONS:
        shown = round(count)
        text += f" (rests on {shown} comparison{'s' if shown != 1 else ''})"
    return text


def _live_faces(gallery: Gallery):
    """(live view, face ids (N,), a function giving the (k, D) embeddings of positions)."""
    live = gallery.live()
    if live.build is not None:
        rows = np.nonzero(~live.hidden)[0] if live.hidden is not None else np.arange(live.build.count)
        build_ids = live.build.face_ids[rows]
    else:
        rows, build_ids = np.zeros(0, np.int64), np.zeros(0, np.int64)
    ids = np.concatenate([build_ids, live.pending_ids]).astype(np.int64)
    n_build = len(rows)

    def embeddings(positions: np.ndarray) -> np.ndarray:
        positions = np.asarray(positions, np.int64)
        out = np.empty((len(positions), live.pending.shape[1] if len(live.pending_ids) else live.build.embeddings.shape[1]), np.float32)
        in_build = positions < n_build
        if in_build.any():
            out[in_build] = live.build.embeddings[rows[positions[in_build]]]
        if (~in_build).any():
            out[~in_build] = live.pending[positions[~in_build] - n_build]
        return out

    return live, ids, embeddings


def _gallery_state(live) -> dict:
    state = list(live.state) + [None, None, None]
    return {"live_faces": int(live.count), "max_face_id": state[0], "removed_seq": state[1], "build_id": state[2]}


def calibrate(gallery: Gallery, *, user: str, max_pairs: int = MAX_PAIRS, seed: int = 0) -> Calibration | None:
    """Score non-mated comparisons of the gallery's live faces (not stored; see :func:`store_calibration`).

    Every pair of faces of different subjects when there are at most ``max_pairs`` pairs in
    all; else random blocks of :data:`BLOCK_FACES` x :data:`BLOCK_FACES` faces, scored by one
    matrix product each, until ``max_pairs`` comparisons are scored (pairs of one subject left
    out). None when the gallery has no non-mated pair (empty, or one subject).
    """
    if max_pairs < 1:
        raise WorkbenchError(f"max_pairs must be at least 1, got {max_pairs}")
    live, ids, embeddings = _live_faces(gallery)
    n = len(ids)
    if n < 2 or live.pack_id is None:
        return None
    rng = np.random.default_rng(seed)
    exhaustive = n * (n - 1) // 2 <= max_pairs
    if exhaustive:
        rows = gallery.face_rows(ids)
        subjects = np.array([rows[int(i)][0] if int(i) in rows else f"?{i}" for i in ids], dtype=object)
        matrix = embeddings(np.arange(n))
        parts = []
        for start in range(0, n, BLOCK_FACES):
            block = matrix[start : start + BLOCK_FACES] @ matrix.T
            r = np.arange(start, min(n, start + BLOCK_FACES))[:, None]
            keep = (np.arange(n)[None, :] > r) & (subjects[r] != subjects[None, :])
            parts.append(block[keep])
        scores = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    else:
        side = min(BLOCK_FACES, n)
        parts, scored = [], 0
        while scored < max_pairs:
            a, b = rng.choice(n, side, replace=False), rng.choice(n, side, replace=False)
            rows = gallery.face_rows(np.concatenate([ids[a], ids[b]]))
            sa = np.array([rows.get(int(i), (f"?{i}",))[0] for i in ids[a]], dtype=object)
            sb = np.array([rows.get(int(i), (f"?{i}",))[0] for i in ids[b]], dtype=object)
            block = embeddings(a) @ embeddings(b).T
            keep = sa[:, None] != sb[None, :]
            values = block[keep]
            if scored + len(values) > max_pairs:
                values = rng.choice(values, max_pairs - scored, replace=False)
            parts.append(values.astype(np.float32))
            scored += len(values)
            if not keep.any() and len(parts) > 16:
                break  # one subject holds every face drawn again and again
        scores = np.concatenate(parts)
        subjects = None
    if not len(scores):
        return None
    scores = np.clip(scores.astype(np.float32), -1.0, 1.0)
    kept = min(TOP_KEPT, len(scores))
    top = np.sort(np.partition(scores, len(scores) - kept)[len(scores) - kept :])[::-1].copy()
    quantiles = np.quantile(scores.astype(np.float64), QUANTILE_LEVELS)
    n_subjects = len(set(subjects)) if subjects is not None else _subject_count(gallery)
    return Calibration(
        calibration_id=None,
        pack_id=str(live.pack_id),
        time_utc=utc_now(),
        user=user,
        faces=n,
        subjects=n_subjects,
        pairs=int(len(scores)),
        exhaustive=exhaustive,
        max_pairs=int(max_pairs),
        seed=int(seed),
        gallery_state=_gallery_state(live),
        top_scores=top,
        quantiles=np.maximum.accumulate(quantiles),
    )


def _subject_count(gallery: Gallery) -> int:
    return int(gallery.conn.execute("SELECT COUNT(DISTINCT subject_id) FROM faces").fetchone()[0])


def store_calibration(conn: sqlite3.Connection, calibration: Calibration, *, why: str = "") -> Calibration:
    """Store a calibration (audited in the same transaction); returns it with its id."""
    import dataclasses

    c = calibration
    with audit.transaction(conn):
        cursor = conn.execute(
            "INSERT INTO score_calibrations (pack_id, time_utc, user, faces, subjects, pairs, exhaustive, max_pairs, seed, "
            "gallery_state, quantiles_json, top_scores) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                c.pack_id,
                c.time_utc,
                c.user,
                c.faces,
                c.subjects,
                c.pairs,
                int(c.exhaustive),
                c.max_pairs,
                c.seed,
                json.dumps(c.gallery_state, sort_keys=True),
                json.dumps([round(float(v), 6) for v in c.quantiles]),
                np.asarray(c.top_scores, "<f4").tobytes(),
            ),
        )
        calibration_id = int(cursor.lastrowid)
        audit.append(
            conn,
            user=c.user,
            action="calibration.compute",
            details={
                "calibration_id": calibration_id,
                "pack_id": c.pack_id,
                "pairs": c.pairs,
                "faces": c.faces,
                "subjects": c.subjects,
                "exhaustive": c.exhaustive,
                "max_pairs": c.max_pairs,
                "seed": c.seed,
                "why": why,
            },
            covers={"calibration": [calibration_id]},
        )
    return dataclasses.replace(c, calibration_id=calibration_id)


def _calibration(row) -> Calibration:
    return Calibration(
        calibration_id=int(row["calibration_id"]),
        pack_id=row["pack_id"],
        time_utc=row["time_utc"],
        user=row["user"],
        faces=int(row["faces"]),
        subjects=int(row["subjects"]),
        pairs=int(row["pairs"]),
        exhaustive=bool(row["exhaustive"]),
        max_pairs=int(row["max_pairs"]),
        seed=int(row["seed"]),
        gallery_state=json.loads(row["gallery_state"]),
        top_scores=np.frombuffer(row["top_scores"], "<f4").copy(),
        quantiles=np.asarray(json.loads(row["quantiles_json"]), np.float64),
    )


def latest_calibration(conn: sqlite3.Connection, pack_id: PackId | str) -> Calibration | None:
    row = conn.execute(
        "SELECT * FROM score_calibrations WHERE pack_id = ? ORDER BY calibration_id DESC LIMIT 1", (str(pack_id),)
    ).fetchone()
    return _calibration(row) if row else None


def calibration_by_id(conn: sqlite3.Connection, calibration_id: int) -> Calibration | None:
    row = conn.execute("SELECT * FROM score_calibrations WHERE calibration_id = ?", (int(calibration_id),)).fetchone()
    return _calibration(row) if row else None


def calibration_summary(conn: sqlite3.Connection, calibration_id: int) -> dict | None:
    """:meth:`Calibration.summary` of a stored calibration, read without its scores (cheap: a
    recorded search reads it each time it is read back)."""
    row = conn.execute(
        "SELECT calibration_id, pack_id, time_utc, pairs, faces, subjects, exhaustive FROM score_calibrations WHERE calibration_id = ?",
        (int(calibration_id),),
    ).fetchone()
    if row is None:
        return None
    return {
        "calibration_id": int(row["calibration_id"]),
        "pack_id": row["pack_id"],
        "time_utc": row["time_utc"],
        "pairs": int(row["pairs"]),
        "faces": int(row["faces"]),
        "subjects": int(row["subjects"]),
        "exhaustive": bool(row["exhaustive"]),
    }


def stale_because(calibration: Calibration | None, gallery: Gallery) -> str | None:
    """Why a search should recalibrate first (none yet, another pack, the gallery changed), or None."""
    live = gallery.live()
    if live.pack_id is None:
        return None
    if calibration is None:
        return "no calibration of this pack's scores yet"
    if calibration.pack_id != str(live.pack_id):
        return "the gallery's pack changed"
    state = _gallery_state(live)
    if calibration.exhaustive:
        before = calibration.gallery_state
        if (before.get("live_faces"), before.get("max_face_id"), before.get("removed_seq")) != (
            state["live_faces"], state["max_face_id"], state["removed_seq"],
        ):  # fmt: skip
            return "the gallery changed since the last calibration"
        return None
    if abs(state["live_faces"] - calibration.faces) > STALE_SHARE * calibration.faces:
        return f"the gallery's face count moved by more than {STALE_SHARE:.0%} since the last calibration"
    return None


def ensure_calibration(conn: sqlite3.Connection, gallery: Gallery, *, user: str, max_pairs: int = MAX_PAIRS) -> Calibration | None:
    """The pack's latest calibration, recalibrated and stored first when :func:`stale_because` says so.
    None when the gallery has no non-mated pair to calibrate on."""
    live = gallery.live()
    if live.pack_id is None:
        return None
    current = latest_calibration(conn, live.pack_id)
    why = stale_because(current, gallery)
    if why is None:
        return current
    fresh = calibrate(gallery, user=user, max_pairs=max_pairs)
    if fresh is None:
        return None
    return store_calibration(conn, fresh, why=why)
