"""Scale-out on Dask: the same footage extraction, spread over worker processes or a cluster.

``dask_client(settings)`` (from :mod:`workbench.cluster`, imported here as well) gives a client:
a ``LocalCluster`` of ``settings.dask_workers`` single-threaded worker processes by default, or
the scheduler at ``settings.dask_scheduler`` ("tcp://host:8786") for a real cluster. Workers
must see the same files (footage and the workspace's ``models/``) at the same paths, e.g. on a
shared file system.

:func:`extract_on_dask` runs the three steps of :mod:`workbench.footage.pipeline`:

1. ``plan_source`` for every path, one task each (sha256 and the frame index read the whole
   file, so they run next to the data, not on the client);
2. ``detect_chunk`` for every chunk of every source, one task each, with a FaceEngine cached
   per worker process (``threads=1``: one process per core beats threads inside onnxruntime);
3. ``assemble`` on the client, per source, with the chunks in plan order.

Ctrl-C: see :mod:`workbench.cluster` (an interrupt reaches this process alone, which stops the
cluster; the caller sees one KeyboardInterrupt).
Errors of a task that are not the workbench's (a worker that died, an exception of a
third-party library) become a :class:`FootageError` naming the source.

Results come back in input order and are identical to :func:`workbench.footage.pipeline.extract`
with the same ``settings.footage_scan``: chunks are whole sampling slots (in "skip" mode whole
stretches between unconditional whole scans, whose detections depend on that stretch alone), frame indices come from the
planner's index, and tracking runs once over the whole time line, so chunk borders leave no
trace in the tracks, their order or their ids (a track crossing a border is one track).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from dask.distributed import Client, wait

from ..cluster import dask_client
from ..config import Settings
from ..errors import FootageError, WorkbenchError
from .decode import DEFAULT_CHUNK_S, Sampling, plan_source
from .pipeline import ChunkResult, FootageResult, assemble, detect_chunk, scan_keyframe_s
from .tracking import TrackerConfig

#: FaceEngines of this worker process, by the settings that shape them.
_ENGINES: dict[tuple, object] = {}


def _engine_key(settings: Settings) -> tuple:
    return (
        str(settings.home),
        settings.pack,
        settings.detection_threshold,
        settings.min_face_px,
        settings.embed_batch_size,
        settings.max_image_pixels,
    )


def worker_engine(settings: Settings):
    """This process's FaceEngine for the settings, loaded once (single-threaded onnxruntime)."""
    from ..engine import FaceEngine

    key = _engine_key(settings)
    engine = _ENGINES.get(key)
    if engine is None:
        engine = _ENGINES[key] = FaceEngine.from_settings(settings, threads=1)
    return engine


def _plan_task(path: str, sampling: Sampling, chunk_s: float | None, keyframe_s: float | None = None):
    try:
        return plan_source(path, sampling, chunk_s=chunk_s, keyframe_s=keyframe_s)
    except WorkbenchError:
        raise
    except Exception as exc:  # the boundary of the worker: name the source, keep the others going
        raise FootageError(f"{path}: cannot be planned ({type(exc).__name__}: {exc})") from exc


def _detect_task(chunk, settings: Settings) -> ChunkResult:
    try:
        return detect_chunk(chunk, worker_engine(settings))
    except WorkbenchError:
        raise
    except Exception as exc:
        raise FootageError(f"{chunk.path}: a worker failed on this footage ({type(exc).__name__}: {exc})") from exc


def extract_on_dask(
    paths: Iterable[str | os.PathLike],
    settings: Settings,
    *,
    sampling: Sampling | None = None,
    tracking: TrackerConfig | None = None,
    chunk_s: float | None = DEFAULT_CHUNK_S,
    client: Client | None = None,
    return_errors: bool = False,
) -> list[FootageResult | WorkbenchError]:
    """Extract face tracks from many sources, or long ones cut into ``chunk_s`` chunks, on Dask.

    Args:
        paths: videos, stills or folders of stills.
        settings: pack and detection settings (workers load the same pack), cluster settings.
        sampling: frames to analyse; default ``Sampling(fps=settings.footage_fps)``.
        tracking: tracker parameters.
        chunk_s: seconds of footage per task (None = one task per source).
        client: an existing client; default: one from :func:`dask_client` for this call.
        return_errors: put the error of a source that cannot be read in its place in the
            list instead of raising it (the other sources are still extracted).

    Returns:
        One FootageResult per path, in input order, equal to the single-process result.

    Raises:
        FootageError: a source cannot be read (the first in input order), unless
            ``return_errors``.
    """
    paths = [str(p) for p in paths]
    sampling = sampling or Sampling(fps=settings.footage_fps)
    if client is None:
        with dask_client(settings) as own:
            return extract_on_dask(
                paths, settings, sampling=sampling, tracking=tracking, chunk_s=chunk_s, client=own, return_errors=return_errors
            )
    # pure=False: a file can change between calls under the same name; never reuse old results.
    # The scan ("skip" or "full", settings.footage_scan) travels in the chunks: every worker
    # scans as one process would, and skip-mode chunks start where a whole scan is due.
    keyframe_s = scan_keyframe_s(settings)
    planning = client.map(_plan_task, paths, sampling=sampling, chunk_s=chunk_s, keyframe_s=keyframe_s, pure=False)
    plans = _outcomes(client, planning, return_errors, paths)
    chunks = [chunk for plan in plans if not isinstance(plan, WorkbenchError) for chunk in plan.chunks]
    futures = client.map(_detect_task, chunks, settings=settings, pure=False)
    results = iter(_outcomes(client, futures, return_errors, [c.path for c in chunks]))
    out: list[FootageResult | WorkbenchError] = []
    for plan in plans:
        if isinstance(plan, WorkbenchError):
            out.append(plan)
            continue
        mine = [next(results) for _ in plan.chunks]
        error = next((r for r in mine if isinstance(r, WorkbenchError)), None)
        out.append(error if error is not None else assemble(plan, mine, tracking))
    return out


def _outcomes(client: Client, futures: list, return_errors: bool, sources: list[str]) -> list:
    """Results in order; with ``return_errors``, a task's error stands in its place. An error
    that is not the workbench's (a worker that died: ``KilledWorker``) becomes a FootageError
    naming the source."""
    wait(futures)
    out = []
    for future, source in zip(futures, sources):
        if future.status == "error":
            error = future.exception()
            if not isinstance(error, WorkbenchError):
                error = FootageError(f"{source}: the Dask task failed ({type(error).__name__}: {error})")
            if not return_errors:
                raise error
            out.append(error)
        elif future.status == "cancelled":
            error = FootageError(f"{source}: the Dask task was cancelled (the cluster stopped or lost its workers)")
            if not return_errors:
                raise error
            out.append(error)
        else:
            out.append(future.result())
    return out
