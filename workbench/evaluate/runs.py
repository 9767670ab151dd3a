"""Running a pack over labelled images: the most prominent face of each image embedded once,
then the verification figures of a pairs CSV, or the identification figures of a gallery
folder against a probe folder (exact search), with the per-pair and per-probe details the
tables read (:func:`~workbench.evaluate.pairs_frame`, :func:`~workbench.evaluate.searches_frame`).

An image where no face is found or that cannot be read fails to enrol: the pairs that involve
it score :data:`FAILED_SCORE` (a certain non-match), and a mated probe that failed counts as a
miss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import WorkbenchError
from ..types import FaceQuality
from .datasets import labelled_images, read_pairs
from .metrics import identification_metrics, verification_metrics

#: progress callback: (done, total) images.
Progress = Callable[[float, float], None]

FAILED_SCORE = -1.0


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
