"""Exact gallery search sharded over Dask workers, identical to single-process exact search.

Used by :mod:`.search` when ``settings.search_shards >= 1``. The workers are those of
:func:`workbench.cluster.dask_client`: a LocalCluster of ``settings.dask_workers`` processes, or
the cluster at ``settings.dask_scheduler``. One client per cluster settings is kept for the
life of this process (starting a LocalCluster costs seconds), closed at exit.

What the shards hold (a *shard set*, made once per gallery state and kept):

* with an index build: rows ``[start, stop)`` of the build's ``embeddings.npy``, read by the
  worker itself (the file must be at the same path on every worker: a shared file system) and
  kept in the worker's memory, keyed by the build id, until a newer build of the same index
  folder replaces them; nothing is sent over the network but the file name and row range;
* without a build (a gallery never rebuilt): the live embeddings at the time the shard set was
  made, scattered from this process, one shard per task pinned to one worker.

A search sends the probes (P, D) to every shard with that shard's removed rows (tombstones
since the shard set was made); each worker runs :func:`.index.exact_topk` on its rows and
returns its top k; here the lists are merged by (score desc, global row asc). exact_topk
scores canonically and gives ties to the lower row, so the merge equals exact_topk over the
whole matrix: same ids, same order, same scores. Faces enrolled since the shard set was made
are searched exactly in this process and merged as :meth:`.index.LiveView.nearest_faces` does.

Errors: when a worker dies, its shards read from the build are read again by another worker
(tasks may run elsewhere than where they are pinned) and the search goes on; scattered shards
die with their worker, and the search ends with a :class:`GalleryError` saying so. A scheduler
that cannot be reached or stops, a cluster without workers, or shards that give no answer
within :data:`SHARD_TIMEOUT_S` are a GalleryError too, in plain words. After an error the
shard set is dropped, so the next search makes it again (a LocalCluster's nanny restarts dead
workers).
"""

from __future__ import annotations

import atexit
import contextlib
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from dask.distributed import CancelledError, Client, wait

from ..cluster import dask_client
from ..config import Settings
from ..errors import GalleryError, WorkbenchError
from .index import EMBEDDINGS_FILE, LiveView, _merge_topk, exact_topk

#: seconds a search waits for its shards before saying the cluster does not answer.
SHARD_TIMEOUT_S = 300.0
#: seconds to keep trying a scheduler address.
CONNECT_TIMEOUT_S = 15.0
#: without a build: scatter the gallery again once this many faces were enrolled since (or a
#: tenth of it, if more): below, the new faces are searched in this process.
RESHARD_ROWS = 100_000


# ---------------------------------------------------------------------------------------------
# Worker side


@dataclass(frozen=True)
class FileShard:
    """Rows ``[start, stop)`` of an (N, D) float32 ``.npy`` file that the workers can read.

    ``key`` names the data (a build id): a worker keeps the rows it read under (group, key, rows)
    and drops the other keys of the same ``group`` (an index folder) when a new key arrives.
    """

    path: str
    start: int
    stop: int
    key: str
    group: str


#: rows held by this worker process: (group, key, path, start, stop) -> (rows, D) float32 in RAM.
_HELD: dict[tuple, np.ndarray] = {}
_HELD_LOCK = threading.Lock()


def _held_rows(shard: FileShard) -> np.ndarray:
    """This worker's copy of the shard's rows, read from the file once and then kept in memory."""
    name = (shard.group, shard.key, shard.path, shard.start, shard.stop)
    with _HELD_LOCK:
        rows = _HELD.get(name)
        if rows is None:
            for old in [n for n in _HELD if n[0] == shard.group and n[1] != shard.key]:
                del _HELD[old]  # an older build of the same gallery: its rows are never asked again
            matrix = np.load(shard.path, mmap_mode="r", allow_pickle=False)
            # A copy in RAM, not the memory map: its pages cannot be evicted under memory
            # pressure (or re-read over a network file system), so search times stay steady.
            rows = _HELD[name] = np.array(matrix[shard.start : shard.stop], dtype=np.float32, copy=True)
        return rows


