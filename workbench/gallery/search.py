"""Probe faces -> candidate list: nearest faces, per-subject scores, multi-face fusion, threshold.

How a search runs (:func:`search_many`; :func:`search` is the one-probe case):

1. All probe faces of all probes are stacked into one (P, D) matrix and checked against the
   gallery's pack (another pack is a :class:`PackMismatchError` naming both).
2. The gallery's live view proposes the nearest faces of each probe face: exact (numpy, one
   matrix-matrix pass for the whole batch) below ``settings.exact_search_below`` faces or when
   asked, else Annoy proposes from the index build; faces enrolled since the build are searched
   exactly and merged; removed faces never appear. With ``settings.search_shards >= 1`` the
   exact search runs on Dask workers, each holding a shard of the gallery
   (:mod:`.sharded`), with the same result as in this process; Annoy is then used only when
   asked (``exact=False``). Enough faces are asked for that each probe face sees ``top``
   distinct subjects (a subject may have several custody images).
3. For every subject proposed to any face of a probe, every stored face of that subject is
   scored exactly against every face of the probe: the subject's score per probe face is the
   max over their faces, and the probe's score is the max over its faces (fusion). Scores
   therefore never depend on the index; only which subjects are proposed can (a subject missed
   by Annoy for all faces of a probe is the "miss the index adds" that the benchmark measures).
4. Subjects are ranked by score (ties by subject id); investigation mode keeps ``top`` of them,
   identification mode keeps only those at or above the threshold.

A score is a lead for trained people to review, never an identification.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..config import Settings
from ..errors import GalleryError, ModelPackError, PackMismatchError
from ..types import Candidate, CandidateList, Face, PackId, Probe, SearchMode
from .store import Gallery, LiveView

#: faces asked per probe face at first: top x this (grown if too few distinct subjects come back).
FACES_PER_SUBJECT_GUESS = 3
#: with the index, stop growing the request beyond top x this (Annoy cannot return more than it explored).
MAX_INDEX_GROWTH = 64
#: Annoy nodes inspected per indexed face when ``index_search_k`` is left at its default (the
#: setting's fixed 4M lost mates as galleries grew: the misses follow the share of the gallery
#: Annoy looks at). SYNTHETIC SFace-like vectors, 16 trees, top-20 lists, ANN-added misses per
#: 1,000 mated probes: bench_index.py, 100k faces: 4.5 at 2 per face, 0 at 8; bench_sharded.py,
#: 1M faces (2 runs): 18 at 2 per face (6 of 336), 0 of 205 at 4, 0 of 77 at 8; bench_index.py at
#: 1M: 0 of 2,000 at 4. 8 per face meets the target of 1 per 1,000 at every size measured, with
#: a margin at 1M. At that setting the index is slower than exact search everywhere measured.
SEARCH_K_PER_FACE = 8


def operating_threshold(gallery: Gallery, threshold: float | None = None, *, pack_default: float | None = None) -> float | None:
    """The threshold to flag candidates: the argument, else settings.threshold, else the pack's default.

    ``pack_default`` saves reading the pack (callers holding an engine pass
    ``engine.pack.default_threshold``). None when nothing sets one.
    """
    if threshold is None:
        threshold = gallery.settings.threshold
    if threshold is None:
        threshold = pack_default if pack_default is not None else _pack_default_threshold(gallery)
    if threshold is None:
        return None
    threshold = float(threshold)
    if not -1.0 <= threshold <= 1.0:
        raise GalleryError(f"threshold must be a cosine in [-1, 1], got {threshold}")
    return threshold


def _pack_default_threshold(gallery: Gallery) -> float | None:
    pack = gallery.pack_id
    if pack is None:
        return None
    from ..models.packs import (  # loads onnxruntime; only reached without an engine
        MANIFEST,
        read_pack,
    )

    if not (gallery.settings.models_dir / pack.name / MANIFEST).exists():
        return None  # never convert or import a pack just to read a threshold
    try:
        info = read_pack(gallery.settings.models_dir, pack.name)
    except ModelPackError:
        return None
    return info.default_threshold if info.pack_id == pack else None


def search(
    gallery: Gallery,
    probe_faces: Face | Sequence[Face],
    *,
    top: int | None = None,
    threshold: float | None = None,
    mode: SearchMode | str = SearchMode.INVESTIGATION,
    exact: bool | None = None,
) -> CandidateList:
    """Search the faces of one person; their scores fuse into one candidate list.

    Args:
        gallery: an open gallery.
        probe_faces: one face, or several faces of the same person (a track, several stills),
            each with an embedding of the gallery's pack.
        top: list length (default ``settings.top``).
        threshold: operating threshold (cosine); default ``settings.threshold`` or the pack's.
        mode: investigation (fixed-length list) or identification (only above threshold).
        exact: True: exact search; False: use the index whenever a build exists; None: exact
            below ``settings.exact_search_below`` faces, the index above.

    Raises:
        PackMismatchError: a probe face comes from another pack than the gallery's.
        GalleryError: the gallery is empty, or identification mode without a threshold.
    """
    faces = (probe_faces,) if isinstance(probe_faces, Face) else tuple(probe_faces)
    return search_many(gallery, [faces], top=top, threshold=threshold, mode=mode, exact=exact)[0]


def search_many(
    gallery: Gallery,
    probes: Sequence[Probe | Face | Sequence[Face]],
    *,
    top: int | None = None,
    threshold: float | None = None,
    mode: SearchMode | str = SearchMode.INVESTIGATION,
    exact: bool | None = None,
    pack_default: float | None = None,
) -> list[CandidateList]:
    """One candidate list per probe (each probe = one person), all searched in one batch.

    Arguments as :func:`search`; ``pack_default`` as :func:`operating_threshold`.
    """
    groups = [_faces_of(p) for p in probes]
    top = gallery.settings.top if top is None else int(top)
    if top < 1:
        raise GalleryError(f"top must be at least 1, got {top}")
    mode = SearchMode.parse(mode)
    live = gallery.live()
    if live.count == 0 or live.pack_id is None:
        raise GalleryError(f"the gallery in {gallery.settings.home} is empty: enrol custody images first (`workbench gallery enrol DIR`)")
    matrix = _probe_matrix(groups, live)
    threshold = operating_threshold(gallery, threshold, pack_default=pack_default)
    if mode is SearchMode.IDENTIFICATION and threshold is None:
        raise GalleryError("identification mode needs an operating threshold: pass --threshold or set `threshold` in workbench.toml")
    sharded = gallery.settings.search_shards >= 1 and exact is not False
    use_index = not sharded and live.build is not None and (exact is False or (exact is None and gallery.uses_index(live)))
    face_ids, _, rows = _nearest_subjects(gallery, live, matrix, top, use_index, sharded)
    bounds = np.cumsum([0] + [len(g) for g in groups])
    proposed = [
        {s for r in range(bounds[g], bounds[g + 1]) for s in _distinct_subjects(face_ids[r], rows, top)}
        for g in range(len(groups))
    ]
    subjects, stored_ids, image_ids, embeddings = gallery.subject_faces(sorted(set().union(*proposed)))
    store = (np.asarray(subjects, dtype=object), stored_ids, image_ids, embeddings)
    results = []
    for g, wanted in enumerate(proposed):
        probe_matrix = matrix[bounds[g] : bounds[g + 1]]
        candidates = _rank(wanted, store, probe_matrix, top, threshold, mode)
        if isinstance(probes[g], Probe):
            candidates = [dataclasses.replace(c, probe_id=probes[g].probe_id) for c in candidates]
        results.append(
            CandidateList(
                candidates=tuple(candidates), pack_id=live.pack_id, threshold=threshold, mode=mode,
                method="index" if use_index else "exact", gallery_faces=live.count, probe_faces=len(groups[g]),
            )
        )
    return results


def _faces_of(probe) -> tuple[Face, ...]:
    if isinstance(probe, Probe):
        return probe.faces
    if isinstance(probe, Face):
        return (probe,)
    faces = tuple(probe)
    if not faces:
        raise GalleryError("a probe needs at least one face")
    return faces


def _probe_matrix(groups: list[tuple[Face, ...]], live: LiveView) -> np.ndarray:
    """(P, D) float32 of every probe face, after checking each came from the gallery's pack."""
    gallery_pack: PackId = live.pack_id
    rows = []
    for faces in groups:
        for face in faces:
            if not isinstance(face, Face) or face.embedding is None or face.pack_id is None:
                raise GalleryError("probe faces must be Face objects with an embedding and a pack id (FaceEngine.analyse gives them)")
            if face.pack_id != gallery_pack:
                raise PackMismatchError(
                    f"probe embedded with pack {face.pack_id.short}, but the gallery was enrolled with pack {gallery_pack.short}; "
                    f"search with `--pack {gallery_pack.name}`"
                )
            rows.append(face.embedding)
    matrix = np.stack(rows).astype(np.float32)
    dim = live.pending.shape[1] if len(live.pending_ids) else live.build.embeddings.shape[1]
    if matrix.shape[1] != dim:
        raise PackMismatchError(f"probe embeddings have {matrix.shape[1]} values, the gallery's pack {gallery_pack} has {dim}")
    return matrix


