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
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from annoy import AnnoyIndex

from ..errors import GalleryError
from ..fileio import atomic_write, fsync_dir, sha256_file
from ..types import PackId

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
    """
    probes = np.ascontiguousarray(probes, dtype=np.float32)
    n_rows, n_probes = len(matrix), len(probes)
    visible = n_rows - (int(hidden.sum()) if hidden is not None else 0)
    k = max(0, min(int(k), visible))
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
            part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
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
        keep = np.argpartition(-cand_scores, k - 1, axis=1)[:, :k]
        best_rows = np.take_along_axis(cand_rows, keep, axis=1)
        best_scores = np.take_along_axis(cand_scores, keep, axis=1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    return np.take_along_axis(best_rows, order, axis=1), np.take_along_axis(best_scores, order, axis=1)


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
        rows = self.annoy.get_nns_by_vector(probe.astype(np.float32).tolist(), int(n), search_k=int(search_k))
        return np.asarray(rows, dtype=np.int64)

    def rows_of(self, face_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, found) for face ids: row numbers in this build, and which ids it holds."""
        face_ids = np.asarray(face_ids, dtype=np.int64)
        rows = np.searchsorted(self.face_ids, face_ids)
        rows = np.minimum(rows, max(len(self.face_ids) - 1, 0))
        found = (self.face_ids[rows] == face_ids) if len(self.face_ids) else np.zeros(len(face_ids), bool)
        return rows, found

    def close(self) -> None:
        self.annoy.unload()


def read_manifest(index_dir: Path) -> dict | None:
    """The manifest in use, or None when no index was ever built.

    Raises:
        GalleryError: the manifest exists but cannot be read (it is only ever replaced whole, so
            this means it was edited or the disk is failing).
    """
    path = Path(index_dir) / MANIFEST
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        manifest = json.loads(text)
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}")
        for key in ("build_id", "folder", "pack_id", "count", "dim", "n_trees", "max_face_id", "files"):
            if key not in manifest:
                raise ValueError(f"key {key!r} missing")
    except (ValueError, AttributeError) as exc:
        raise GalleryError(f"{path}: index manifest is unreadable ({exc}); run `workbench gallery rebuild`") from exc
    return manifest


def load_build(index_dir: Path) -> IndexBuild | None:
    """The build the manifest names, memory-mapped, or None when there is none.

    Raises:
        GalleryError: the manifest names files that are missing or of the wrong size.
    """
    for attempt in range(2):
        manifest = read_manifest(index_dir)
        if manifest is None:
            return None
        folder = Path(index_dir) / manifest["folder"]
        try:
            return _open_build(manifest, folder)
        except FileNotFoundError:
            # A rebuild swapped the manifest and deleted this folder between our two reads.
            if attempt == 1:
                raise GalleryError(f"{folder}: index files named by {MANIFEST} are missing; run `workbench gallery rebuild`") from None
    return None  # pragma: no cover (the loop returns or raises)


def _open_build(manifest: dict, folder: Path) -> IndexBuild:
    for name, info in manifest["files"].items():
        size = (folder / name).stat().st_size  # FileNotFoundError handled by the caller
        if size != info["bytes"]:
            raise GalleryError(f"{folder / name}: {size} bytes, the manifest says {info['bytes']}; run `workbench gallery rebuild`")
    annoy = AnnoyIndex(int(manifest["dim"]), "angular")
    try:
        annoy.load(str(folder / ANN_FILE), prefault=False)
    except OSError as exc:
        raise GalleryError(f"{folder / ANN_FILE}: Annoy cannot load it ({exc}); run `workbench gallery rebuild`") from exc
    embeddings = np.load(folder / EMBEDDINGS_FILE, mmap_mode="r")
    face_ids = np.load(folder / FACE_IDS_FILE)
    expected = (int(manifest["count"]), int(manifest["dim"]))
    if embeddings.shape != expected or face_ids.shape != expected[:1] or annoy.get_n_items() != expected[0]:
        annoy.unload()
        raise GalleryError(
            f"{folder}: index holds {annoy.get_n_items()} items and arrays {embeddings.shape}, {face_ids.shape}; "
            f"the manifest says {expected}; run `workbench gallery rebuild`"
        )
    return IndexBuild(manifest, folder, annoy, embeddings, face_ids)


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
        self.tmp.mkdir(parents=True)
        self.started = time.monotonic()
        self.embeddings: np.ndarray | None = None
        self.face_ids: np.ndarray | None = None

    def allocate(self, count: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
        """(embeddings (count, dim) float32 memmap, face_ids (count,) int64) for the caller to fill.

        The embeddings go straight to the build's file, so a million rows never sit in RAM twice.
        """
        self.embeddings = np.lib.format.open_memmap(self.tmp / EMBEDDINGS_FILE, mode="w+", dtype=np.float32, shape=(count, dim))
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
        annoy = AnnoyIndex(dim, "angular")
        annoy.set_seed(ANNOY_SEED)
        annoy.on_disk_build(str(self.tmp / ANN_FILE))
        for i in range(count):
            annoy.add_item(i, self.embeddings[i])
        annoy.build(int(n_trees), n_jobs=n_jobs)
        annoy.unload()

    def commit(self, manifest_fields: dict) -> dict:
        """fsync, rename the folder, atomically replace the manifest, delete older builds.

        Returns the manifest written.
        """
        files = {}
        for name in (ANN_FILE, EMBEDDINGS_FILE, FACE_IDS_FILE):
            path = self.tmp / name
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
        atomic_write(self.index_dir / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode(), mode=0o644)
        remove_unused_builds(self.index_dir, keep=self.final.name)
        return manifest


@contextlib.contextmanager
def new_build(index_dir: Path) -> Iterator[BuildWriter]:
    """Hold the index lock, yield a :class:`BuildWriter`, clean up its temp folder on failure."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with _index_lock(index_dir):
        # Leftovers of builds that crashed: safe to delete, we hold the lock.
        remove_unused_builds(index_dir, keep=_current_folder(index_dir))
        writer = BuildWriter(index_dir)
        try:
            yield writer
        except BaseException:
            if writer.embeddings is not None:
                del writer.embeddings
            shutil.rmtree(writer.tmp, ignore_errors=True)
            raise


def clear_index(index_dir: Path) -> None:
    """Drop the index entirely (the gallery became empty): manifest first, then every build."""
    index_dir = Path(index_dir)
    if not index_dir.exists():
        return
    with _index_lock(index_dir):
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
        manifest = read_manifest(index_dir)
    except GalleryError:
        return None
    return manifest["folder"] if manifest else None


@contextlib.contextmanager
def _index_lock(index_dir: Path) -> Iterator[None]:
    """One rebuild at a time per workspace; a second waits for the first (flock, freed on crash)."""
    with open(index_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# Files


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