def _shard_topk(shard, probes: np.ndarray, k: int, hidden_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Worker task: exact top-k of one shard; (rows local to the shard (P, k'), scores (P, k'))."""
    matrix = _held_rows(shard) if isinstance(shard, FileShard) else shard
    hidden = None
    if len(hidden_rows):
        hidden = np.zeros(len(matrix), bool)
        hidden[hidden_rows] = True
    return exact_topk(matrix, probes, k, hidden=hidden)


def _shard_load(shard) -> int:
    """Worker task: hold the shard's rows now (so the first search does not pay for it); bytes held."""
    return int((_held_rows(shard) if isinstance(shard, FileShard) else shard).nbytes)


def _worker_rss_mb() -> float:
    """Worker task (client.run): this process's resident memory, MB."""
    import psutil

    return psutil.Process().memory_info().rss / 1e6


# ---------------------------------------------------------------------------------------------
# Client side: one set of shards


class ShardSet:
    """An (N, D) matrix split into row shards held by Dask workers, searched exactly.

    Make one with :meth:`from_file` or :meth:`from_matrix`; :meth:`topk` equals
    ``exact_topk(matrix, probes, k, hidden=hidden)`` on the whole matrix.
    """

    def __init__(self, client: Client, shards: list, bounds: list[tuple[int, int]], workers: list[str], count: int):
        self.client = client
        self.shards = shards  # FileShard or a Dask future of the scattered rows, one per shard
        self.bounds = bounds  # (start, stop) global rows of each shard
        self.workers = workers  # the worker each shard is pinned to
        self.count = count

    @staticmethod
    def _split(client: Client, count: int, n_shards: int) -> tuple[list[tuple[int, int]], list[str]]:
        """Row ranges of about count / n_shards rows (no empty shard) and a worker for each, round robin."""
        workers = sorted(client.scheduler_info()["workers"])
        if not workers:
            raise GalleryError("the Dask cluster has no workers: start some, or set search_shards = 0 to search in this process")
        edges = np.linspace(0, count, max(1, int(n_shards)) + 1).astype(np.int64)
        bounds = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]
        return bounds, [workers[i % len(workers)] for i in range(len(bounds))]

    @classmethod
    def from_file(cls, client: Client, path: Path, n_shards: int, *, key: str, group: str | None = None) -> ShardSet:
        """Shards of an (N, D) float32 ``.npy`` that every worker reads at ``path`` (memory-mapped, then kept)."""
        count = int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
        bounds, workers = cls._split(client, count, n_shards)
        group = group or str(Path(path).parent.parent)
        shards = [FileShard(str(path), a, b, key, group) for a, b in bounds]
        return cls(client, shards, bounds, workers, count)

    @classmethod
    def from_matrix(cls, client: Client, matrix: np.ndarray, n_shards: int) -> ShardSet:
        """Shards of an in-memory (N, D) float32 matrix, scattered from this process to the workers."""
        bounds, workers = cls._split(client, len(matrix), n_shards)
        shards = [
            client.scatter(np.ascontiguousarray(matrix[a:b], dtype=np.float32), workers=[w], broadcast=False, hash=False)
            for (a, b), w in zip(bounds, workers)
        ]
        return cls(client, shards, bounds, workers, len(matrix))

    def hold(self) -> int:
        """Make every worker hold its shards now; bytes held in all."""
        futures = [self._submit(_shard_load, i) for i in range(len(self.shards))]
        return int(sum(self._gather(futures)))

    def topk(self, probes: np.ndarray, k: int, hidden: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over all shards, as :func:`.index.exact_topk` over the whole matrix.

        Args:
            probes: (P, D) float32 L2-normalised.
            k: rows wanted per probe.
            hidden: optional (N,) bool, True for rows to leave out (removed since the shards were made).

        Returns:
            (rows, scores): (P, k') int64 global row numbers and float32 cosines, best first,
            k' = min(k, visible rows); ties go to the lower row.
        """
        probes = np.ascontiguousarray(probes, dtype=np.float32)
        visible = self.count - (int(hidden.sum()) if hidden is not None else 0)
        wanted = max(0, min(int(k), visible))
        if wanted == 0 or not len(probes) or not self.shards:
            return np.zeros((len(probes), 0), np.int64), np.zeros((len(probes), 0), np.float32)
        futures = []
        for i, (start, stop) in enumerate(self.bounds):
            hidden_rows = np.flatnonzero(hidden[start:stop]) if hidden is not None else np.zeros(0, np.int64)
            futures.append(self._submit(_shard_topk, i, probes, wanted, hidden_rows))
        parts = self._gather(futures)
        return _merge_by_score_then_row(parts, [a for a, _ in self.bounds], len(probes), wanted)

    def worker_memory_mb(self) -> dict[str, float]:
        """Resident memory (MB) of each worker process that holds shards."""
        return self.client.run(_worker_rss_mb, workers=sorted(set(self.workers)))

    def _submit(self, function, shard: int, *args):
        # Pinned to one worker so the rows stay where they were loaded; another worker may take
        # over (and load them) if that one is gone. pure=False: never reuse a result for new data.
        return self.client.submit(
            function, self.shards[shard], *args, workers=[self.workers[shard]], allow_other_workers=True, pure=False
        )

    def _gather(self, futures: list) -> list:
        """Results in order, or a GalleryError naming what went wrong on the cluster."""
        try:
            done, not_done = wait(futures, timeout=SHARD_TIMEOUT_S)
        except CancelledError as exc:  # the scheduler lost a shard's data (its worker died) or the cluster stopped
            raise GalleryError(
                "sharded search: a Dask worker holding a shard died or the cluster stopped; search again to load the shards again"
            ) from exc
        except (TimeoutError, OSError) as exc:
            raise GalleryError(f"sharded search: the Dask cluster stopped answering ({_reason(exc)})") from exc
        if not_done:
            for future in not_done:
                future.cancel()
            raise GalleryError(
                f"sharded search: {len(not_done)} of {len(futures)} shards gave no answer within {SHARD_TIMEOUT_S:.0f} s "
                "(are the Dask workers alive?)"
            )
        out = []
        for number, future in enumerate(futures):
            if future.status == "error":
                error = future.exception()
                if isinstance(error, WorkbenchError):
                    raise error
                raise GalleryError(f"sharded search: shard {number + 1} of {len(futures)} failed on its Dask worker ({_reason(error)})")
            if future.status != "finished":
                raise GalleryError(
                    f"sharded search: shard {number + 1} of {len(futures)} was {future.status} (the cluster lost its workers)"
                )
            out.append(future.result())
        return out


def _reason(error: BaseException) -> str:
    name = type(error).__name__
    if name == "KilledWorker":
        return "the worker process died while holding or searching it"
    text = " ".join(str(error).split())  # Dask's messages span lines
    return f"{name}: {text}" if text else name


def _merge_by_score_then_row(parts: list, offsets: list[int], n_probes: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-shard (local rows, scores) lists into the global (P, k) top-k by (score desc, row asc)."""
    widths = [rows.shape[1] for rows, _ in parts]
    rows = np.full((n_probes, sum(widths)), -1, np.int64)
    scores = np.full((n_probes, sum(widths)), -np.inf, np.float32)
    column = 0
    for (part_rows, part_scores), offset, width in zip(parts, offsets, widths):
        rows[:, column : column + width] = part_rows + offset
        scores[:, column : column + width] = part_scores
        column += width
    order = np.lexsort((rows, -scores), axis=1)[:, :k]
    return np.take_along_axis(rows, order, axis=1), np.take_along_axis(scores, order, axis=1)


# ---------------------------------------------------------------------------------------------
# Client side: the gallery's shards, kept between searches


@dataclass
class _GalleryShards:
    """The shard set of one gallery state: base face ids (N,) ascending, row i = shard row i."""

    shards: ShardSet
    face_ids: np.ndarray
    source: tuple  # ("build", build id) or ("store", token)
    n_shards: int  # as asked (shards without rows are not made)


_CLIENTS: dict[tuple, tuple[contextlib.ExitStack, Client]] = {}
_GALLERIES: dict[tuple, _GalleryShards] = {}
_LOCK = threading.RLock()


def client_for(settings: Settings) -> Client:
    """This process's Dask client for the settings' cluster, started (or connected) once.

    Raises:
        GalleryError: the scheduler cannot be reached, or the LocalCluster cannot start.
    """
    key = (settings.dask_scheduler, None if settings.dask_scheduler else settings.dask_workers)
    with _LOCK:
        held = _CLIENTS.get(key)
        if held is not None and held[1].status == "running":
            return held[1]
        if held is not None:
            _close(key)
        stack = contextlib.ExitStack()
        try:
            client = stack.enter_context(dask_client(settings, connect_timeout_s=CONNECT_TIMEOUT_S))
        except WorkbenchError as exc:
            stack.close()
            raise GalleryError(f"sharded search (search_shards = {settings.search_shards}) {exc}; "
                               "set search_shards = 0 to search in this process") from exc
        _CLIENTS[key] = (stack, client)
        return client


def _close(key: tuple) -> None:
    stack, _ = _CLIENTS.pop(key)
    for name in [n for n in _GALLERIES if n[0] == key]:
        del _GALLERIES[name]
    with contextlib.suppress(Exception):
        stack.close()


@atexit.register
def close_clients() -> None:
    """Close every client (and LocalCluster) this module started; the next search starts again."""
    with _LOCK:
        for key in list(_CLIENTS):
            _close(key)


def nearest_faces(settings: Settings, live: LiveView, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``live.nearest_faces(probes, k, use_index=False)``, with the gallery's rows searched on Dask shards.

    Args:
        settings: ``search_shards`` (>= 1), the cluster settings, ``home`` (names the gallery).
        live: the gallery's live view.
        probes: (P, D) float32 L2-normalised.
        k: faces wanted per probe.

    Returns:
        (face_ids, scores): (P, k) int64 and float32, best first, padded with -1 and -inf.

    Raises:
        GalleryError: the cluster cannot be reached, or a worker died during the search.
    """
    client = client_for(settings)
    gallery = _gallery_shards(client, settings, live)
    hidden, new_ids, new = _since_shards(gallery, live)
    parts_ids, parts_scores = [], []
    try:
        rows, scores = gallery.shards.topk(probes, k, hidden)
    except GalleryError:
        _forget(settings)  # make the shards again at the next search
        raise
    parts_ids.append(gallery.face_ids[rows])
    parts_scores.append(scores)
    if len(new_ids):
        rows, scores = exact_topk(new, probes, k)
        parts_ids.append(new_ids[rows])
        parts_scores.append(scores)
    return _merge_topk(parts_ids, parts_scores, len(probes), k)


def _gallery_key(settings: Settings) -> tuple:
    return ((settings.dask_scheduler, None if settings.dask_scheduler else settings.dask_workers), str(settings.home))


def _forget(settings: Settings) -> None:
    with _LOCK:
        _GALLERIES.pop(_gallery_key(settings), None)


def _gallery_shards(client: Client, settings: Settings, live: LiveView) -> _GalleryShards:
    """The gallery's shard set, made again when the build changed, the shard count changed or,
    without a build, many faces were enrolled since."""
    key = _gallery_key(settings)
    n_shards = int(settings.search_shards)
    with _LOCK:
        held = _GALLERIES.get(key)
        if held is not None and held.shards.client is client and held.n_shards == n_shards:
            if live.build is not None and held.source == ("build", live.build.build_id):
                return held
            if live.build is None and held.source[0] == "store" and not _too_many_new(held, live):
                return held
        if live.build is not None:
            build = live.build
            path = build.folder / EMBEDDINGS_FILE
            shards = ShardSet.from_file(client, path, n_shards, key=build.build_id, group=str(build.folder.parent))
            held = _GalleryShards(shards, np.asarray(build.face_ids), ("build", build.build_id), n_shards)
        else:
            shards = ShardSet.from_matrix(client, live.pending, n_shards)
            held = _GalleryShards(shards, live.pending_ids.copy(), ("store", secrets.token_hex(4)), n_shards)
        _GALLERIES[key] = held
        return held


def _too_many_new(held: _GalleryShards, live: LiveView) -> bool:
    last = int(held.face_ids[-1]) if len(held.face_ids) else 0
    new = int(np.count_nonzero(live.pending_ids > last))
    return new > max(RESHARD_ROWS, len(held.face_ids) // 10)


def _since_shards(held: _GalleryShards, live: LiveView) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(hidden (N,) bool for shard rows removed since, ids (M,) and (M, D) embeddings enrolled since)."""
    if held.source[0] == "build":
        return live.hidden, live.pending_ids, live.pending
    hidden = ~np.isin(held.face_ids, live.pending_ids, assume_unique=True)
    last = int(held.face_ids[-1]) if len(held.face_ids) else 0
    new = live.pending_ids > last
    return (hidden if hidden.any() else None), live.pending_ids[new], live.pending[new]