def index_search_k(settings: Settings, indexed_faces: int) -> int:
    """Annoy nodes to inspect per query: ``settings.index_search_k`` if set, else
    :data:`SEARCH_K_PER_FACE` x the faces in the build (at least a top list's worth)."""
    if settings.index_search_k is not None:
        return int(settings.index_search_k)
    return max(SEARCH_K_PER_FACE * int(indexed_faces), FACES_PER_SUBJECT_GUESS * settings.top)


def _nearest_subjects(gallery: Gallery, live: LiveView, matrix: np.ndarray, top: int, use_index: bool, sharded: bool = False):
    """Nearest faces of each probe face, asking for more until each sees ``top`` subjects.

    ``sharded``: exact search on the Dask shards (:mod:`.sharded`) instead of this process.

    Returns (face_ids (P, k), scores (P, k), face id -> (subject id, image id)).
    """
    k = min(live.count, FACES_PER_SUBJECT_GUESS * top)
    limit = live.count if not use_index else min(live.count, MAX_INDEX_GROWTH * top)
    search_k = index_search_k(gallery.settings, live.build.count) if use_index else -1
    while True:
        if sharded:
            from .sharded import nearest_faces  # imports dask: only when shards are asked for

            face_ids, scores = nearest_faces(gallery.settings, live, matrix, k)
        else:
            face_ids, scores = live.nearest_faces(matrix, k, use_index=use_index, search_k=search_k)
        rows = gallery.face_rows(np.unique(face_ids[face_ids >= 0]))
        short = any(len(_distinct_subjects(ids, rows, top)) < top for ids in face_ids)
        if not short or k >= limit:
            return face_ids, scores, rows
        k = min(limit, k * 4)


