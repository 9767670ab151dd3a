"""Peak resident memory of one measured configuration, in a process of its own.

Why not ``resource.getrusage(RUSAGE_SELF).ru_maxrss``: on Linux it is the high-water mark of
the *process*, and it survives ``fork`` and ``exec``. A child started by ``subprocess`` or by
multiprocessing's spawn context inherits, through ``exec``, the peak of the address space it
replaced, which is a copy of the parent's; a child of a benchmark that had loaded 800 MB reports
at least 800 MB whatever it did itself (checked on this machine: ru_maxrss 812 MB, VmHWM 12 MB
for a child that did nothing). ``RUSAGE_CHILDREN`` is no better: it is the largest of all
children waited for so far, not the one just run.

``VmHWM`` in ``/proc/self/status`` is the high-water mark of the current address space, which
``exec`` replaces: read in the child at the end of its work, it is that child's own peak.

So every benchmark that prints a peak runs each configuration in a fresh process
(:func:`run_fresh`, multiprocessing's spawn context: a new interpreter, nothing inherited but
the arguments) and reads :func:`peak_rss_mb` there.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

#: name of the /proc/self/status field holding the peak resident set of the current address space.
_HWM_FIELD = "VmHWM:"


def peak_rss_mb() -> float:
    """Peak resident memory of the calling process since its last ``exec``, in MB (2**20 bytes).

    Linux: ``VmHWM`` (kB) from /proc/self/status. Elsewhere falls back to ``ru_maxrss``
    (kilobytes on Linux, bytes on macOS), which may include a parent's peak (see the module
    docstring); :func:`peak_source` says which was used.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(_HWM_FIELD):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024.0


def peak_source() -> str:
    """"VmHWM" when :func:`peak_rss_mb` reads the per-address-space mark, else "ru_maxrss"."""
    try:
        return "VmHWM" if _HWM_FIELD in Path("/proc/self/status").read_text() else "ru_maxrss"
    except OSError:
        return "ru_maxrss"


def _call_and_measure(func, args, kwargs) -> tuple[object, float]:
    result = func(*args, **kwargs)
    return result, peak_rss_mb()


def run_fresh(func, *args, **kwargs) -> tuple[object, float]:
    """Run ``func(*args, **kwargs)`` in a new spawned interpreter; (its result, its peak RSS in MB).

    ``func`` must be importable by name (a module-level function), and arguments and result
    picklable. The process exits after this one call, so the next configuration cannot inherit
    its allocations, caches or memory maps. Exceptions in the child are raised here.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(_call_and_measure, func, args, kwargs).result()
