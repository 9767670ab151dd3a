"""Dask clients for the workbench: a LocalCluster on this machine, or a real cluster's scheduler.

Used by footage extraction (:mod:`workbench.footage.distributed`) and sharded gallery search
(:mod:`workbench.gallery.sharded`). This module and those two are the only ones that import
``dask``.

``dask_client(settings)`` gives a client: a ``LocalCluster`` of ``settings.dask_workers``
single-threaded worker processes by default, or the scheduler at ``settings.dask_scheduler``
("tcp://host:8786") for a real cluster. Workers must see the same files (footage, the
workspace's ``models/`` and ``index/``) at the same paths, e.g. on a shared file system.

Ctrl-C: the worker processes of a LocalCluster ignore SIGINT (inherited while the cluster starts,
then set again by :func:`dask_setup`, the workers' preload), so an interrupt reaches this
process alone, which stops the cluster (the workers never print a traceback); the caller sees
one KeyboardInterrupt. An interrupt during the few seconds the cluster takes to start is lost.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dask.distributed import Client, LocalCluster

from .config import Settings
from .errors import WorkbenchError


@contextmanager
def dask_client(settings: Settings, *, workers: int | None = None, connect_timeout_s: float = 20.0) -> Iterator[Client]:
    """A Dask client for the settings: their scheduler address, else a LocalCluster.

    Args:
        settings: ``dask_scheduler`` (address or None) and ``dask_workers``.
        workers: LocalCluster worker processes (default ``settings.dask_workers``); ignored
            with a scheduler address.
        connect_timeout_s: how long to keep trying a scheduler address.

    Raises:
        WorkbenchError: the scheduler address cannot be reached (the address and why, named).
    """
    if settings.dask_scheduler:
        try:
            client = Client(settings.dask_scheduler, timeout=f"{connect_timeout_s}s")
        except (OSError, TimeoutError) as exc:
            raise WorkbenchError(f"cannot reach the Dask scheduler at {settings.dask_scheduler} ({exc})") from exc
        try:
            yield client
        finally:
            client.close()
        return
    n_workers = workers or settings.dask_workers
    # One thread per worker process: the engine runs onnxruntime single-threaded, so the
    # processes, not threads, use the cores. No dashboard: nothing should listen on a port
    # the user did not ask for.
    with _sigint_ignored():
        cluster = LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None, preload=[__name__]
        )
    try:
        client = Client(cluster)
        try:
            yield client
        finally:
            with quiet_shutdown():
                client.close()
    finally:
        with quiet_shutdown():
            cluster.close()


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while the cluster starts: the worker processes it spawns inherit the
    ignored signal, so Ctrl-C in a terminal (sent to every process of the job) stops only this
    one, which then closes the cluster."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def dask_setup(worker) -> None:
    """Preload of our LocalCluster's workers: ignore SIGINT (the client stops the workers), and
    do not report the work cancelled when the client stops them, nor a heartbeat to a scheduler
    already gone (after Ctrl-C the scheduler can stop before its workers: noise in the
    terminal). A task's own error still reaches the client, which names it."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)
    logging.getLogger("distributed.worker").setLevel(logging.CRITICAL)


@contextmanager
def quiet_shutdown() -> Iterator[None]:
    """Stopping a cluster after an interrupt makes Dask log lost tasks and cancelled work:
    expected then, and noise for the person who pressed Ctrl-C."""
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with contextlib.suppress(Exception):  # a cluster that is already gone needs no closing
            yield
    finally:
        logger.setLevel(level)