def _distinct_subjects(face_ids: np.ndarray, rows: dict, top: int) -> list[str]:
    """The first ``top`` distinct subjects in a best-first face list (faces gone from the store skipped)."""
    seen: dict[str, None] = {}
    for face_id in face_ids:
        row = rows.get(int(face_id))
        if row is not None and row[0] not in seen:
            seen[row[0]] = None
            if len(seen) == top:
                break
    return list(seen)


def _rank(wanted, store, probe_matrix, top, threshold, mode) -> list[Candidate]:
    """Exact per-subject scores against every probe face, fused by max, ranked and cut.

    ``store``: (subject ids, face ids, image ids, (N, D) embeddings) of the proposed subjects' faces.
    """
    if not wanted:
        return []
    subjects, face_ids, image_ids, embeddings = store
    keep = np.isin(subjects, list(wanted))
    scores = embeddings[keep] @ probe_matrix.T  # (faces of wanted subjects, probe faces)
    owners, faces, images = subjects[keep], face_ids[keep], image_ids[keep]
    best: dict[str, tuple[float, int, np.ndarray]] = {}
    for subject in wanted:
        mine = np.flatnonzero(owners == subject)
        if not len(mine):
            continue  # removed between proposal and scoring
        per_probe = scores[mine].max(axis=0)
        fused_row = mine[int(np.argmax(scores[mine].max(axis=1)))]
        best[subject] = (float(per_probe.max()), fused_row, per_probe)
    order = sorted(best, key=lambda s: (-best[s][0], s))
    candidates = []
    for subject in order:
        score, row, per_probe = best[subject]
        above = None if threshold is None else bool(score >= threshold)
        if mode is SearchMode.IDENTIFICATION and not above:
            break  # ranked best first: nothing further clears the threshold
        candidates.append(
            Candidate(
                rank=len(candidates) + 1, subject_id=subject, score=score, image_id=int(images[row]),
                face_id=int(faces[row]), above_threshold=above, per_probe_scores=tuple(float(s) for s in per_probe),
            )
        )
        if len(candidates) == top:
            break
    return candidates


def search_probes(gallery: Gallery, probes: Sequence[Probe], **kwargs) -> list[tuple[Probe, CandidateList]]:
    """:func:`search_many` for :class:`Probe` objects, returned best quality first (stable)."""
    ordered = sorted(probes, key=lambda p: -(p.quality if p.quality is not None else -1.0))
    return list(zip(ordered, search_many(gallery, ordered, **kwargs)))

