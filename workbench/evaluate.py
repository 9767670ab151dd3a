"""Accuracy measurement: verification (1:1) and identification (1:N) on labelled images.

The figures technical staff rely on, computed with scikit-learn's ROC where it applies:

* verification: ``accuracy`` at the best threshold, ``auc``, ``eer``, ``tar_at_fmr`` at FMR
  1e-2 and 1e-3 (with the thresholds that give them) and ``failed_to_enrol``;
* identification: ``rank1``, ``rank10`` (CMC), and ``fnir_at_fpir`` at FPIR 0.01 with its
  threshold, as in NIST FRTE 1:N.

Conventions (write them in any report that quotes these figures):

* An image where no face is found or that cannot be read "fails to enrol". In verification,
  pairs that involve it get score -1 (a certain non-match), as NIST scores failures, so
  failures cost accuracy instead of being hidden; they are also counted.
* ``accuracy`` is taken at the threshold that maximises it on this very data, so it is an
  optimistic figure (LFW-style 10-fold protocols choose the threshold on held-out folds).
* Identification searches each probe against every gallery identity (score = max over that
  identity's images). Non-mated searches come from probes whose identity is not in the
  gallery and, so that a closed set still yields an FPIR, from every mated probe searched again
  with its own identity left out of the gallery.
* A figure at FMR 1e-3 from fewer than 1,000 non-mated pairs rests on less than one false
  match; ``n_nonmated`` is reported so the reader can judge.

Beyond those headline figures (ISO/IEC 19795-1 terms; tables are pandas DataFrames, plots
matplotlib Figures):

* :func:`comparisons_frame` / :func:`pairs_frame`: one row per comparison (score, mated,
  identities, quality), the table every other function reads; :func:`rates` (FMR and FNMR at
  thresholds), :func:`det_table`, :func:`threshold_at_fmr`.
* :func:`bootstrap_verification` / :func:`bootstrap_identification`: percentile intervals from
  resampling **identities** with replacement, not comparisons: the comparisons of one person
  are correlated (one bad custody photo spoils all its pairs), so resampling pairs gives
  intervals that are too narrow. A same-person pair counts as often as its identity is drawn;
  a different-person pair as the product of its two identities' draws.
* :func:`group_table` and :func:`group_ratios`: FMR (FPIR) and FNMR (FNIR) per group of any
  metadata column at one threshold, and the ratio of the worst group to the best. Different-
  person comparisons count for a group when **both** people are in it (demographically matched
  impostors, as NIST FRTE reports them: they are the ones that produce false matches); pairs
  across groups have a row of their own.
* :func:`quality_table`: FNMR and FMR as probes below a quality score (or an inter-ocular
  distance) are excluded; a pair's quality is the lower of its two faces'.
* Every figure carries the number of comparisons it rests on. A figure resting on too few is
  null with a reason, never hidden: an FMR (FPIR) target needs at least 3/target different-
  person comparisons (searches), so that about three false matches are expected; an FMR at a
  threshold needs at least 3 observed false matches; an FNMR (FNIR) at least 30 same-person
  comparisons (searches), the "rule of 30".
* Identification, open set: FNIR at rank R and threshold T, FPIR at T, CMC; both NIST modes:
  investigation (rank 1 and rank 20 at T = 0) and identification (FNIR at FPIR 0.01 and 0.001).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve

from .errors import WorkbenchError
from .images import IMAGE_SUFFIXES
from .types import FaceQuality

#: progress callback: (done, total) images.
Progress = Callable[[float, float], None]

FMR_TARGETS = (1e-2, 1e-3)
FPIR_TARGET = 0.01
#: the FPIR targets of NIST FRTE's identification mode.
FPIR_TARGETS = (1e-2, 1e-3)
CANDIDATE_LIST_LENGTH = 20
#: ranks reported in investigation mode (threshold 0), as NIST FRTE does.
INVESTIGATION_RANKS = (1, 20)
FAILED_SCORE = -1.0
#: a false non-match rate needs at least this many same-person comparisons ("rule of 30").
MIN_GENUINE = 30
#: a false match rate needs about this many false matches: at a target, 3/target comparisons.
FALSE_MATCHES_NEEDED = 3
#: label of the rows of different-person pairs whose two people are in different groups.
ACROSS_GROUPS = "(across groups)"
#: label of identities the metadata does not list, or lists without a value.
NOT_RECORDED = "(not recorded)"


# ---------------------------------------------------------------------------------------------
# Metrics on scores


def verification_metrics(scores: Sequence[float], same: Sequence[int]) -> dict:
    """Verification figures from similarity scores and same-person labels (1 = same, 0 = not).

    Returns a dict with ``accuracy``, ``best_threshold``, ``auc``, ``eer``, ``eer_threshold``,
    ``tar_at_fmr`` and ``threshold_at_fmr`` (keys "1e-2", "1e-3"), ``n_mated``, ``n_nonmated``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(same, dtype=int)
    if scores.shape != labels.shape or scores.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of equal length, got {scores.shape} and {labels.shape}")
    n_mated, n_nonmated = int(labels.sum()), int((labels == 0).sum())
    if n_mated == 0 or n_nonmated == 0:
        raise WorkbenchError(
            f"verification needs both same-person and different-person pairs, got {n_mated} and {n_nonmated}"
        )
    fpr, tpr, thresholds = roc_curve(labels, scores, drop_intermediate=False)
    accuracy_curve = (tpr * n_mated + (1 - fpr) * n_nonmated) / (n_mated + n_nonmated)
    best = int(np.argmax(accuracy_curve))
    eer, eer_threshold = _equal_error_rate(fpr, tpr, thresholds)
    result = {
        "accuracy": float(accuracy_curve[best]),
        "best_threshold": _finite(thresholds[best]),
        "auc": float(roc_auc_score(labels, scores)),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "tar_at_fmr": {},
        "threshold_at_fmr": {},
        "n_mated": n_mated,
        "n_nonmated": n_nonmated,
    }
    for target in FMR_TARGETS:
        allowed = np.nonzero(fpr <= target)[0]
        key = f"{target:.0e}".replace("e-0", "e-")
        i = allowed[np.argmax(tpr[allowed])]
        result["tar_at_fmr"][key] = float(tpr[i])
        result["threshold_at_fmr"][key] = _finite(thresholds[i])
    return result


def _equal_error_rate(fpr: np.ndarray, tpr: np.ndarray, thresholds: np.ndarray) -> tuple[float, float | None]:
    """EER by linear interpolation where FMR crosses FNMR on the ROC."""
    fnr = 1 - tpr
    diff = fpr - fnr  # rises from -1 to +1 along the curve
    i = int(np.searchsorted(diff, 0.0))
    if i == 0:
        return float(fpr[0]), _finite(thresholds[0])
    if i >= len(diff):
        return float(fnr[-1]), _finite(thresholds[-1])
    w = -diff[i - 1] / (diff[i] - diff[i - 1])
    eer = fpr[i - 1] + w * (fpr[i] - fpr[i - 1])
    threshold = thresholds[i - 1] + w * (thresholds[i] - thresholds[i - 1]) if np.isfinite(thresholds[i - 1]) else thresholds[i]
    return float(eer), _finite(threshold)


