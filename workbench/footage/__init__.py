"""Footage: video files, stills and folders of stills -> sampled frames -> faces -> face tracks.

Modules:

* ``decode.py``: the one module that imports PyAV. Plans a source (sha256, frame timestamps
  from the demuxer, chunks of sampling slots) and decodes its sampled frames, upright and in
  display pixels, with true presentation times; damaged input becomes warnings or
  :class:`~workbench.errors.FootageError`.
* ``tracking.py``: links faces of successive sampled frames into tracks (Hungarian assignment
  on box overlap, motion and appearance; cuts end tracks; fragments rejoin) and chooses the
  faces of a track that make a search probe.
* ``regions.py``: where a new face can be (the "skip" scan, ``footage_scan = skip``, the
  default): whole key frames, in between only live tracks' predicted regions and regions that
  changed, packed into shared detector canvases; ``footage_scan = full`` scans every sampled
  frame whole.
* ``pipeline.py``: the pipeline of one process: decode, detect (whole or in regions) and embed,
  track; :class:`FootageResult` with thumbnails, tables and what the scan ran; :func:`track_probe`.
* ``distributed.py``: the one module that imports Dask: the same extraction on a
  ``LocalCluster`` or a scheduler address, results identical to one process.
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "DEFAULT_CHUNK_S": "decode",
        "FootageResult": "pipeline",
        "FootageWarning": "decode",
        "Sampling": "decode",
        "SourceKind": "decode",
        "TrackerConfig": "tracking",
        "VIDEO_SUFFIXES": "decode",
        "extract": "pipeline",
        "extract_many": "pipeline",
        "extract_on_dask": "distributed",
        "iter_frames": "decode",
        "plan_source": "decode",
        "probe_faces": "tracking",
        "track_probe": "pipeline",
    },
)
