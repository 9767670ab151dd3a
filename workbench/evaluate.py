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
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from .errors import WorkbenchError

#: progress callback: (done, total) images.
Progress = Callable[[float, float], None]
from .images import IMAGE_SUFFIXES

FMR_TARGETS = (1e-2, 1e-3)
FPIR_TARGET = 0.01
CANDIDATE_LIST_LENGTH = 20
FAILED_SCORE = -1.0


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
    threshold = _threshold_at_fpir(np.array(nonmated_top), FPIR_TARGET)
    hit = (ranks <= CANDIDATE_LIST_LENGTH) & (mates >= threshold)
    return {
        "rank1": float(np.mean(ranks <= 1)),
        "rank10": float(np.mean(ranks <= 10)),
        "cmc": [float(np.mean(ranks <= k)) for k in range(1, CANDIDATE_LIST_LENGTH + 1)],
        "fnir_at_fpir": {"0.01": float(1 - hit.mean())},
        "threshold_at_fpir": {"0.01": _finite(threshold)},
        "n_mated": n_mated,
        "n_nonmated_searches": len(nonmated_top),
        "gallery_identities": len(gallery_labels),
    }


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
    """Embeddings of a set of image files; failures keep their reason."""

    embeddings: dict[str, np.ndarray] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


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
    if progress is not None:
        progress(len(paths), len(paths))
    return result


def read_pairs(pairs_csv: Path, images_dir: Path) -> list[tuple[Path, Path, int]]:
    """Rows of a pairs CSV (columns a, b, same) with paths resolved against ``images_dir``."""
    pairs_csv, images_dir = Path(pairs_csv), Path(images_dir)
    if not pairs_csv.exists():
        raise WorkbenchError(f"{pairs_csv}: no such pairs file")
    with open(pairs_csv, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"a", "b", "same"} - set(reader.fieldnames or [])
        if missing:
            raise WorkbenchError(f"{pairs_csv}: missing column(s) {', '.join(sorted(missing))}; expected a,b,same")
        pairs = []
        for line, row in enumerate(reader, start=2):
            if row["same"].strip() not in {"0", "1"}:
                raise WorkbenchError(f"{pairs_csv}, line {line}: same must be 1 or 0, got {row['same']!r}")
            pairs.append((images_dir / row["a"].strip(), images_dir / row["b"].strip(), int(row["same"])))
    if not pairs:
        raise WorkbenchError(f"{pairs_csv}: holds no pairs")
    return pairs


def evaluate_pairs(
    engine, pairs_csv: Path, images_dir: Path, *, aligned: bool = False, progress: Progress | None = None, return_scores: bool = False
) -> dict:
    """Verification figures for the pairs in ``pairs_csv`` (see the module docstring).

    ``return_scores`` adds ``scores`` (cosine per pair, in file order, -1 for a failure to
    enrol) and ``labels`` (1 same person, 0 not), for plots.
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
        result.update(scores=scores, labels=labels)
    return result


def labelled_images(folder: Path) -> list[tuple[str, Path]]:
    """(identity, image path) for every image in each sub-folder of ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WorkbenchError(f"{folder}: not a folder; expected one sub-folder per identity")
    items = [
        (sub.name, path)
        for sub in sorted(p for p in folder.iterdir() if p.is_dir())
        for path in sorted(sub.iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not items:
        raise WorkbenchError(f"{folder}: no images found in sub-folders (one sub-folder per identity)")
    return items


def evaluate_identification(
    engine, gallery_dir: Path, probes_dir: Path, *, aligned: bool = False, progress: Progress | None = None, return_scores: bool = False
) -> dict:
    """Identification figures: every probe against every gallery identity (exact search).

    ``return_scores`` adds ``scores`` (probes x gallery identities, cosine, max over each
    identity's images; probes that failed to enrol left out), ``probe_labels`` and
    ``gallery_labels``, for plots.
    """
    gallery = labelled_images(gallery_dir)
    probes = labelled_images(probes_dir)
    n_gallery, n_probes = len(gallery), len(probes)
    g = embed_images(engine, [p for _, p in gallery], aligned=aligned, progress=progress and (lambda d, _t: progress(d, n_gallery + n_probes)))
    p = embed_images(engine, [p for _, p in probes], aligned=aligned, progress=progress and (lambda d, _t: progress(n_gallery + d, n_gallery + n_probes)))
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
        result.update(scores=scores.tolist(), probe_labels=[label for label, _ in probe_items], gallery_labels=identities)
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


def plot_det(scores: Sequence[float], same: Sequence[int], *, title: str = "DET: false non-match rate against false match rate"):
    """DET curve, both rates on log axes; a rate of 0 is drawn at half the smallest measurable one."""
    mated, nonmated = _split(scores, same)
    fpr, tpr, _ = roc_curve(np.asarray(same, dtype=int), np.asarray(scores, dtype=np.float64))
    fmr_floor, fnmr_floor = 0.5 / max(1, len(nonmated)), 0.5 / max(1, len(mated))
    fig = _figure()
    ax = fig.add_subplot()
    ax.step(np.maximum(fpr, fmr_floor), np.maximum(1 - tpr, fnmr_floor), where="post", color="tab:purple")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set(xlim=(fmr_floor, 1.0), ylim=(fnmr_floor, 1.0), xlabel="false match rate (log)", ylabel="false non-match rate (log)", title=title)
    ax.grid(alpha=0.3, which="both")
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