def _finite(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def identification_metrics(
    scores: np.ndarray,
    probe_labels: Sequence[str],
    gallery_labels: Sequence[str],
    *,
    failed_probe_labels: Sequence[str] = (),
) -> dict:
    """Rank-k and FNIR at FPIR from a probe x gallery-identity score matrix.

    Args:
        scores: (P, G) similarity of each probe to each gallery identity.
        probe_labels: P identity labels.
        gallery_labels: G distinct identity labels.
        failed_probe_labels: labels of probes that failed to enrol; mated ones count as misses.
    """
    mate_scores, mate_ranks, nonmated_top = identification_score_sets(scores, probe_labels, gallery_labels)
    known = set(gallery_labels)
    failed_mated = sum(1 for label in failed_probe_labels if label in known)
    n_mated = len(mate_ranks) + failed_mated
    if n_mated == 0:
        raise WorkbenchError("identification needs probes whose identity is in the gallery; none found")
    ranks = np.array(mate_ranks + [np.inf] * failed_mated)
    mates = np.array(mate_scores + [-np.inf] * failed_mated)
    result = {
        "rank1": float(np.mean(ranks <= 1)),
        "rank10": float(np.mean(ranks <= 10)),
        "rank20": float(np.mean(ranks <= 20)),
        "cmc": [float(np.mean(ranks <= k)) for k in range(1, CANDIDATE_LIST_LENGTH + 1)],
        "fnir_at_fpir": {},
        "threshold_at_fpir": {},
        "n_mated": n_mated,
        "n_nonmated_searches": len(nonmated_top),
        "gallery_identities": len(gallery_labels),
    }
    for target in FPIR_TARGETS:
        key = _target_key(target, fpir=True)
        threshold = _threshold_at_fpir(np.array(nonmated_top), target)
        hit = (ranks <= CANDIDATE_LIST_LENGTH) & (mates >= threshold)
        result["fnir_at_fpir"][key] = float(1 - hit.mean())
        result["threshold_at_fpir"][key] = _finite(threshold)
    return result


def _target_key(target: float, *, fpir: bool = False) -> str:
    """The JSON key of a target rate: FMR as "1e-2", "1e-3" (DESIGN.md); FPIR as "0.01", "0.001"."""
    return f"{target:g}" if fpir else f"{target:.0e}".replace("e-0", "e-")


def identification_score_sets(
    scores: np.ndarray, probe_labels: Sequence[str], gallery_labels: Sequence[str]
) -> tuple[list[float], list[int], list[float]]:
    """The searches behind the identification figures, from a probe x gallery-identity matrix.

    Returns ``(mate_scores, mate_ranks, nonmated_top)``: for each probe whose identity is in the
    gallery, its mate's score and rank (1 = top); and the top score of every non-mated search
    (probes not in the gallery, and mated probes searched again without their own identity).
    """
    scores = np.asarray(scores, dtype=np.float64)
    gallery_labels = list(gallery_labels)
    if len(set(gallery_labels)) != len(gallery_labels):
        raise ValueError("gallery labels must be distinct (one column per identity)")
    column = {label: j for j, label in enumerate(gallery_labels)}
    mate_scores, mate_ranks, nonmated_top = [], [], []
    for i, label in enumerate(probe_labels):
        row = scores[i]
        if label in column:
            j = column[label]
            mate_scores.append(float(row[j]))
            mate_ranks.append(1 + int(np.sum(row > row[j])))
            others = np.delete(row, j)
            if others.size:
                nonmated_top.append(float(others.max()))
        elif row.size:
            nonmated_top.append(float(row.max()))
    return mate_scores, mate_ranks, nonmated_top


def _threshold_at_fpir(nonmated_top: np.ndarray, target: float) -> float:
    """Lowest threshold at which at most ``target`` of non-mated searches return a candidate."""
    if nonmated_top.size == 0:
        return -np.inf
    ordered = np.sort(nonmated_top)[::-1]
    allowed = int(np.floor(target * len(ordered)))
    if allowed >= len(ordered):
        return -np.inf
    return float(np.nextafter(ordered[allowed], np.inf))


# ---------------------------------------------------------------------------------------------
# Running a pack over image folders


@dataclass
class EmbeddedImages:
    """Embeddings of a set of image files (with each face's quality); failures keep their reason."""

    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    qualities: dict[str, FaceQuality] = field(default_factory=dict)


def embed_images(engine, paths: Sequence[Path], *, aligned: bool = False, progress: Progress | None = None) -> EmbeddedImages:
    """Embed the most prominent face of each image (or the whole image when ``aligned``);
    ``progress(images_done, images_total)`` after each image."""
    result = EmbeddedImages()
    for done, path in enumerate(paths, start=1):
        if progress is not None:
            progress(done - 1, len(paths))
        key = str(path)
        try:
            face = engine.embed_crop(path) if aligned else engine.prominent_face(path)
        except WorkbenchError as exc:
            result.failures[key] = str(exc)
            continue
        if face is None:
            result.failures[key] = f"{path}: no face found"
        else:
            result.embeddings[key] = face.embedding
            if face.quality is not None:
                result.qualities[key] = face.quality
    if progress is not None:
        progress(len(paths), len(paths))
    return result


def read_pairs(pairs_csv: Path, images_dir: Path) -> list[tuple[Path, Path, int]]:
    """Rows of a pairs CSV (columns a, b, same) with paths resolved against ``images_dir``."""
    pairs_csv, images_dir = Path(pairs_csv), Path(images_dir)
    if not pairs_csv.exists():
        raise WorkbenchError(f"{pairs_csv}: no such pairs file")
    if not pairs_csv.is_file():
        raise WorkbenchError(f"{pairs_csv}: not a file; expected a CSV with columns a,b,same")
    if not images_dir.is_dir():
        raise WorkbenchError(f"{images_dir}: not a folder; --images names the folder the pairs' paths are relative to")
    try:
        with open(pairs_csv, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"a", "b", "same"} - set(reader.fieldnames or [])
            if missing:
                raise WorkbenchError(f"{pairs_csv}: missing column(s) {', '.join(sorted(missing))}; expected a,b,same")
            pairs = []
            for line, row in enumerate(reader, start=2):
                values = {key: row.get(key) for key in ("a", "b", "same")}
                if any(v is None for v in values.values()) or None in row:
                    raise WorkbenchError(f"{pairs_csv}, line {line}: has {len(row) - (None in row)} fields, expected a,b,same")
                if values["same"].strip() not in {"0", "1"}:
                    raise WorkbenchError(f"{pairs_csv}, line {line}: same must be 1 or 0, got {values['same']!r}")
                if not values["a"].strip() or not values["b"].strip():
                    raise WorkbenchError(f"{pairs_csv}, line {line}: an image path is empty")
                pairs.append((images_dir / values["a"].strip(), images_dir / values["b"].strip(), int(values["same"])))
    except UnicodeDecodeError as exc:
        raise WorkbenchError(f"{pairs_csv}: not UTF-8 text ({exc})") from exc
    except csv.Error as exc:
        raise WorkbenchError(f"{pairs_csv}: not a readable CSV ({exc})") from exc
    except OSError as exc:
        raise WorkbenchError(f"{pairs_csv}: cannot be read ({exc.strerror or exc})") from exc
    if not pairs:
        raise WorkbenchError(f"{pairs_csv}: holds no pairs")
    return pairs


def evaluate_pairs(
    engine, pairs_csv: Path, images_dir: Path, *, aligned: bool = False, progress: Progress | None = None, return_scores: bool = False
) -> dict:
    """Verification figures for the pairs in ``pairs_csv`` (see the module docstring).

    ``return_scores`` adds ``scores`` (cosine per pair, in file order, -1 for a failure to
    enrol) and ``labels`` (1 same person, 0 not), for plots; and, per pair, ``paths`` (a and b
    as written in the CSV), ``identity_a``/``identity_b`` (the first folder of each path, the
    identity sub-folder; None for a file outside one), ``quality_a``/``quality_b`` (quality
    score in [0, 1]) and ``iod_a``/``iod_b`` (inter-ocular distance, px), None where the face
    failed to enrol: what :func:`pairs_frame` reads.
    """
    pairs = read_pairs(pairs_csv, images_dir)
    unique = sorted({p for a, b, _ in pairs for p in (a, b)})
    embedded = embed_images(engine, unique, aligned=aligned, progress=progress)
    scores, labels = [], []
    for a, b, same in pairs:
        ea, eb = embedded.embeddings.get(str(a)), embedded.embeddings.get(str(b))
        scores.append(float(ea @ eb) if ea is not None and eb is not None else FAILED_SCORE)
        labels.append(same)
    result = verification_metrics(scores, labels)
    result.update(
        pairs=len(pairs),
        images=len(unique),
        failed_to_enrol=len(embedded.failures),
        failures=sorted(embedded.failures.values()),
        pack_id=str(engine.pack_id),
        aligned=aligned,
    )
    if return_scores:
        result.update(scores=scores, labels=labels, **_pair_details(pairs, Path(images_dir), embedded))
    return result


def _pair_details(pairs, images_dir: Path, embedded: EmbeddedImages) -> dict:
    """Per pair: paths as written, identities (first folder), quality and eye distance of each face."""
    details = {key: [] for key in ("paths", "identity_a", "identity_b", "quality_a", "quality_b", "iod_a", "iod_b")}
    for a, b, _ in pairs:
        details["paths"].append([_relative(a, images_dir), _relative(b, images_dir)])
        for side, path in (("a", a), ("b", b)):
            quality = embedded.qualities.get(str(path))
            details[f"identity_{side}"].append(_identity_of(path, images_dir))
            details[f"quality_{side}"].append(None if quality is None else float(quality.score))
            details[f"iod_{side}"].append(None if quality is None else float(quality.inter_ocular_px))
    return details


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _identity_of(path: Path, root: Path) -> str | None:
    """The identity sub-folder a pair's file sits in (its first folder under ``root``), or None."""
    parts = Path(_relative(path, root)).parts
    return parts[0] if len(parts) > 1 else None


def labelled_images(folder: Path) -> list[tuple[str, Path]]:
    """(identity, image path) for every image in each sub-folder of ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WorkbenchError(f"{folder}: not a folder; expected one sub-folder per identity")
    try:
        items = [
            (sub.name, path)
            for sub in sorted(p for p in folder.iterdir() if p.is_dir())
            for path in sorted(sub.iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES
        ]
    except OSError as exc:
        raise WorkbenchError(f"{exc.filename or folder}: cannot list the folder ({exc.strerror or exc})") from exc
    if not items:
        raise WorkbenchError(f"{folder}: no images found in sub-folders (one sub-folder per identity)")
    return items


def evaluate_identification(
    engine, gallery_dir: Path, probes_dir: Path, *, aligned: bool = False, progress: Progress | None = None, return_scores: bool = False
) -> dict:
    """Identification figures: every probe against every gallery identity (exact search).

    ``return_scores`` adds ``scores`` (probes x gallery identities, cosine, max over each
    identity's images; probes that failed to enrol left out), ``probe_labels`` and
    ``gallery_labels``, for plots; ``probe_paths``, ``probe_qualities`` and ``probe_iods``
    (quality score, inter-ocular distance px) of those probes, and ``failed_probe_labels``,
    for :func:`identification_searches`.
    """
    gallery = labelled_images(gallery_dir)
    probes = labelled_images(probes_dir)
    n_gallery, n_probes = len(gallery), len(probes)
    total = n_gallery + n_probes
    g = embed_images(engine, [p for _, p in gallery], aligned=aligned, progress=progress and (lambda d, _t: progress(d, total)))
    p = embed_images(engine, [p for _, p in probes], aligned=aligned, progress=progress and (lambda d, _t: progress(n_gallery + d, total)))
    identities = sorted({label for label, path in gallery if str(path) in g.embeddings})
    if not identities:
        raise WorkbenchError(f"{gallery_dir}: no gallery image could be enrolled")
    probe_items = [(label, p.embeddings[str(path)]) for label, path in probes if str(path) in p.embeddings]
    scores = np.full((len(probe_items), len(identities)), -1.0, np.float32)
    column = {label: j for j, label in enumerate(identities)}
    if probe_items:
        probe_matrix = np.stack([e for _, e in probe_items])
        for label, path in gallery:
            emb = g.embeddings.get(str(path))
            if emb is not None:
                j = column[label]
                scores[:, j] = np.maximum(scores[:, j], probe_matrix @ emb)
    result = identification_metrics(
        scores,
        [label for label, _ in probe_items],
        identities,
        failed_probe_labels=[label for label, path in probes if str(path) in p.failures],
    )
    result.update(
        gallery_images=len(gallery),
        probes=len(probes),
        failed_to_enrol={"gallery": len(g.failures), "probes": len(p.failures)},
        failures=sorted(list(g.failures.values()) + list(p.failures.values())),
        pack_id=str(engine.pack_id),
        aligned=aligned,
    )
    if return_scores:
        enrolled = [(label, path) for label, path in probes if str(path) in p.embeddings]
        qualities = [p.qualities.get(str(path)) for _, path in enrolled]
        result.update(
            scores=scores.tolist(),
            probe_labels=[label for label, _ in probe_items],
            gallery_labels=identities,
            probe_paths=[str(path) for _, path in enrolled],
            probe_qualities=[None if q is None else float(q.score) for q in qualities],
            probe_iods=[None if q is None else float(q.inter_ocular_px) for q in qualities],
            failed_probe_labels=[label for label, path in probes if str(path) in p.failures],
        )
    return result


def make_pairs(folder: Path, *, per_identity: int = 30, seed: int = 0) -> list[tuple[str, str, int]]:
    """Draw balanced same/different pairs (relative paths) from a folder of identity sub-folders.

    Up to ``per_identity`` same-person pairs per identity and as many different-person pairs,
    drawn with a fixed seed so anyone can redraw the same list.
    """
    rng = np.random.default_rng(seed)
    items = labelled_images(folder)
    by_identity: dict[str, list[str]] = {}
    for label, path in items:
        by_identity.setdefault(label, []).append(str(path.relative_to(folder)))
    labels = sorted(by_identity)
    if len(labels) < 2:
        raise WorkbenchError(
            f"{folder}: holds images of {len(labels)} identity ({labels[0]}); different-person pairs need at least two "
            "sub-folders (one per identity)"
        )
    if all(len(files) < 2 for files in by_identity.values()):
        raise WorkbenchError(f"{folder}: no identity has two images; same-person pairs need at least two images in a sub-folder")
    if per_identity < 1:
        raise WorkbenchError(f"pairs per identity must be at least 1, got {per_identity}")
    pairs = []
    for label in labels:
        files = by_identity[label]
        combos = [(files[i], files[j]) for i in range(len(files)) for j in range(i + 1, len(files))]
        for k in rng.permutation(len(combos))[:per_identity]:
            pairs.append((*combos[k], 1))
        others = [other for other in labels if other != label]
        for _ in range(min(per_identity, len(combos))):
            other = others[rng.integers(len(others))]
            pairs.append((files[rng.integers(len(files))], by_identity[other][rng.integers(len(by_identity[other]))], 0))
    return pairs


# ---------------------------------------------------------------------------------------------
# Comparisons as tables: rates, intervals from resampling identities, groups, quality


def comparisons_frame(
    scores: Sequence[float],
    same: Sequence[int],
    *,
    identity_a: Sequence[str | None] | None = None,
    identity_b: Sequence[str | None] | None = None,
    quality_a: Sequence[float | None] | None = None,
    quality_b: Sequence[float | None] | None = None,
    iod_a: Sequence[float | None] | None = None,
    iod_b: Sequence[float | None] | None = None,
) -> pd.DataFrame:
    """One row per comparison: ``score`` (cosine), ``mated`` (bool), ``identity_a``,
    ``identity_b`` (None when not known), ``quality`` and ``iod`` (the lower of the two faces'
    quality score and inter-ocular distance in px; NaN when not known or a face failed)."""
    scores = np.asarray(scores, dtype=np.float64)
    mated = np.asarray(same, dtype=int)
    if scores.shape != mated.shape or scores.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of equal length, got {scores.shape} and {mated.shape}")
    if np.any((mated != 0) & (mated != 1)):
        raise ValueError("labels must be 1 (same person) or 0 (different people)")
    n = len(scores)

    def column(values, fill):
        if values is None:
            return [fill] * n
        values = list(values)
        if len(values) != n:
            raise ValueError(f"every per-comparison column needs {n} values, got {len(values)}")
        return values

    def lower(a, b):  # a pair is as good as its worse face; unknown if either is unknown
        a = np.array([np.nan if v is None else v for v in column(a, None)], dtype=np.float64)
        b = np.array([np.nan if v is None else v for v in column(b, None)], dtype=np.float64)
        return np.where(np.isnan(a) | np.isnan(b), np.nan, np.minimum(a, b))

    return pd.DataFrame(
        {
            "score": scores,
            "mated": mated.astype(bool),
            "identity_a": pd.Series(column(identity_a, None), dtype=object),
            "identity_b": pd.Series(column(identity_b, None), dtype=object),
            "quality": lower(quality_a, quality_b),
            "iod": lower(iod_a, iod_b),
        }
    )


def pairs_frame(result: dict) -> pd.DataFrame:
    """:func:`comparisons_frame` of an :func:`evaluate_pairs` result made with ``return_scores``."""
    if "scores" not in result:
        raise WorkbenchError("the evaluation was run without its scores: call evaluate_pairs(..., return_scores=True)")
    frame = comparisons_frame(
        result["scores"], result["labels"],
        **{key: result.get(key) for key in ("identity_a", "identity_b", "quality_a", "quality_b", "iod_a", "iod_b")},
    )  # fmt: skip
    if "paths" in result:
        frame.insert(0, "a", [a for a, _ in result["paths"]])
        frame.insert(1, "b", [b for _, b in result["paths"]])
    return frame


def _split_frame(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    mated = frame["mated"].to_numpy(bool)
    scores = frame["score"].to_numpy(np.float64)
    return scores[mated], scores[~mated]


def rates(frame: pd.DataFrame, thresholds: Sequence[float]) -> pd.DataFrame:
    """FMR and FNMR at each threshold (a comparison matches when its score is at or above it),
    with the counts behind them: columns ``threshold``, ``fmr``, ``fnmr``, ``false_matches``,
    ``false_non_matches``, ``genuine``, ``impostor``."""
    mated, nonmated = _split_frame(frame)
    rows = []
    for t in thresholds:
        fm, fnm = int(np.sum(nonmated >= t)), int(np.sum(mated < t))
        rows.append(
            {
                "threshold": float(t),
                "fmr": fm / len(nonmated) if len(nonmated) else np.nan,
                "fnmr": fnm / len(mated) if len(mated) else np.nan,
                "false_matches": fm,
                "false_non_matches": fnm,
                "genuine": len(mated),
                "impostor": len(nonmated),
            }
        )
    return pd.DataFrame(rows)


def det_table(frame: pd.DataFrame) -> pd.DataFrame:
    """FMR and FNMR at every distinct score (ascending thresholds): the DET curve as a table."""
    mated, nonmated = _split_frame(frame)
    thresholds = np.unique(frame["score"].to_numpy(np.float64))
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "fmr": _share_at_or_above(np.sort(nonmated), thresholds),
            "fnmr": 1.0 - _share_at_or_above(np.sort(mated), thresholds),
        }
    )


def _share_at_or_above(sorted_scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    if not len(sorted_scores):
        return np.full(len(thresholds), np.nan)
    return 1.0 - np.searchsorted(sorted_scores, thresholds, side="left") / len(sorted_scores)


def threshold_at_fmr(frame: pd.DataFrame, target: float) -> float | None:
    """The lowest threshold at which at most ``target`` of the different-person comparisons
    match (just above a non-mated score); None when every threshold does (target >= 1)."""
    _, nonmated = _split_frame(frame)
    return _finite(_threshold_at_fpir(nonmated, target))


# -- weighted figures: the point estimate (all weights 1) and each bootstrap replicate -----------


class _Weighted:
    """Scores sorted ascending with cumulative weights: weighted shares at thresholds in O(log n)."""

    def __init__(self, scores: np.ndarray):
        self.order = np.argsort(scores, kind="stable")
        self.scores = scores[self.order]
        self.unique = np.unique(self.scores)
        self.right = np.searchsorted(self.scores, self.unique, side="right")

    def cumulative(self, weights: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(weights[self.order], dtype=np.float64)])

    def share_at_or_above(self, cum: np.ndarray, thresholds) -> np.ndarray:
        total = cum[-1]
        below = cum[np.searchsorted(self.scores, np.asarray(thresholds, dtype=np.float64), side="left")]
        return (total - below) / total if total > 0 else np.full(np.shape(thresholds), np.nan)

    def threshold_at(self, cum: np.ndarray, target: float) -> float:
        """Lowest threshold at which at most ``target`` of the weight scores at or above it."""
        total = cum[-1]
        if total <= 0 or not len(self.unique):
            return np.nan
        if target >= 1:
            return -np.inf
        allowed = target * total * (1 + 1e-12)
        above = total - cum[self.right]  # weight strictly above each distinct score: falls to 0 at the top
        first = int(np.argmax(above <= allowed))
        return float(np.nextafter(self.unique[first], np.inf))


def _eer(gen: _Weighted, gen_cum: np.ndarray, imp: _Weighted, imp_cum: np.ndarray) -> float:
    """EER by linear interpolation where FMR (falling) crosses FNMR (rising) over every score."""
    thresholds = np.union1d(gen.unique, imp.unique)
    thresholds = np.append(thresholds, np.inf)
    fmr = imp.share_at_or_above(imp_cum, thresholds)
    fnmr = 1.0 - gen.share_at_or_above(gen_cum, thresholds)
    diff = fmr - fnmr
    i = int(np.argmax(diff <= 0))
    if diff[i] > 0:
        return float("nan")
    if i == 0:
        return float(fmr[0])
    w = diff[i - 1] / (diff[i - 1] - diff[i])
    return float(fmr[i - 1] + w * (fmr[i] - fmr[i - 1]))


def _verification_figures(gen, gen_w, imp, imp_w, threshold, targets) -> dict[str, float]:
    gen_cum, imp_cum = gen.cumulative(gen_w), imp.cumulative(imp_w)
    figures = {"EER": _eer(gen, gen_cum, imp, imp_cum)}
    for target in targets:
        key = _target_key(target)
        t = imp.threshold_at(imp_cum, target)
        figures[f"threshold at FMR {key}"] = t if np.isfinite(t) else np.nan
        figures[f"FNMR at FMR {key}"] = float(1.0 - gen.share_at_or_above(gen_cum, [t])[0]) if not np.isnan(t) else np.nan
    if threshold is not None:
        figures["FMR at threshold"] = float(imp.share_at_or_above(imp_cum, [threshold])[0])
        figures["FNMR at threshold"] = float(1.0 - gen.share_at_or_above(gen_cum, [threshold])[0])
    return figures


def _fmr_target_reason(target: float, impostor: int, what: str = "different-person comparisons") -> str | None:
    needed = math.ceil(FALSE_MATCHES_NEEDED / target)
    if impostor < needed:
        return f"a rate of {target:.2g} needs at least {needed:,} {what} (for about {FALSE_MATCHES_NEEDED} false matches); has {impostor:,}"
    return None


def _genuine_reason(genuine: int, what: str = "same-person comparisons") -> str | None:
    if genuine < MIN_GENUINE:
        return f"rests on {genuine:,} {what}; at least {MIN_GENUINE} are needed"
    return None


def _false_match_reason(false_matches: int, impostor: int, what: str = "different-person comparisons") -> str | None:
    if impostor == 0:
        return f"no {what}"
    if false_matches < FALSE_MATCHES_NEEDED:
        bound = f" (by the rule of three, below {FALSE_MATCHES_NEEDED / impostor:.2g} at 95% confidence)" if false_matches == 0 else ""
        return (
            f"{false_matches} of {impostor:,} {what} score this high: fewer than {FALSE_MATCHES_NEEDED} false matches, "
            f"too few to estimate the rate{bound}"
        )
    return None


def _verification_reasons(genuine: int, impostor: int, false_matches: int | None, targets) -> dict[str, str | None]:
    reasons = {"EER": _genuine_reason(genuine) or (f"rests on {impostor:,} different-person comparisons; at least 30 are needed"
                                                     if impostor < 30 else None)}  # fmt: skip
    for target in targets:
        key = _target_key(target)
        reasons[f"threshold at FMR {key}"] = _fmr_target_reason(target, impostor)
        reasons[f"FNMR at FMR {key}"] = _fmr_target_reason(target, impostor) or _genuine_reason(genuine)
    if false_matches is not None:
        reasons["FMR at threshold"] = _false_match_reason(false_matches, impostor)
        reasons["FNMR at threshold"] = _genuine_reason(genuine)
    return reasons


def _redraw(n: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of ``n`` items is drawn in a resample of size ``n`` with replacement."""
    return rng.multinomial(n, np.full(n, 1.0 / n)).astype(np.float64) if n else np.zeros(0)


def _identity_draws(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, int] | None:
    """Integer codes of each comparison's two identities, or None when any is unknown."""
    a, b = frame["identity_a"], frame["identity_b"]
    if a.isna().any() or b.isna().any():
        return None
    codes, labels = pd.factorize(pd.concat([a, b], ignore_index=True).astype(str))
    n = len(frame)
    return codes[:n], codes[n:], len(labels)


def _interval_table(point, replicates, reasons, *, level, counts, method, n_boot) -> pd.DataFrame:
    rows = []
    alpha = (1 - level) / 2
    for name, value in point.items():
        reason = reasons.get(name)
        samples = np.array([r[name] for r in replicates], dtype=np.float64)
        samples = samples[np.isfinite(samples)]
        low = high = np.nan
        if reason is None and len(samples):
            low, high = (float(v) for v in np.quantile(samples, [alpha, 1 - alpha]))
        if reason is None and not np.isfinite(value):
            reason = "not defined on this data"
        rows.append(
            {
                "figure": name,
                "value": np.nan if reason else float(value),
                "low": np.nan if reason else low,
                "high": np.nan if reason else high,
                "level": level,
                **counts,
                "bootstrap": n_boot,
                "resampled": method,
                "reason": reason,
            }
        )
    return pd.DataFrame(rows)


def bootstrap_verification(
    frame: pd.DataFrame,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    threshold: float | None = None,
    fmr_targets: Sequence[float] = FMR_TARGETS,
) -> pd.DataFrame:
    """Verification figures with percentile confidence intervals from resampling identities.

    Figures: ``EER``; for each FMR target, ``threshold at FMR 1e-3`` and ``FNMR at FMR 1e-3``
    (the threshold re-derived in every replicate, so its interval says how well this data pins
    the operating point down); with ``threshold``, ``FMR at threshold`` and ``FNMR at threshold``.

    Returns one row per figure: ``figure``, ``value`` (the estimate on all the data), ``low``,
    ``high``, ``level``, ``genuine``, ``impostor``, ``identities`` (what it rests on),
    ``bootstrap`` (replicates), ``resampled`` (``"identities"``, or ``"comparisons"`` when the
    identities are not known), ``reason`` (why the figure is null, or None). ``n_boot=0``
    gives the estimates without intervals.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    mated = frame["mated"].to_numpy(bool)
    scores = frame["score"].to_numpy(np.float64)
    gen, imp = _Weighted(scores[mated]), _Weighted(scores[~mated])
    genuine, impostor = int(mated.sum()), int((~mated).sum())
    false_matches = None if threshold is None else int(np.sum(scores[~mated] >= threshold))
    ones_g, ones_i = np.ones(genuine), np.ones(impostor)
    point = _verification_figures(gen, ones_g, imp, ones_i, threshold, fmr_targets)
    draws = _identity_draws(frame)
    rng = np.random.default_rng(seed)
    replicates = []
    if draws is not None:
        code_a, code_b, n_ids = draws
        ga, ia, ib = code_a[mated], code_a[~mated], code_b[~mated]
        for _ in range(n_boot):
            m = _redraw(n_ids, rng)
            replicates.append(_verification_figures(gen, m[ga], imp, m[ia] * m[ib], threshold, fmr_targets))
        method = "identities"
    else:
        n_ids = 0
        for _ in range(n_boot):
            replicates.append(_verification_figures(gen, _redraw(genuine, rng), imp, _redraw(impostor, rng), threshold, fmr_targets))
        method = "comparisons (identities not known)"
    reasons = _verification_reasons(genuine, impostor, false_matches, fmr_targets)
    counts = {"genuine": genuine, "impostor": impostor, "identities": n_ids}
    return _interval_table(point, replicates, reasons, level=level, counts=counts, method=method, n_boot=n_boot)


# -- groups ---------------------------------------------------------------------------------------


def read_groups(path: str | Path) -> pd.DataFrame:
    """A metadata CSV: a column ``identity`` and any metadata columns (sex, age band, any code the
    unit keeps). Returns a frame indexed by identity, every value as text; blanks are
    :data:`NOT_RECORDED`.

    Raises:
        WorkbenchError: no such file, no ``identity`` column, no metadata column, or an identity
            listed twice.
    """
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"{path}: no such groups file (a CSV with a column identity and metadata columns)")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise WorkbenchError(f"{path}: cannot be read as a CSV ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    if "identity" not in frame.columns:
        raise WorkbenchError(f"{path}: needs a column 'identity' (got {', '.join(frame.columns) or 'no columns'})")
    if len(frame.columns) < 2:
        raise WorkbenchError(f"{path}: holds no metadata column besides 'identity'")
    frame["identity"] = frame["identity"].str.strip()
    twice = sorted(frame["identity"][frame["identity"].duplicated()].unique())
    if twice:
        raise WorkbenchError(f"{path}: identities listed more than once: {', '.join(twice[:5])}")
    frame = frame.set_index("identity")
    return frame.apply(lambda c: c.str.strip().replace("", NOT_RECORDED))


def _group_of(identities: pd.Series, groups: pd.DataFrame, column: str) -> pd.Series:
    mapping = groups[column].to_dict()
    return identities.map(lambda i: mapping.get(str(i), NOT_RECORDED) if i is not None else NOT_RECORDED)


def _group_row(column, group, threshold, *, genuine, false_non_matches, impostor, false_matches, target, what) -> dict:
    """One row of a group table: rates, counts, and why a rate is null."""
    genuine_what, impostor_what = what
    fnmr_reason = _genuine_reason(genuine, genuine_what) if genuine else f"no {genuine_what}"
    if impostor == 0:
        fmr_reason = f"no {impostor_what}"
    elif target is None or target <= 0:
        fmr_reason = "no false match at this threshold overall: the rate per group cannot be estimated"
    else:
        fmr_reason = _fmr_target_reason(target, impostor, impostor_what)
    reason = "; ".join(f"{name}: {text}" for name, text in (("FMR", fmr_reason), ("FNMR", fnmr_reason)) if text)
    return {
        "column": column,
        "group": group,
        "threshold": float(threshold),
        "fmr": None if fmr_reason else false_matches / impostor,
        "fnmr": None if fnmr_reason else false_non_matches / genuine,
        "genuine": int(genuine),
        "impostor": int(impostor),
        "false_matches": int(false_matches),
        "false_non_matches": int(false_non_matches),
        "fmr_reason": fmr_reason,
        "fnmr_reason": fnmr_reason,
        "reason": reason or None,
    }


def group_table(
    frame: pd.DataFrame,
    groups: pd.DataFrame,
    threshold: float,
    *,
    target_fmr: float | None = None,
    columns: Sequence[str] | None = None,
    n_boot: int = 0,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """FMR and FNMR per group of each metadata column at ``threshold``.

    A same-person pair counts for its person's group; a different-person pair for a group when
    both people are in it, and in an :data:`ACROSS_GROUPS` row otherwise. An FMR needs at least
    3/``target_fmr`` different-person comparisons in the group (default target: the FMR at
    ``threshold`` over all the data), an FNMR at least 30 same-person ones: below that the rate
    is None and ``reason`` says why; the counts are always there. With ``n_boot`` replicates
    (identities resampled) each rate gets a percentile interval, and :func:`group_ratios` one
    for the ratio: a group holds few people, and a ratio of two small counts is uncertain.

    Returns columns ``column``, ``group``, ``threshold``, ``fmr``, ``fnmr``, ``genuine``,
    ``impostor``, ``false_matches``, ``false_non_matches``, ``fmr_reason``, ``fnmr_reason``,
    ``reason``, ``fmr_low``, ``fmr_high``, ``fnmr_low``, ``fnmr_high``; one row per group,
    groups sorted, the across-groups row last.
    """
    if frame["identity_a"].isna().any() or frame["identity_b"].isna().any():
        raise WorkbenchError("per-group figures need each comparison's identities (pairs as identity/file paths)")
    columns = list(groups.columns) if columns is None else list(columns)
    unknown = [c for c in columns if c not in groups.columns]
    if unknown:
        raise WorkbenchError(f"no metadata column {', '.join(unknown)}; the groups file has {', '.join(groups.columns)}")
    mated = frame["mated"].to_numpy(bool)
    scores = frame["score"].to_numpy(np.float64)
    if target_fmr is None:
        target_fmr = float(np.mean(scores[~mated] >= threshold)) if (~mated).any() else None
    what = ("same-person comparisons", "different-person comparisons")
    rows, masks = [], []
    for column in columns:
        ga, gb = _group_of(frame["identity_a"], groups, column).to_numpy(), _group_of(frame["identity_b"], groups, column).to_numpy()
        for group in sorted(set(ga) | set(gb)):
            g_mask = mated & (ga == group)
            i_mask = ~mated & (ga == group) & (gb == group)
            masks.append((g_mask, i_mask))
            rows.append(
                _group_row(
                    column, group, threshold, genuine=int(g_mask.sum()), false_non_matches=int(np.sum(scores[g_mask] < threshold)),
                    impostor=int(i_mask.sum()), false_matches=int(np.sum(scores[i_mask] >= threshold)), target=target_fmr, what=what,
                )
            )  # fmt: skip
        across = ~mated & (ga != gb)
        if across.any():
            row = _group_row(
                column, ACROSS_GROUPS, threshold, genuine=0, false_non_matches=0, impostor=int(across.sum()),
                false_matches=int(np.sum(scores[across] >= threshold)), target=target_fmr, what=what,
            )  # fmt: skip
            row["fnmr_reason"] = "same-person comparisons are never across groups"
            row["reason"] = "; ".join(f"{n}: {t}" for n, t in (("FMR", row["fmr_reason"]), ("FNMR", row["fnmr_reason"])) if t)
            rows.append(row)
            masks.append((np.zeros(len(frame), bool), across))
    table = pd.DataFrame(rows, columns=_GROUP_COLUMNS)
    code_a, code_b, n_ids = _identity_draws(frame)

    def weights(rng):
        m = _redraw(n_ids, rng)
        return np.where(mated, m[code_a], m[code_a] * m[code_b])

    errors = (mated & (scores < threshold), ~mated & (scores >= threshold))
    return _group_intervals(table, masks, errors, weights, n_boot=n_boot, seed=seed, level=level)


_GROUP_COLUMNS = [
    "column", "group", "threshold", "fmr", "fnmr", "genuine", "impostor", "false_matches", "false_non_matches",
    "fmr_reason", "fnmr_reason", "reason", "fmr_low", "fmr_high", "fnmr_low", "fnmr_high",
]  # fmt: skip


def _group_intervals(table, masks, errors, weights, *, n_boot, seed, level) -> pd.DataFrame:
    """Percentile intervals of each group's rates over ``n_boot`` weightings (``weights(rng)``:
    one weight per comparison or search); the replicates go to ``table.attrs["replicates"]``
    for :func:`group_ratios`. Rates that are null stay without an interval."""
    misses, false_matches = errors
    draws = {"fnmr": np.full((n_boot, len(table)), np.nan), "fmr": np.full((n_boot, len(table)), np.nan)}
    rng = np.random.default_rng(seed)
    for r in range(n_boot):
        w = weights(rng)
        for i, (g_mask, i_mask) in enumerate(masks):
            wg, wi = w[g_mask].sum(), w[i_mask].sum()
            if wg:
                draws["fnmr"][r, i] = (w[g_mask] * misses[g_mask]).sum() / wg
            if wi:
                draws["fmr"][r, i] = (w[i_mask] * false_matches[i_mask]).sum() / wi
    alpha = (1 - level) / 2
    for rate in ("fmr", "fnmr"):
        low, high = [], []
        for i in range(len(table)):
            values = draws[rate][:, i]
            values = values[np.isfinite(values)]
            if n_boot and len(values) and table[rate].iloc[i] is not None and not pd.isna(table[rate].iloc[i]):
                lo, hi = np.quantile(values, [alpha, 1 - alpha])
                low.append(float(lo))
                high.append(float(hi))
            else:
                low.append(None)
                high.append(None)
        table[f"{rate}_low"], table[f"{rate}_high"] = low, high
    keys = zip(table["column"], table["group"])
    table.attrs["replicates"] = {(c, g): {rate: draws[rate][:, i] for rate in draws} for i, (c, g) in enumerate(keys)}
    table.attrs["level"] = level
    return table


def group_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """The worst group's rate over the best group's, per metadata column and rate (``fmr``,
    ``fnmr``), over the groups whose rate is not null (the across-groups row left out).

    Returns columns ``column``, ``rate``, ``worst_group``, ``worst``, ``best_group``, ``best``,
    ``ratio``, ``groups`` (how many groups had a rate), ``reason`` (why the ratio is None:
    fewer than two groups with a rate, or the best group has no errors at all), and
    ``ratio_low``, ``ratio_high``: its percentile interval when the table was made with
    bootstrap replicates (``ratio_high`` None when the best group had no errors in some of
    them: the interval is unbounded above).
    """
    replicates = table.attrs.get("replicates") or {}
    level = table.attrs.get("level", 0.95)
    rows = []
    for column in dict.fromkeys(table["column"]):
        part = table[(table["column"] == column) & (table["group"] != ACROSS_GROUPS)]
        for rate in ("fmr", "fnmr"):
            known = part[part[rate].notna()]
            row = {"column": column, "rate": rate, "worst_group": None, "worst": None, "best_group": None, "best": None,
                   "ratio": None, "groups": len(known), "reason": None}  # fmt: skip
            if len(known) < 2:
                row["reason"] = f"{len(known)} group(s) with enough comparisons for an {rate.upper()}; a ratio needs two"
            else:
                values = known[rate].astype(float)
                worst, best = known.loc[values.idxmax()], known.loc[values.idxmin()]
                row.update(worst_group=worst["group"], worst=float(worst[rate]), best_group=best["group"], best=float(best[rate]))
                if float(best[rate]) == 0.0:
                    row["reason"] = (
                        f"the best group ({best['group']}) has no errors at this threshold: the ratio is unbounded on this data"
                        if float(worst[rate]) > 0 else "no group has errors at this threshold"
                    )  # fmt: skip
                else:
                    row["ratio"] = float(worst[rate]) / float(best[rate])
            row["ratio_low"] = row["ratio_high"] = None
            if row["ratio"] is not None and (column, row["worst_group"]) in replicates:
                top = replicates[(column, row["worst_group"])][rate]
                bottom = replicates[(column, row["best_group"])][rate]
                keep = np.isfinite(top) & np.isfinite(bottom)
                if keep.any():
                    with np.errstate(divide="ignore", invalid="ignore"):
                        ratios = np.where(bottom[keep] > 0, top[keep] / np.where(bottom[keep] > 0, bottom[keep], 1), np.inf)
                    alpha = (1 - level) / 2
                    low, high = np.quantile(ratios, [alpha, 1 - alpha], method="inverted_cdf")  # no interpolation with inf
                    row["ratio_low"] = float(low) if np.isfinite(low) else None
                    row["ratio_high"] = float(high) if np.isfinite(high) else None
            rows.append(row)
    columns = ["column", "rate", "worst_group", "worst", "best_group", "best", "ratio", "ratio_low", "ratio_high", "groups", "reason"]
    return pd.DataFrame(rows, columns=columns)


# -- quality --------------------------------------------------------------------------------------

#: quality score cut-offs shown by default (the engine's score in [0, 1]).
QUALITY_CUTOFFS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
#: inter-ocular distance cut-offs (px) shown by default.
IOD_CUTOFFS = (0.0, 15.0, 20.0, 30.0, 40.0, 60.0, 90.0)


def quality_table(frame: pd.DataFrame, threshold: float, *, by: str = "quality", cutoffs: Sequence[float] | None = None) -> pd.DataFrame:
    """FNMR and FMR at ``threshold`` as comparisons whose lower face quality (``by="quality"``)
    or eye distance (``by="iod"``, px) is below each cut-off are excluded.

    Returns columns ``minimum`` (the cut-off), ``by``, ``kept`` (comparisons kept),
    ``excluded_share`` (share of comparisons excluded), ``genuine``, ``impostor``, ``fnmr``,
    ``fmr``, ``reason``. Comparisons whose quality is not known are kept only at cut-off 0.
    """
    if by not in ("quality", "iod"):
        raise ValueError(f"by must be 'quality' or 'iod', got {by!r}")
    cutoffs = (QUALITY_CUTOFFS if by == "quality" else IOD_CUTOFFS) if cutoffs is None else cutoffs
    values = frame[by].to_numpy(np.float64)
    mated, scores = frame["mated"].to_numpy(bool), frame["score"].to_numpy(np.float64)
    rows = []
    for minimum in cutoffs:
        keep = np.ones(len(frame), bool) if minimum <= 0 else (values >= minimum)
        g, i = mated & keep, ~mated & keep
        fm, fnm = int(np.sum(scores[i] >= threshold)), int(np.sum(scores[g] < threshold))
        fnmr_reason = _genuine_reason(int(g.sum()))
        fmr_reason = _false_match_reason(fm, int(i.sum()))
        rows.append(
            {
                "minimum": float(minimum),
                "by": by,
                "kept": int(keep.sum()),
                "excluded_share": float(1 - keep.mean()) if len(keep) else np.nan,
                "genuine": int(g.sum()),
                "impostor": int(i.sum()),
                "fnmr": None if fnmr_reason else fnm / int(g.sum()),
                "fmr": None if fmr_reason else fm / int(i.sum()),
                "reason": "; ".join(f"{n}: {t}" for n, t in (("FNMR", fnmr_reason), ("FMR", fmr_reason)) if t) or None,
            }
        )
    return pd.DataFrame(rows)


# -- identification, open set ---------------------------------------------------------------------


def identification_searches(
    scores: np.ndarray,
    probe_labels: Sequence[str],
    gallery_labels: Sequence[str],
    *,
    qualities: Sequence[float | None] | None = None,
    iods: Sequence[float | None] | None = None,
    failed_probe_labels: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per search: ``identity`` (the probe's), ``mated`` (True: the probe's identity is
    in the gallery and this is its search; False: a non-mated search: a probe not in the
    gallery, or a mated probe searched again without its own identity), ``mate_score`` and
    ``mate_rank`` (mated searches; a probe that failed to enrol scores -inf at rank inf),
    ``top_score`` (the best score of a non-mated search), ``quality``, ``iod``."""
    scores = np.asarray(scores, dtype=np.float64)
    gallery_labels = list(gallery_labels)
    column = {label: j for j, label in enumerate(gallery_labels)}
    if len(column) != len(gallery_labels):
        raise ValueError("gallery labels must be distinct (one column per identity)")
    n = len(probe_labels)
    qualities = [None] * n if qualities is None else list(qualities)
    iods = [None] * n if iods is None else list(iods)
    rows = []
    for i, label in enumerate(probe_labels):
        q = np.nan if qualities[i] is None else float(qualities[i])
        d = np.nan if iods[i] is None else float(iods[i])
        row = scores[i]
        if label in column:
            j = column[label]
            rows.append({"identity": label, "mated": True, "mate_score": float(row[j]), "mate_rank": float(1 + np.sum(row > row[j])),
                         "top_score": np.nan, "quality": q, "iod": d})  # fmt: skip
            others = np.delete(row, j)
            if others.size:
                rows.append({"identity": label, "mated": False, "mate_score": np.nan, "mate_rank": np.nan,
                             "top_score": float(others.max()), "quality": q, "iod": d})  # fmt: skip
        elif row.size:
            rows.append({"identity": label, "mated": False, "mate_score": np.nan, "mate_rank": np.nan,
                         "top_score": float(row.max()), "quality": q, "iod": d})  # fmt: skip
    for label in failed_probe_labels:
        if label in column:
            rows.append({"identity": label, "mated": True, "mate_score": -np.inf, "mate_rank": np.inf,
                         "top_score": np.nan, "quality": np.nan, "iod": np.nan})  # fmt: skip
    return pd.DataFrame(rows, columns=["identity", "mated", "mate_score", "mate_rank", "top_score", "quality", "iod"])


def searches_frame(result: dict) -> pd.DataFrame:
    """:func:`identification_searches` of an :func:`evaluate_identification` result made with
    ``return_scores``."""
    if "scores" not in result:
        raise WorkbenchError("the evaluation was run without its scores: call evaluate_identification(..., return_scores=True)")
    return identification_searches(
        np.asarray(result["scores"]), result["probe_labels"], result["gallery_labels"],
        qualities=result.get("probe_qualities"), iods=result.get("probe_iods"), failed_probe_labels=result.get("failed_probe_labels", ()),
    )  # fmt: skip


def open_set_rates(searches: pd.DataFrame, threshold: float, *, rank: int = CANDIDATE_LIST_LENGTH) -> dict:
    """FNIR at rank ``rank`` and ``threshold`` (the mate is not in the top ``rank`` at or above
    the threshold) and FPIR at ``threshold`` (a non-mated search returns any candidate at or
    above it), with the numbers of searches behind them."""
    mated, nonmated = searches[searches["mated"]], searches[~searches["mated"]]
    misses = int(np.sum(~((mated["mate_rank"] <= rank) & (mated["mate_score"] >= threshold))))
    false_alarms = int(np.sum(nonmated["top_score"] >= threshold))
    return {
        "threshold": float(threshold),
        "rank": int(rank),
        "fnir": misses / len(mated) if len(mated) else None,
        "fpir": false_alarms / len(nonmated) if len(nonmated) else None,
        "misses": misses,
        "false_alarms": false_alarms,
        "mated_searches": len(mated),
        "nonmated_searches": len(nonmated),
    }


def cmc_table(searches: pd.DataFrame, *, max_rank: int = CANDIDATE_LIST_LENGTH) -> pd.DataFrame:
    """Cumulative match characteristic: ``rank`` k, ``identification_rate`` (mate at rank k or
    better, any score), ``mated_searches``."""
    ranks = searches.loc[searches["mated"], "mate_rank"].to_numpy(np.float64)
    return pd.DataFrame(
        {
            "rank": np.arange(1, max_rank + 1),
            "identification_rate": [float(np.mean(ranks <= k)) if len(ranks) else np.nan for k in range(1, max_rank + 1)],
            "mated_searches": len(ranks),
        }
    )


def _identification_figures(mate_scores, mate_ranks, mate_w, top: _Weighted, top_w, threshold, targets) -> dict[str, float]:
    total = mate_w.sum()
    top_cum = top.cumulative(top_w)
    figures = {}
    for r in INVESTIGATION_RANKS:
        figures[f"FNIR at rank {r}, threshold 0"] = float(np.sum(mate_w * ~(mate_ranks <= r)) / total) if total else np.nan
    for target in targets:
        key = _target_key(target, fpir=True)
        t = top.threshold_at(top_cum, target)
        figures[f"threshold at FPIR {key}"] = t if np.isfinite(t) else np.nan
        hit = (mate_ranks <= CANDIDATE_LIST_LENGTH) & (mate_scores >= t)
        figures[f"FNIR at FPIR {key}"] = float(np.sum(mate_w * ~hit) / total) if total and not np.isnan(t) else np.nan
    if threshold is not None:
        figures["FPIR at threshold"] = float(top.share_at_or_above(top_cum, [threshold])[0])
        hit = (mate_ranks <= CANDIDATE_LIST_LENGTH) & (mate_scores >= threshold)
        figures["FNIR at threshold"] = float(np.sum(mate_w * ~hit) / total) if total else np.nan
    return figures


def bootstrap_identification(
    searches: pd.DataFrame,
    *,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    threshold: float | None = None,
    fpir_targets: Sequence[float] = FPIR_TARGETS,
) -> pd.DataFrame:
    """Identification figures with percentile intervals from resampling probe identities.

    Figures: ``FNIR at rank 1, threshold 0`` and ``... rank 20 ...`` (investigation mode), for
    each FPIR target the threshold and ``FNIR at FPIR 0.01`` (identification mode, top 20), and
    with ``threshold`` ``FPIR at threshold`` and ``FNIR at threshold``. Columns as
    :func:`bootstrap_verification` (``genuine``: mated searches; ``impostor``: non-mated ones).
    """
    mated = searches["mated"].to_numpy(bool)
    mate_scores = searches.loc[mated, "mate_score"].to_numpy(np.float64)
    mate_ranks = searches.loc[mated, "mate_rank"].to_numpy(np.float64)
    tops = searches.loc[~mated, "top_score"].to_numpy(np.float64)
    top = _Weighted(tops)
    n_mated, n_non = int(mated.sum()), int((~mated).sum())
    point = _identification_figures(mate_scores, mate_ranks, np.ones(n_mated), top, np.ones(n_non), threshold, fpir_targets)
    codes, labels = pd.factorize(searches["identity"].astype(str))
    n_ids = len(labels)
    rng = np.random.default_rng(seed)
    replicates = []
    for _ in range(n_boot):
        m = _redraw(n_ids, rng)
        replicates.append(
            _identification_figures(mate_scores, mate_ranks, m[codes[mated]], top, m[codes[~mated]], threshold, fpir_targets)
        )
    reasons: dict[str, str | None] = {}
    searches_what = ("mated searches", "non-mated searches")
    for r in INVESTIGATION_RANKS:
        reasons[f"FNIR at rank {r}, threshold 0"] = _genuine_reason(n_mated, searches_what[0])
    for target in fpir_targets:
        key = _target_key(target, fpir=True)
        reasons[f"threshold at FPIR {key}"] = _fmr_target_reason(target, n_non, searches_what[1])
        reasons[f"FNIR at FPIR {key}"] = reasons[f"threshold at FPIR {key}"] or _genuine_reason(n_mated, searches_what[0])
    if threshold is not None:
        reasons["FPIR at threshold"] = _false_match_reason(int(np.sum(tops >= threshold)), n_non, searches_what[1])
        reasons["FNIR at threshold"] = _genuine_reason(n_mated, searches_what[0])
    counts = {"genuine": n_mated, "impostor": n_non, "identities": n_ids}
    return _interval_table(point, replicates, reasons, level=level, counts=counts, method="identities", n_boot=n_boot)


def identification_group_table(
    searches: pd.DataFrame,
    groups: pd.DataFrame,
    threshold: float,
    *,
    rank: int = CANDIDATE_LIST_LENGTH,
    target_fpir: float | None = None,
    columns: Sequence[str] | None = None,
    n_boot: int = 0,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """FPIR and FNIR (rank ``rank``) per group of the probe's identity at ``threshold``; columns
    as :func:`group_table`, with ``fmr`` holding the FPIR, ``fnmr`` the FNIR, ``genuine`` the
    mated searches and ``impostor`` the non-mated ones (also under ``fpir`` and ``fnir``);
    intervals from resampling probe identities with ``n_boot``."""
    columns = list(groups.columns) if columns is None else list(columns)
    unknown = [c for c in columns if c not in groups.columns]
    if unknown:
        raise WorkbenchError(f"no metadata column {', '.join(unknown)}; the groups file has {', '.join(groups.columns)}")
    if target_fpir is None:
        tops = searches.loc[~searches["mated"], "top_score"]
        target_fpir = float(np.mean(tops >= threshold)) if len(tops) else None
    what = ("mated searches", "non-mated searches")
    mated = searches["mated"].to_numpy(bool)
    rows, masks = [], []
    for column in columns:
        group_of = _group_of(searches["identity"], groups, column).to_numpy()
        for group in sorted(set(group_of)):
            part = searches[group_of == group]
            r = open_set_rates(part, threshold, rank=rank)
            masks.append((mated & (group_of == group), ~mated & (group_of == group)))
            rows.append(
                _group_row(column, group, threshold, genuine=r["mated_searches"], false_non_matches=r["misses"],
                           impostor=r["nonmated_searches"], false_matches=r["false_alarms"], target=target_fpir, what=what)
            )  # fmt: skip
    table = pd.DataFrame(rows, columns=_GROUP_COLUMNS)
    hit = (searches["mate_rank"].to_numpy(np.float64) <= rank) & (searches["mate_score"].to_numpy(np.float64) >= threshold)
    errors = (mated & ~hit, ~mated & (searches["top_score"].to_numpy(np.float64) >= threshold))
    codes, labels = pd.factorize(searches["identity"].astype(str))
    table = _group_intervals(table, masks, errors, lambda rng: _redraw(len(labels), rng)[codes], n_boot=n_boot, seed=seed, level=level)
    table["fpir"], table["fnir"] = table["fmr"], table["fnmr"]
    return table


# -- JSON-ready reports for the command line -----------------------------------------------------


def records(frame: pd.DataFrame) -> list[dict]:
    """A DataFrame as JSON-ready rows: NaN and None as None, numpy numbers as Python ones."""

    def plain(value):
        if value is None:
            return None
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    return [{key: plain(value) for key, value in row.items()} for row in frame.to_dict("records")]


def verification_report(
    result: dict,
    *,
    threshold: float,
    threshold_source: str = "given",
    groups: pd.DataFrame | None = None,
    n_boot: int = 0,
    seed: int = 0,
    level: float = 0.95,
    target_fmr: float | None = None,
) -> dict:
    """What ``workbench evaluate pairs`` adds to the headline figures, JSON-ready.

    ``operating_point`` (FMR and FNMR at ``threshold``, with counts and why a rate is null),
    ``intervals`` (:func:`bootstrap_verification`), ``quality`` (:func:`quality_table`, by
    quality score and by eye distance), and with ``groups`` the per-group ``groups``
    (:func:`group_table`) and ``group_ratios``.
    """
    if threshold is None:
        raise WorkbenchError("no threshold to report rates at: give one (--threshold), or set the pack's (`workbench threshold set`)")
    frame = pairs_frame(result)
    point = rates(frame, [threshold]).iloc[0]
    operating = {
        "threshold": float(threshold),
        "source": threshold_source,
        "fmr": None,
        "fnmr": None,
        "false_matches": int(point["false_matches"]),
        "false_non_matches": int(point["false_non_matches"]),
        "genuine": int(point["genuine"]),
        "impostor": int(point["impostor"]),
    }
    fmr_reason = _false_match_reason(operating["false_matches"], operating["impostor"])
    fnmr_reason = _genuine_reason(operating["genuine"])
    operating["fmr"] = None if fmr_reason else float(point["fmr"])
    operating["fnmr"] = None if fnmr_reason else float(point["fnmr"])
    operating["reason"] = "; ".join(f"{n}: {t}" for n, t in (("FMR", fmr_reason), ("FNMR", fnmr_reason)) if t) or None
    report = {
        "operating_point": operating,
        "intervals": records(bootstrap_verification(frame, n_boot=n_boot, seed=seed, level=level, threshold=threshold)),
        "quality": records(pd.concat([quality_table(frame, threshold), quality_table(frame, threshold, by="iod")], ignore_index=True)),
    }
    if groups is not None:
        table = group_table(frame, groups, threshold, target_fmr=target_fmr, n_boot=n_boot, seed=seed, level=level)
        report["groups"] = records(table)
        report["group_ratios"] = records(group_ratios(table))
    return report


def identification_report(
    result: dict,
    *,
    threshold: float,
    threshold_source: str = "given",
    groups: pd.DataFrame | None = None,
    n_boot: int = 0,
    seed: int = 0,
    level: float = 0.95,
    target_fpir: float | None = None,
) -> dict:
    """What ``workbench evaluate identification`` adds: ``operating_point`` (FNIR at rank 20 and
    FPIR at ``threshold``), ``investigation`` (FNIR at ranks 1 and 20, threshold 0),
    ``intervals`` (:func:`bootstrap_identification`), ``quality`` (FNIR as probes below a quality
    are excluded) and with ``groups`` the per-group ``groups`` and ``group_ratios``."""
    if threshold is None:
        raise WorkbenchError("no threshold to report rates at: give one (--threshold), or set the pack's (`workbench threshold set`)")
    searches = searches_frame(result)
    operating = {**open_set_rates(searches, threshold), "source": threshold_source}
    fpir_reason = _false_match_reason(operating["false_alarms"], operating["nonmated_searches"], "non-mated searches")
    fnir_reason = _genuine_reason(operating["mated_searches"], "mated searches")
    operating["fpir"] = None if fpir_reason else operating["fpir"]
    operating["fnir"] = None if fnir_reason else operating["fnir"]
    operating["reason"] = "; ".join(f"{n}: {t}" for n, t in (("FPIR", fpir_reason), ("FNIR", fnir_reason)) if t) or None
    investigation = {f"fnir_rank{r}": open_set_rates(searches, -np.inf, rank=r)["fnir"] for r in INVESTIGATION_RANKS}
    quality_rows = []
    for by, cutoffs in (("quality", QUALITY_CUTOFFS), ("iod", IOD_CUTOFFS)):
        values = searches[by].to_numpy(np.float64)
        for minimum in cutoffs:
            kept = searches if minimum <= 0 else searches[values >= minimum]
            r = open_set_rates(kept, threshold)
            reason = _genuine_reason(r["mated_searches"], "mated searches")
            quality_rows.append({"minimum": float(minimum), "by": by, "kept": len(kept),
                                 "excluded_share": 1 - len(kept) / len(searches) if len(searches) else None,
                                 "genuine": r["mated_searches"], "impostor": r["nonmated_searches"],
                                 "fnmr": None if reason else r["fnir"], "fmr": r["fpir"], "reason": reason})  # fmt: skip
    report = {
        "operating_point": operating,
        "investigation": investigation,
        "intervals": records(bootstrap_identification(searches, n_boot=n_boot, seed=seed, level=level, threshold=threshold)),
        "quality": quality_rows,
    }
    if groups is not None:
        table = identification_group_table(searches, groups, threshold, target_fpir=target_fpir, n_boot=n_boot, seed=seed, level=level)
        report["groups"] = records(table)
        report["group_ratios"] = records(group_ratios(table))
    return report


def recommend_threshold(
    result: dict,
    *,
    target_fmr: float | None = None,
    target_fpir: float | None = None,
    groups: pd.DataFrame | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict:
    """A threshold for a target FMR (a pairs evaluation) or FPIR (an identification one), JSON-ready.

    ``threshold_observed`` is the lowest threshold meeting the target on this data;
    ``threshold`` is the same value, or None with a ``reason`` when the data holds too few
    different-person comparisons (non-mated searches) for the target (fewer than 3/target).
    ``threshold_interval`` is its bootstrap interval (identities resampled), ``expected_fnmr``
    (``expected_fnir`` at rank 20) the miss rate at it with ``fnmr_interval``; with ``groups``
    the per-group table and ratios at ``threshold_observed``, each rate marked where it rests
    on too few comparisons.
    """
    if (target_fmr is None) == (target_fpir is None):
        raise WorkbenchError("give a target FMR or a target FPIR (one of them)")
    target = float(target_fmr if target_fmr is not None else target_fpir)
    if not 0 < target < 1:
        raise WorkbenchError(f"a target rate must be between 0 and 1 (such as 1e-3), got {target}")
    verification = target_fmr is not None
    if verification:
        frame = pairs_frame(result)
        key = _target_key(target)
        observed = threshold_at_fmr(frame, target)
        table = bootstrap_verification(frame, n_boot=n_boot, seed=seed, level=level, fmr_targets=(target,))
        rows = table.set_index("figure")
        t_row, miss_row = rows.loc[f"threshold at FMR {key}"], rows.loc[f"FNMR at FMR {key}"]
        at = rates(frame, [observed]).iloc[0] if observed is not None else None
        miss_name, rate_name = "fnmr", "fmr"
        observed_rate = None if at is None else float(at["fmr"])
        observed_miss = None if at is None else float(at["fnmr"])
        counts = {"genuine": int(t_row["genuine"]), "impostor": int(t_row["impostor"])}
    else:
        searches = searches_frame(result)
        key = _target_key(target, fpir=True)
        tops = searches.loc[~searches["mated"], "top_score"].to_numpy(np.float64)
        observed = _finite(_threshold_at_fpir(tops, target))
        table = bootstrap_identification(searches, n_boot=n_boot, seed=seed, level=level, fpir_targets=(target,))
        rows = table.set_index("figure")
        t_row, miss_row = rows.loc[f"threshold at FPIR {key}"], rows.loc[f"FNIR at FPIR {key}"]
        at = open_set_rates(searches, observed) if observed is not None else None
        miss_name, rate_name = "fnir", "fpir"
        observed_rate = None if at is None else at["fpir"]
        observed_miss = None if at is None else at["fnir"]
        counts = {"genuine": int(t_row["genuine"]), "impostor": int(t_row["impostor"])}
    reason = t_row["reason"] if isinstance(t_row["reason"], str) else None
    plain = records(table)
    by_name = {r["figure"]: r for r in plain}
    t_plain, miss_plain = by_name[t_row.name], by_name[miss_row.name]
    recommendation = {
        "kind": "verification" if verification else "identification",
        "pack_id": result.get("pack_id"),
        "aligned": result.get("aligned"),
        f"target_{rate_name}": target,
        "threshold": None if reason else observed,
        "threshold_observed": observed,
        "threshold_interval": [t_plain["low"], t_plain["high"]],
        "level": level,
        f"expected_{miss_name}": miss_plain["value"],
        f"{miss_name}_interval": [miss_plain["low"], miss_plain["high"]],
        f"{miss_name}_observed": observed_miss,
        f"{rate_name}_observed": observed_rate,
        **counts,
        "identities": int(t_row["identities"]),
        "bootstrap": n_boot,
        "seed": seed,
        "reason": reason,
        "evaluation": {k: result[k] for k in ("accuracy", "auc", "eer", "pairs", "rank1", "rank10", "failed_to_enrol") if k in result},
        "intervals": plain,
    }
    if groups is not None and observed is not None:
        if verification:
            group_rows = group_table(frame, groups, observed, target_fmr=target, n_boot=n_boot, seed=seed, level=level)
        else:
            group_rows = identification_group_table(searches, groups, observed, target_fpir=target, n_boot=n_boot, seed=seed, level=level)
        recommendation["groups"] = records(group_rows)
        recommendation["group_ratios"] = records(group_ratios(group_rows))
    return recommendation


def write_scores_csv(result: dict, out: str | Path) -> Path:
    """Every comparison's score as CSV, so anyone can recompute a figure.

    Pairs: ``a, b, same, score, identity_a, identity_b, quality_a, quality_b`` (score -1 where
    a face failed to enrol). Identification: ``probe, probe_identity, gallery_identity, score,
    mated`` for every probe and gallery identity (score = max over that identity's images).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if "labels" in result:
        frame = pd.DataFrame(
            {
                "a": [a for a, _ in result["paths"]],
                "b": [b for _, b in result["paths"]],
                "same": result["labels"],
                "score": np.round(result["scores"], 6),
                "identity_a": result["identity_a"],
                "identity_b": result["identity_b"],
                "quality_a": result["quality_a"],
                "quality_b": result["quality_b"],
            }
        )
    elif "gallery_labels" in result:
        matrix = np.asarray(result["scores"], dtype=np.float64)
        gallery = result["gallery_labels"]
        frame = pd.DataFrame(
            [
                {"probe": path, "probe_identity": label, "gallery_identity": g, "score": round(float(matrix[i, j]), 6),
                 "mated": int(label == g)}  # fmt: skip
                for i, (path, label) in enumerate(zip(result["probe_paths"], result["probe_labels"]))
                for j, g in enumerate(gallery)
            ],
            columns=["probe", "probe_identity", "gallery_identity", "score", "mated"],
        )
    else:
        raise WorkbenchError("the evaluation was run without its scores: pass return_scores=True")
    frame.to_csv(out, index=False)
    return out


# ---------------------------------------------------------------------------------------------
# Plots: matplotlib figures for technical staff (made, never shown or saved here). The
# object-oriented Figure is used, not pyplot, so no global figure state is touched and plots
# can be drawn in a dashboard's worker thread.


def _figure(width_in: float = 5.6, height_in: float = 3.8):
    from matplotlib.figure import Figure  # only callers that plot pay for matplotlib

    return Figure(figsize=(width_in, height_in), layout="constrained")


def _split(scores: Sequence[float], same: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    scores, same = np.asarray(scores, dtype=np.float64), np.asarray(same, dtype=int)
    if scores.shape != same.shape or scores.ndim != 1:
        raise ValueError(f"scores and labels must be 1-D of equal length, got {scores.shape} and {same.shape}")
    return scores[same == 1], scores[same == 0]


def rates_at_threshold(scores: Sequence[float], same: Sequence[int], threshold: float) -> dict:
    """False match rate (non-mated scores >= threshold) and false non-match rate (mated scores
    below it) at one threshold, with the counts behind them."""
    mated, nonmated = _split(scores, same)
    false_matches, misses = int(np.sum(nonmated >= threshold)), int(np.sum(mated < threshold))
    return {
        "threshold": float(threshold),
        "fmr": false_matches / len(nonmated) if len(nonmated) else None,
        "fnmr": misses / len(mated) if len(mated) else None,
        "false_matches": false_matches,
        "false_non_matches": misses,
        "n_mated": len(mated),
        "n_nonmated": len(nonmated),
    }


def plot_score_distributions(
    scores: Sequence[float],
    same: Sequence[int],
    *,
    thresholds: dict[str, float | None] | None = None,
    title: str = "Comparison scores",
    mated_label: str = "same person (mated)",
    nonmated_label: str = "different people (non-mated)",
):
    """Histograms of mated and non-mated scores (cosine on x, share of each group on y), with a
    vertical line at each named threshold (None values are skipped)."""
    mated, nonmated = _split(scores, same)
    fig = _figure()
    ax = fig.add_subplot()
    bins = np.linspace(min(-0.2, float(np.min(scores, initial=0))), 1.0, 49)
    for values, label, colour in ((nonmated, nonmated_label, "tab:red"), (mated, mated_label, "tab:blue")):
        if len(values):
            share = np.full(len(values), 1 / len(values))  # each group sums to 1, whatever its size
            ax.hist(values, bins=bins, weights=share, alpha=0.55, color=colour, label=f"{label}, n={len(values)}")
    for (name, value), style in zip((thresholds or {}).items(), ("-", "--", ":", "-.")):
        if value is not None:
            ax.axvline(value, color="black", linestyle=style, linewidth=1, label=f"{name}: {value:.3f}")
    ax.set(xlabel="similarity score (cosine)", ylabel="share of each group", title=title)
    ax.legend(fontsize="small")
    return fig


def plot_roc(scores: Sequence[float], same: Sequence[int], *, title: str = "ROC: true match rate against false match rate"):
    """ROC with the false match rate on a log axis (where operating points lie), FMR targets marked."""
    _split(scores, same)
    fpr, tpr, _ = roc_curve(np.asarray(same, dtype=int), np.asarray(scores, dtype=np.float64))
    floor = 0.5 / max(1, int(np.sum(np.asarray(same) == 0)))  # FMR 0 drawn at half the smallest measurable rate
    fig = _figure()
    ax = fig.add_subplot()
    ax.step(np.maximum(fpr, floor), tpr, where="post", color="tab:blue")
    for target in FMR_TARGETS:
        ax.axvline(target, color="grey", linestyle=":", linewidth=1)
    ax.set_xscale("log")
    ax.set(xlim=(floor, 1.0), ylim=(0.0, 1.02), xlabel="false match rate (log)", ylabel="true match rate", title=title)
    ax.grid(alpha=0.3)
    return fig


def plot_det(
    scores: Sequence[float],
    same: Sequence[int],
    *,
    operating: dict[str, float | None] | None = None,
    title: str = "DET: false non-match rate against false match rate",
):
    """DET curve, both rates on log axes; a rate of 0 is drawn at half the smallest measurable one.

    ``operating``: named thresholds (None values skipped) marked on the curve at their FMR and
    FNMR on this data, e.g. ``{"operating threshold v3": 0.45}``.
    """
    mated, nonmated = _split(scores, same)
    fpr, tpr, _ = roc_curve(np.asarray(same, dtype=int), np.asarray(scores, dtype=np.float64))
    fmr_floor, fnmr_floor = 0.5 / max(1, len(nonmated)), 0.5 / max(1, len(mated))
    fig = _figure()
    ax = fig.add_subplot()
    ax.step(np.maximum(fpr, fmr_floor), np.maximum(1 - tpr, fnmr_floor), where="post", color="tab:purple")
    for (name, value), marker in zip((operating or {}).items(), ("o", "s", "^", "D")):
        if value is None:
            continue
        fmr = float(np.mean(nonmated >= value)) if len(nonmated) else 0.0
        fnmr = float(np.mean(mated < value)) if len(mated) else 0.0
        ax.plot(max(fmr, fmr_floor), max(fnmr, fnmr_floor), marker=marker, color="black", linestyle="none",
                label=f"{name} {value:.3f}: FMR {fmr:.2%}, FNMR {fnmr:.2%}")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlim=(fmr_floor, 1.0), ylim=(fnmr_floor, 1.0), xlabel="false match rate (log)", ylabel="false non-match rate (log)", title=title)
    ax.grid(alpha=0.3, which="both")
    if operating and any(v is not None for v in operating.values()):
        ax.legend(fontsize="small")
    return fig


def plot_cmc(cmc: Sequence[float], *, title: str = "CMC: mate found within the top k"):
    """Cumulative match characteristic: share of mated searches whose mate is at rank k or better."""
    ranks = np.arange(1, len(cmc) + 1)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(ranks, cmc, marker="o", color="tab:green")
    ax.set(xlim=(0.5, len(cmc) + 0.5), ylim=(0.0, 1.02), xlabel="rank k", ylabel="identification rate", title=title)
    ax.set_xticks(ranks[:: max(1, len(ranks) // 10)])
    ax.grid(alpha=0.3)
    return fig


def plot_group_rates(table: pd.DataFrame, *, column: str | None = None, title: str | None = None):
    """Bars of FMR (FPIR) and FNMR (FNIR) per group of one metadata column at the table's
    threshold (:func:`group_table`), each labelled with the comparisons it rests on. A rate that
    is null (too few comparisons) is drawn as an empty hatched bar marked "too few", never left out."""
    column = column or str(table["column"].iloc[0])
    part = table[table["column"] == column]
    fig = _figure(6.4, 3.8)
    axes = fig.subplots(1, 2)
    threshold = float(part["threshold"].iloc[0]) if len(part) else float("nan")
    for ax, rate, count, name, colour in (
        (axes[0], "fmr", "impostor", "false match rate", "tab:red"),
        (axes[1], "fnmr", "genuine", "false non-match rate", "tab:blue"),
    ):
        shown = part if rate == "fmr" else part[part["group"] != ACROSS_GROUPS]  # no same-person pair is across groups
        labels = [str(g) for g in shown["group"]]
        values = [None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v) for v in shown[rate]]
        known = [v for v in values if v is not None]
        top = max(known) * 1.25 if known and max(known) > 0 else (0.01 if known else 1.0)
        if not known:
            ax.set_yticks([])
        for x, (value, n) in enumerate(zip(values, shown[count])):
            if value is None:
                ax.bar(x, top, color="none", edgecolor="grey", hatch="//")
                ax.text(x, top / 2, f"too few\nn={n}", ha="center", va="center", fontsize="x-small", color="dimgrey")
            else:
                ax.bar(x, value, color=colour, alpha=0.75)
                ax.text(x, value, f"{value:.2%}\nn={n}", ha="center", va="bottom", fontsize="x-small")
        ax.set_xticks(range(len(labels)), labels, rotation=30 if max(map(len, labels), default=0) > 6 else 0, fontsize="small")
        ax.set(ylim=(0, top * 1.3), ylabel=name, title=name)
    fig.suptitle(title or f"By {column} at threshold {threshold:.3f}")
    return fig


def plot_quality(table: pd.DataFrame, *, title: str = "FNMR as low-quality probes are excluded"):
    """FNMR (left axis) and the share of comparisons excluded (right axis) against the minimum
    quality (:func:`quality_table`, one ``by`` value)."""
    fig = _figure()
    ax = fig.add_subplot()
    fnmr = [np.nan if v is None else float(v) for v in table["fnmr"]]
    ax.plot(table["minimum"], fnmr, marker="o", color="tab:blue", label="false non-match rate")
    ax.set(xlabel=f"minimum {'quality score' if table['by'].iloc[0] == 'quality' else 'eye distance (px)'}",
           ylabel="false non-match rate", title=title)  # fmt: skip
    twin = ax.twinx()
    twin.plot(table["minimum"], table["excluded_share"], marker=".", linestyle="--", color="grey", label="share excluded")
    twin.set(ylabel="share of comparisons excluded", ylim=(0, 1))
    ax.grid(alpha=0.3)
    fig.legend(loc="upper center", fontsize="small")
    return fig
