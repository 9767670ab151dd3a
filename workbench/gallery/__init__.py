"""The custody gallery: enrolled faces in SQLite, an Annoy index beside them, and 1:N search.

Modules:

* ``store.py``: :class:`Gallery`, which owns the database connection and the loaded index;
  writes enrolled faces, removes subjects, reports stats, rebuilds the index, and gives search
  a consistent live view (the last build, minus removals, plus faces enrolled since).
* ``enrol.py``: enrolment from a folder (one sub-folder per subject) or a manifest CSV:
  hashing, batches, idempotent and resumable, a report of failures.
* ``index.py``: the one module that imports annoy. Index builds on disk (written to a new
  folder, swapped in atomically), exact batched top-k, and the nearest-face lookup over a
  build plus the faces enrolled since.
* ``search.py``: probe faces -> :class:`~workbench.types.CandidateList` (exact re-ranking,
  fusion of several probe faces, threshold, investigation and identification modes).

Dependency direction inside: ``search -> store -> index``; ``enrol -> store``.
"""

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "EnrolSummary": "enrol",
        "Gallery": "store",
        "LiveView": "index",
        "items_from_folder": "enrol",
        "items_from_manifest": "enrol",
        "search_many": "search",
        "search_probes": "search",
    },
)
