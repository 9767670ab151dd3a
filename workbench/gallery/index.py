"""The gallery's search structures: Annoy index builds on disk, and exact top-k in numpy.

This is the only module that imports ``annoy``. It knows nothing of SQLite: :mod:`.gallery`
feeds it face ids and embeddings and asks it for neighbours.

Files under ``<home>/index/``::

    manifest.json               the build in use; replaced atomically (temp file + os.replace)
    build-<id>/faces.ann        Annoy index (angular); item i is row i of the two arrays below
    build-<id>/embeddings.npy   (N, D) float32, L2-normalised; memory-mapped for exact re-ranking
    build-<id>/face_ids.npy     (N,) int64, ascending: the store's face id of each item
    .build-<id>.tmp/            a build being written; never read, removed by the next rebuild
    .lock                       held (flock) while a rebuild writes or cleans up

Crash safety: a build is written into its ``.tmp`` folder, every file is fsynced, the folder is
renamed to ``build-<id>``, and only then ``manifest.json`` is replaced. A crash before that
replace leaves the previous manifest pointing at the previous, complete build; a crash after it
leaves the new build in use and, at worst, old folders on disk that the next rebuild deletes.
Readers never look at a folder that no manifest names.

Readers and the swap: a process that loaded a build keeps its memory maps even after a rebuild
deletes the folder (POSIX keeps an unlinked file alive while mapped). A reader that reads the
manifest just before the old folder is deleted finds the files gone and reads the manifest again
(:func:`load_build`). Old builds are deleted right after the swap, and not kept for slow
readers, because they hold the embeddings of subjects removed since: a removal must reach the
index files at the next rebuild.

Scores: Annoy's angular distance d between unit vectors converts to cosine as ``1 - d*d/2``; we
never rely on it and re-rank Annoy's proposals with exact float32 dot products instead.

Damage: a build whose files are missing, of the wrong size, unreadable (a damaged ``.npy``
header, an Annoy file of garbage) or inconsistent with its manifest is not used: loading it
raises :class:`GalleryError`, which the gallery turns into exact search with a logged warning
until ``gallery rebuild``. A rebuild that fails (disk full, file size limit) removes what it
wrote and leaves the previous build in use. Every file is owner-only (0600, folders 0700).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

from ..errors import GalleryError
from ..fileio import (
    PRIVATE_DIR,
    PRIVATE_FILE,
    PathProblem,
    atomic_write,
    fsync_dir,
    make_private_dir,
    os_reason,
    private_umask,
    sha256_file,
)
from ..types import PackId

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
ANN_FILE = "faces.ann"
EMBEDDINGS_FILE = "embeddings.npy"
FACE_IDS_FILE = "face_ids.npy"
LOCK_FILE = ".lock"
#: Annoy's random seed: the same data and parameters give the same index file.
ANNOY_SEED = 1234
#: gallery rows per matrix product in exact search, whatever the gallery size.
EXACT_CHUNK_ROWS = 65_536
#: most scores held at once in exact search (64 MB of float32): big batches take fewer rows per product.
BLOCK_VALUES = 1 << 24
#: rows of the first exact-search chunk, which seeds the running top-k (see exact_topk).
SEED_ROWS = 4096
#: rows per slab when looking for the rare scores above a probe's running k-th best.
SPARSE_GROUP = 64
#: rows selected beyond k in exact search, then rescored exactly and cut (see exact_topk).
TIE_SLACK = 8


# ---------------------------------------------------------------------------------------------
# Exact search


def exact_topk(
    matrix: np.ndarray,
    probes: np.ndarray,
    k: int,
    *,
    hidden: np.ndarray | None = None,
    chunk_rows: int = EXACT_CHUNK_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """The k rows of ``matrix`` most similar to each probe, by exact cosine (dot product).

    Args:
        matrix: (N, D) float32 L2-normalised gallery embeddings (an array or a read-only memmap).
        probes: (P, D) float32 L2-normalised probe embeddings; all are searched in one pass over
            the gallery (matrix-matrix products), which is what makes batches cheap: the gallery
            is read from memory once for the whole batch instead of once per probe.
        k: rows wanted per probe (fewer if the gallery holds fewer visible rows).
        hidden: optional (N,) bool, True for rows to leave out (removed records).
        chunk_rows: gallery rows per product (shrunk for big batches to bound the score block).

    Returns:
        (rows, scores): (P, k') int64 row numbers and float32 cosines, best first, k' <= k.
        Scores are :func:`canonical_scores` and ties go to the lower row, so any split of the
        matrix into parts searched apart and merged by (score, row) gives the same answer
        (what :mod:`.sharded` relies on).
    """
    probes = np.ascontiguousarray(probes, dtype=np.float32)
    n_rows, n_probes = len(matrix), len(probes)
    visible = n_rows - (int(hidden.sum()) if hidden is not None else 0)
    wanted = max(0, min(int(k), visible))
    # Selection uses BLAS products, whose rounding depends on where a row falls in a block
    # (1 ulp); a few extra rows, rescored canonically, make the cut independent of blocking.
    k = min(wanted + TIE_SLACK, visible) if wanted else 0
    if k == 0 or n_probes == 0:
        return np.zeros((n_probes, 0), np.int64), np.zeros((n_probes, 0), np.float32)
    chunk_rows = max(k, min(chunk_rows, BLOCK_VALUES // n_probes))
    # A small first chunk seeds each probe's k-th best score cheaply (a partition of
    # SEED_ROWS x P values); later chunks are only compared against the running k-th best, and
    # grow from double the seed to chunk_rows, so hits stay rare as the threshold rises.
    starts, size = [0], max(k, min(chunk_rows, SEED_ROWS))
    while starts[-1] + size < n_rows:
        starts.append(starts[-1] + size)
        size = min(chunk_rows, 2 * size)
    best_rows = np.full((n_probes, k), -1, np.int64)
    best_scores = np.full((n_probes, k), -np.inf, np.float32)
    for start, stop in zip(starts, starts[1:] + [n_rows]):
        block = np.asarray(matrix[start:stop], dtype=np.float32)
        scores = probes @ block.T  # (P, rows): one probe's scores contiguous
        if hidden is not None:
            scores[:, hidden[start : start + len(block)]] = -np.inf
        if start == 0:
            take = min(k, len(block))
            part = _first_rows(scores, take)
            best_rows[:, :take] = part
            best_scores[:, :take] = np.take_along_axis(scores, part, axis=1)
            continue
        # Only scores above a probe's current k-th best can enter its list: after the first
        # chunk these are few, so a comparison replaces a partition of the whole block.
        kth = best_scores.min(axis=1)
        hit_probe, hit_row = _above(scores, kth, sparse=k * SPARSE_GROUP < start)
        if not len(hit_probe):
            continue
        # Merge each probe's hits into its list, all probes at once: pad to the longest.
        counts = np.bincount(hit_probe, minlength=n_probes)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        slot = k + np.arange(len(hit_probe)) - first[hit_probe]
        width = k + int(counts.max())
        cand_rows = np.full((n_probes, width), -1, np.int64)
        cand_scores = np.full((n_probes, width), -np.inf, np.float32)
        cand_rows[:, :k], cand_scores[:, :k] = best_rows, best_scores
        cand_rows[hit_probe, slot] = hit_row + start
        cand_scores[hit_probe, slot] = scores[hit_probe, hit_row]
        keep = np.lexsort((cand_rows, -cand_scores), axis=1)[:, :k]  # ties: the lower row stays
        best_rows = np.take_along_axis(cand_rows, keep, axis=1)
        best_scores = np.take_along_axis(cand_scores, keep, axis=1)
    best_scores = canonical_scores(matrix, probes, best_rows)
    order = np.lexsort((best_rows, -best_scores), axis=1)[:, :wanted]
    return np.take_along_axis(best_rows, order, axis=1), np.take_along_axis(best_scores, order, axis=1)


def canonical_scores(matrix: np.ndarray, probes: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(P, k) float32 cosines of ``rows`` (P, k) of ``matrix`` against their probes (P, D).

    Computed as an element-wise product summed along D (numpy's fixed pairwise order), so a
    row's score does not depend on which block or shard it was read in, unlike a BLAS product.
    """
    flat = np.asarray(rows, np.int64).ravel()
    order = np.argsort(flat, kind="stable")  # ascending rows read a memory map in file order
    vectors = np.empty((len(flat), matrix.shape[1]), np.float32)
    vectors[order] = np.asarray(matrix[flat[order]], dtype=np.float32)
    vectors = vectors.reshape(*rows.shape, matrix.shape[1])
    return (vectors * probes[:, None, :]).sum(axis=2, dtype=np.float32)


def _first_rows(scores: np.ndarray, take: int) -> np.ndarray:
    """(P, take) columns of the best scores of each row of ``scores`` (P, n); ties at the cut go
    to the lower column (a partition, and a full sort only for probes with such a tie)."""
    part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
    if take == scores.shape[1]:
        return part
    kept = np.take_along_axis(scores, part, axis=1)
    kth = kept.min(axis=1)
    tied_kept = (kept == kth[:, None]).sum(axis=1)
    tied_all = (scores == kth[:, None]).sum(axis=1)
    for probe in np.flatnonzero(tied_all > tied_kept):
        part[probe] = np.lexsort((np.arange(scores.shape[1]), -scores[probe]))[:take]
    return part


def _above(scores: np.ndarray, kth: np.ndarray, *, sparse: bool, group: int = SPARSE_GROUP) -> tuple[np.ndarray, np.ndarray]:
    """(probe, row) of every score above its probe's ``kth``, grouped by probe.

    Hits are rare (about k x rows / rows-seen per probe), so instead of listing a full
    (P, rows) boolean mask, the rows are cut into ``group`` slabs, the element-wise max of the
    slabs is compared first (contiguous SIMD work, several times cheaper than ``nonzero``), and
    only the columns that hold a hit are looked at. That pays only when under about one score in
    ``group`` is a hit (``sparse``: k / rows seen < 1 / group); early chunks list the mask.
    """
    n_probes, n_rows = scores.shape
    if not sparse:
        return np.nonzero(scores > kth[:, None])
    width = n_rows // group
    whole = width * group
    probes_hit, rows_hit = [], []
    if whole:
        slabs = scores[:, :whole].reshape(n_probes, group, width)  # row = slab * width + column
        run_probe, column = np.nonzero(slabs.max(axis=1) > kth[:, None])
        if len(run_probe):
            inside = slabs[run_probe, :, column] > kth[run_probe, None]  # (H, group)
            which, slab = np.nonzero(inside)
            probes_hit.append(run_probe[which])
            rows_hit.append(slab * width + column[which])
    if whole < n_rows:
        tail_probe, tail_row = np.nonzero(scores[:, whole:] > kth[:, None])
        probes_hit.append(tail_probe)
        rows_hit.append(tail_row + whole)
    if not probes_hit:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    probe, row = np.concatenate(probes_hit), np.concatenate(rows_hit)
    order = np.argsort(probe, kind="stable")
    return probe[order], row[order]


# ---------------------------------------------------------------------------------------------
# Loaded builds


@dataclass
class IndexBuild:
    """One build, loaded: the Annoy index and the arrays, all memory-mapped.

    Attributes:
        manifest: the manifest that named this build.
        folder: the build's folder.
        annoy: the Annoy index (mmapped by ``AnnoyIndex.load``; pages load on first touch).
        embeddings: (N, D) float32 read-only memmap, row i = Annoy item i.
        face_ids: (N,) int64 ascending, row i = Annoy item i.
    """

    manifest: dict
    folder: Path
    annoy: AnnoyIndex
    embeddings: np.ndarray
    face_ids: np.ndarray

    @property
    def build_id(self) -> str:
        return self.manifest["build_id"]

    @property
    def count(self) -> int:
        return int(self.manifest["count"])

    @property
    def max_face_id(self) -> int:
        return int(self.manifest["max_face_id"])

    @property
    def pack_id(self) -> str:
        return self.manifest["pack_id"]

    def query(self, probe: np.ndarray, n: int, search_k: int) -> np.ndarray:
        """Row numbers of up to ``n`` items Annoy proposes for one (D,) probe.

        ``search_k``: nodes Annoy inspects (-1 = its default, n * n_trees); more = fewer misses,
        slower.
        """
        rows = np.asarray(self.annoy.get_nns_by_vector(probe.astype(np.float32).tolist(), int(n), search_k=int(search_k)), np.int64)
        return rows[(rows >= 0) & (rows < self.count)]  # a damaged file must not index outside the arrays

    def rows_of(self, face_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, found) for face ids: row numbers in this build, and which ids it holds."""
        face_ids = np.asarray(face_ids, dtype=np.int64)
        rows = np.searchsorted(self.face_ids, face_ids)
        rows = np.minimum(rows, max(len(self.face_ids) - 1, 0))
        found = (self.face_ids[rows] == face_ids) if len(self.face_ids) else np.zeros(len(face_ids), bool)
        return rows, found

    def close(self) -> None:
        self.annoy.unload()


def read_manifest(index_dir: Path, *, warn: bool = True) -> dict | None:
    """The manifest in use, or None when no index was ever built.

    Raises:
        GalleryError: the manifest exists but cannot be read (it is only ever replaced whole, so
            this means it was edited or the disk is failing).
    """
    path = Path(index_dir) / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise _damaged(f"{path}: index manifest cannot be read ({exc}); run `workbench gallery rebuild`", warn) from exc
    try:
        manifest = json.loads(text)
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}")
        for key in ("build_id", "folder", "pack_id", "count", "dim", "n_trees", "max_face_id", "files"):
            if key not in manifest:
                raise ValueError(f"key {key!r} missing")
    except (ValueError, AttributeError, TypeError) as exc:
        raise _damaged(f"{path}: index manifest is unreadable ({exc}); run `workbench gallery rebuild`", warn) from exc
    return manifest


def _damaged(message: str, warn: bool = True) -> GalleryError:
    """The error for an index that cannot be used, logged as a warning: searches fall back to
    exact search over the stored faces until the next rebuild."""
    if warn:
        log.warning("%s (searching exactly meanwhile)", message)
    return GalleryError(message)


def load_build(index_dir: Path) -> IndexBuild | None:
    """The build the manifest names, memory-mapped, or None when there is none.

    Raises:
        GalleryError: the manifest names files that are missing or of the wrong size.
    """
    for attempt in range(2):
        manifest = read_manifest(index_dir)
        if manifest is None:
            return None
        folder = Path(index_dir) / str(manifest["folder"])
        if Path(str(manifest["folder"])).name != str(manifest["folder"]) or not str(manifest["folder"]).startswith("build-"):
            raise _damaged(
                f"{index_dir / MANIFEST}: names the build folder {manifest['folder']!r}, not one of its own; "
                "run `workbench gallery rebuild`"
            )
        try:
            return _open_build(manifest, folder)
        except FileNotFoundError:
            # A rebuild swapped the manifest and deleted this folder between our two reads.
            if attempt == 1:
                raise _damaged(f"{folder}: index files named by {MANIFEST} are missing; run `workbench gallery rebuild`") from None
        except (OSError, ValueError, TypeError, KeyError, EOFError) as exc:
            raise _damaged(f"{folder}: index files cannot be read ({exc}); run `workbench gallery rebuild`") from exc
    return None  # pragma: no cover (the loop returns or raises)


#: rows of a build whose Annoy vectors are compared with the embeddings when it is loaded.
CHECK_ROWS = 8


def _open_build(manifest: dict, folder: Path) -> IndexBuild:
    """Load a build, checking it against its manifest first (sizes, array headers and types,
    Annoy's item count, a sample of Annoy's vectors against the embeddings).

    Raises:
        FileNotFoundError: a file is gone (a rebuild may have swapped the build meanwhile).
        GalleryError: anything else wrong with it.
    """
    rebuild = "run `workbench gallery rebuild`"
    for name in (ANN_FILE, EMBEDDINGS_FILE, FACE_IDS_FILE):
        if name not in manifest["files"]:
            raise _damaged(f"{folder}: the manifest lists no {name}; {rebuild}")
    for name, info in manifest["files"].items():
        size = (folder / name).stat().st_size  # FileNotFoundError handled by the caller
        if size != info["bytes"]:
            raise _damaged(f"{folder / name}: {size} bytes, the manifest says {info['bytes']}; {rebuild}")
    expected = (int(manifest["count"]), int(manifest["dim"]))
    try:
        embeddings = np.load(folder / EMBEDDINGS_FILE, mmap_mode="r", allow_pickle=False)
        face_ids = np.load(folder / FACE_IDS_FILE, allow_pickle=False)
    except FileNotFoundError:
        raise
    except Exception as exc:  # numpy's header parser raises ValueError, SyntaxError, TokenError, UnicodeError...
        raise _damaged(f"{folder}: an index array is damaged ({type(exc).__name__}: {exc}); {rebuild}") from exc
    if embeddings.dtype != np.float32 or face_ids.dtype != np.int64:
        raise _damaged(f"{folder}: index arrays are {embeddings.dtype} and {face_ids.dtype}, expected float32 and int64; {rebuild}")
    if embeddings.shape != expected or face_ids.shape != expected[:1]:
        raise _damaged(f"{folder}: index arrays are {embeddings.shape} and {face_ids.shape}; the manifest says {expected}; {rebuild}")
    if len(face_ids) > 1 and np.any(np.diff(face_ids) <= 0):
        raise _damaged(f"{folder / FACE_IDS_FILE}: face ids are not ascending; {rebuild}")
    annoy = AnnoyIndex(expected[1], "angular")
    try:
        annoy.load(str(folder / ANN_FILE), prefault=False)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise _damaged(f"{folder / ANN_FILE}: Annoy cannot load it ({exc}); {rebuild}") from exc
    problem = _annoy_problem(annoy, manifest, embeddings)
    if problem:
        annoy.unload()
        raise _damaged(f"{folder / ANN_FILE}: {problem}; {rebuild}")
    return IndexBuild(manifest, folder, annoy, embeddings, face_ids)


def _annoy_problem(annoy: AnnoyIndex, manifest: dict, embeddings: np.ndarray) -> str | None:
    """Why the loaded Annoy file does not describe these embeddings (garbage, another build), or None."""
    count = int(manifest["count"])
    if annoy.get_n_items() != count:
        return f"holds {annoy.get_n_items()} items, the manifest says {count}"
    for row in np.unique(np.linspace(0, count - 1, num=min(count, CHECK_ROWS)).astype(np.int64)) if count else []:
        stored = np.asarray(annoy.get_item_vector(int(row)), np.float32)
        if stored.shape != (embeddings.shape[1],) or not np.allclose(stored, embeddings[row], atol=1e-5):
            return f"item {row} differs from the build's embeddings (damaged or replaced)"
    return None


def verify_build(index_dir: Path) -> list[str]:
    """Recompute the sha256 of every file of the build in use; the problems found (empty = intact)."""
    manifest = read_manifest(index_dir)
    if manifest is None:
        return []
    folder = Path(index_dir) / manifest["folder"]
    problems = []
    for name, info in sorted(manifest["files"].items()):
        path = folder / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != info["sha256"]:
            problems.append(f"{path}: sha256 differs from {MANIFEST}")
    return problems


# ---------------------------------------------------------------------------------------------
# What search sees


@dataclass
class LiveView:
    """What a search may return right now, in the layout search needs.

    Attributes:
        pack_id: the gallery's pack (None when empty).
        build: the usable index build (same pack), or None.
        hidden: (build.count,) bool, True for build rows removed since the build; None without a build.
        pending_ids: (M,) int64 face ids not in the build (all faces when there is no build).
        pending: (M, D) float32 their embeddings.
        count: live faces in all.
        index_problem: why an existing index is not used, or None.
    """

    pack_id: PackId | None
    build: IndexBuild | None
    hidden: np.ndarray | None
    pending_ids: np.ndarray
    pending: np.ndarray
    count: int
    index_problem: str | None = None
    state: tuple = field(default=(), repr=False)

    @property
    def hidden_count(self) -> int:
        return int(self.hidden.sum()) if self.hidden is not None else 0

    def nearest_faces(self, probes: np.ndarray, k: int, *, use_index: bool, search_k: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to k live face ids per probe, by cosine, best first.

        Args:
            probes: (P, D) float32 L2-normalised.
            k: faces wanted per probe.
            use_index: True: Annoy proposes from the build and exact dot products re-rank;
                False: exact over every live face (one matrix-matrix pass for all probes).
            search_k: Annoy nodes inspected per probe (-1 = Annoy's default).

        Returns:
            (face_ids, scores): (P, k) int64 and float32, padded with -1 and -inf where fewer
            faces exist.
        """
        n_probes = len(probes)
        parts_ids, parts_scores = [], []
        build = self.build
        if build is not None and build.count:
            if use_index:
                ids, scores = self._annoy_topk(probes, k, search_k)
            else:
                rows, scores = exact_topk(build.embeddings, probes, k, hidden=self.hidden)
                ids = build.face_ids[rows]
            parts_ids.append(ids)
            parts_scores.append(scores)
        if len(self.pending_ids):
            rows, scores = exact_topk(self.pending, probes, k)
            parts_ids.append(self.pending_ids[rows])
            parts_scores.append(scores)
        return _merge_topk(parts_ids, parts_scores, n_probes, k)

    def _annoy_topk(self, probes: np.ndarray, k: int, search_k: int) -> tuple[np.ndarray, np.ndarray]:
        build = self.build
        # Ask for enough that removed rows cannot push live ones off the list.
        n = min(build.count, k + self.hidden_count)
        out_ids = np.full((len(probes), k), -1, np.int64)
        out_scores = np.full((len(probes), k), -np.inf, np.float32)
        for p, probe in enumerate(probes):
            rows = build.query(probe, n, search_k)
            if self.hidden is not None and len(rows):
                rows = rows[~self.hidden[rows]]
            if not len(rows):
                continue
            rows = np.sort(rows)  # ascending rows read the memory-mapped matrix in file order
            scores = np.asarray(build.embeddings[rows], np.float32) @ probe
            order = np.argsort(-scores, kind="stable")[:k]
            out_ids[p, : len(order)] = build.face_ids[rows[order]]
            out_scores[p, : len(order)] = scores[order]
        return out_ids, out_scores


def _merge_topk(parts_ids, parts_scores, n_probes: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-part top-k lists into one (P, k) list, padded with -1 / -inf."""
    ids = np.full((n_probes, k), -1, np.int64)
    scores = np.full((n_probes, k), -np.inf, np.float32)
    if not parts_ids:
        return ids, scores
    all_ids = np.concatenate([_pad(a, k, -1) for a in parts_ids], axis=1)
    all_scores = np.concatenate([_pad(s, k, -np.inf) for s in parts_scores], axis=1)
    order = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
    ids[:, : order.shape[1]] = np.take_along_axis(all_ids, order, axis=1)
    scores[:, : order.shape[1]] = np.take_along_axis(all_scores, order, axis=1)
    return ids, scores


def _pad(array: np.ndarray, k: int, value) -> np.ndarray:
    if array.shape[1] >= k:
        return array
    pad = np.full((array.shape[0], k - array.shape[1]), value, array.dtype)
    return np.concatenate([array, pad], axis=1)


# ---------------------------------------------------------------------------------------------
# Building


class BuildWriter:
    """A build being written in ``.build-<id>.tmp``; :meth:`commit` makes it the one in use.

    Use through :func:`new_build`, which holds the index lock and removes the temporary folder
    if anything fails (or the process is interrupted) before the commit.
    """

    def __init__(self, index_dir: Path):
        self.index_dir = Path(index_dir)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.build_id = f"{stamp}-{secrets.token_hex(3)}"
        self.tmp = self.index_dir / f".build-{self.build_id}.tmp"
        self.final = self.index_dir / f"build-{self.build_id}"
        make_private_dir(self.index_dir)
        self.tmp.mkdir(mode=PRIVATE_DIR)
        os.chmod(self.tmp, PRIVATE_DIR)
        self.started = time.monotonic()
        self.embeddings: np.ndarray | None = None
        self.face_ids: np.ndarray | None = None

    def allocate(self, count: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings (count, dim) float32 memmap, face_ids (count,) int64) for the caller to fill.

        The embeddings go straight to the build's file, so a million rows never sit in RAM twice.
        The file's blocks are reserved first: a disk that fills up (or a file-size limit) is then
        an OSError here, not a SIGBUS when the memory map is written.

        Raises:
            OSError: the file cannot be created at its full size (disk full, size limit).
        """
        path = self.tmp / EMBEDDINGS_FILE
        self.embeddings = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, dim))
        _reserve(path)
        self.face_ids = np.zeros(count, np.int64)
        return self.embeddings, self.face_ids

    def build(self, *, n_trees: int, n_jobs: int = -1) -> None:
        """Write the Annoy index of the allocated rows (Annoy builds on disk, not in RAM)."""
        if self.embeddings is None or self.face_ids is None:
            raise GalleryError("internal: allocate() the rows before building the index")
        if len(self.face_ids) > 1 and np.any(np.diff(self.face_ids) <= 0):
            raise GalleryError("internal: face ids of an index build must be strictly ascending")
        count, dim = self.embeddings.shape
        np.save(self.tmp / FACE_IDS_FILE, self.face_ids)
        self.embeddings.flush()
        _build_annoy_in_child(self.tmp, int(n_trees), int(n_jobs))

    def commit(self, manifest_fields: dict) -> dict:
        """fsync, rename the folder, atomically replace the manifest, delete older builds.

        Returns the manifest written.
        """
        files = {}
        for name in (ANN_FILE, EMBEDDINGS_FILE, FACE_IDS_FILE):
            path = self.tmp / name
            os.chmod(path, PRIVATE_FILE)  # embeddings are biometric data: owner-only whatever the umask
            _fsync_file(path)
            files[name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        fsync_dir(self.tmp)
        os.rename(self.tmp, self.final)
        fsync_dir(self.index_dir)
        count, dim = self.embeddings.shape
        manifest = {
            "format": MANIFEST_FORMAT,
            "build_id": self.build_id,
            "folder": self.final.name,
            "count": int(count),
            "dim": int(dim),
            "metric": "angular",
            "max_face_id": int(self.face_ids[-1]) if count else 0,
            "files": files,
            "built_utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "build_seconds": round(time.monotonic() - self.started, 3),
            **manifest_fields,
        }
        atomic_write(self.index_dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
        remove_unused_builds(self.index_dir, keep=self.final.name)
        return manifest


@contextlib.contextmanager
def new_build(index_dir: Path) -> Iterator[BuildWriter]:
    """Hold the index lock, yield a :class:`BuildWriter`, clean up on failure.

    Whatever fails before the manifest names the new build (disk full, a file size limit, an
    interruption) removes the new build's files and leaves the previous build in use.

    Raises:
        GalleryError: the index folder or the build's files cannot be written (naming why).
    """
    index_dir = Path(index_dir)
    try:
        with private_umask(), _index_lock(index_dir):
            # Leftovers of builds that crashed: safe to delete, we hold the lock.
            remove_unused_builds(index_dir, keep=_current_folder(index_dir))
            writer = BuildWriter(index_dir)
            try:
                yield writer
            except BaseException:
                writer.embeddings = None  # drop the memory map before deleting its file
                shutil.rmtree(writer.tmp, ignore_errors=True)
                if writer.final.exists() and _current_folder(index_dir) != writer.final.name:
                    shutil.rmtree(writer.final, ignore_errors=True)  # renamed, but the manifest never named it
                raise
    except OSError as exc:
        raise GalleryError(
            f"{index_dir}: cannot write the index build ({_os_text(exc)}); the previous index is kept and searches go on"
        ) from exc


def _os_text(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{exc.filename}: {os_reason(exc)}"
    return os_reason(exc) if exc.errno is not None else str(exc)


def clear_index(index_dir: Path) -> None:
    """Drop the index entirely (the gallery became empty): manifest first, then every build."""
    index_dir = Path(index_dir)
    if not index_dir.exists():
        return
    with private_umask(), _index_lock(index_dir):
        (index_dir / MANIFEST).unlink(missing_ok=True)
        fsync_dir(index_dir)
        remove_unused_builds(index_dir, keep=None)


def remove_unused_builds(index_dir: Path, *, keep: str | None) -> list[str]:
    """Delete every build folder and temp folder except ``keep``; the names deleted."""
    removed = []
    for path in Path(index_dir).iterdir():
        if path.is_dir() and path.name != keep and (path.name.startswith("build-") or path.name.startswith(".build-")):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path.name)
    return removed


def _current_folder(index_dir: Path) -> str | None:
    try:
        manifest = read_manifest(index_dir, warn=False)
    except GalleryError:
        return None
    return manifest["folder"] if manifest else None


@contextlib.contextmanager
def _index_lock(index_dir: Path) -> Iterator[None]:
    """One rebuild at a time per workspace; a second waits for the first (flock, freed on crash)."""
    make_private_dir(index_dir)
    with open(index_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_annoy_in_child(folder: Path, n_trees: int, n_jobs: int) -> None:
    """Write ``faces.ann`` from ``embeddings.npy`` in ``folder``, in a child process.

    Annoy's on-disk build grows its file with ``ftruncate`` and writes through a memory map,
    and does not stop when the file cannot grow (disk full, file-size limit): the writing
    process dies of SIGBUS. In a child, that death is a clean error here, and the previous
    index stays in use. (Building in memory instead would need the whole index in RAM.)

    Raises:
        OSError: the child could not write the file (the reason, and the file, named).
    """
    code = (
        "import signal; signal.signal(signal.SIGINT, signal.SIG_DFL)\n"  # Ctrl-C: the parent reports it, once
        "from workbench.gallery.index import _annoy_child_main; _annoy_child_main()"
    )
    package_root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run(
        [sys.executable, "-c", code, str(folder), str(n_trees), str(n_jobs)], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode == 0:
        return
    target = str(folder / ANN_FILE)
    if proc.returncode == -signal.SIGINT:
        raise KeyboardInterrupt
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        why = (
            "the disk is full or the file size limit was reached (the index writer was stopped by SIGBUS)"
            if name == "SIGBUS"
            else f"the index writer was stopped by {name}"
        )
        raise PathProblem(errno.EIO, why, target)
    detail = (proc.stderr.strip().splitlines() or ["no message"])[-1]
    raise PathProblem(errno.EIO, f"the index writer failed ({detail})", target)


def _annoy_child_main() -> None:
    """The child of :func:`_build_annoy_in_child`: ``argv`` = folder, n_trees, n_jobs."""
    folder, n_trees, n_jobs = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    try:
        embeddings = np.load(folder / EMBEDDINGS_FILE, mmap_mode="r")
        count, dim = embeddings.shape
        annoy = AnnoyIndex(dim, "angular")
        annoy.set_seed(ANNOY_SEED)
        annoy.on_disk_build(str(folder / ANN_FILE))
        for i in range(count):
            annoy.add_item(i, embeddings[i])
        annoy.build(n_trees, n_jobs=n_jobs)
        annoy.unload()
    except Exception as exc:  # reported by the parent, one line
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)


# ---------------------------------------------------------------------------------------------
# Files


def _reserve(path: Path) -> None:
    """Allocate the blocks of a file at its current size (no holes left to fill later)."""
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        if size and hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(fd, 0, size)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # file systems without it: nothing to reserve
                    raise OSError(exc.errno, exc.strerror, str(path)) from exc
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
