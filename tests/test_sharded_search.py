"""Sharded search on a real Dask LocalCluster (two worker processes) equals exact search in one process.

Galleries: the sample gallery (real faces from package images) plus SYNTHETIC SFace-like faces,
written through the gallery store; one with an index build (the workers read the build's
embeddings file), one never rebuilt (the embeddings are scattered to the workers). Each
comparison is exact: the same face ids in the same order with bit-identical scores, and the
same candidate lists, for several shard counts, after removals and after enrolments made
since the shards were loaded.
"""

from __future__ import annotations

import numpy as np
import pytest

from workbench.config import Settings
from workbench.errors import GalleryError
from workbench.gallery import sharded
from workbench.gallery.search import search_many
from workbench.gallery.store import Gallery

from test_gallery_support import (  # noqa: F401  (fixtures)
    add_synthetic,
    copy_home,
    new_home,
    probe_face,
    sample_folder,
    sample_home,
)

pytestmark = pytest.mark.slow

#: shard counts compared; 1,000 is more shards than the tiny gallery has faces.
SHARD_COUNTS = (1, 2, 3)
K = 60


@pytest.fixture(scope="module")
def cluster(session_home):
    """A client of a LocalCluster of two single-threaded worker processes, for the whole module."""
    from workbench.cluster import dask_client

    with dask_client(Settings(home=session_home, dask_workers=2)) as client:
        client.wait_for_workers(2, timeout=120)
        yield client
    sharded.close_clients()


@pytest.fixture(scope="module")
def scheduler(cluster) -> str:
    return cluster.scheduler.address


def _home(tmp_path_factory, sample_home, engine, name: str, *, rebuild: bool):
    home = copy_home(sample_home, tmp_path_factory.mktemp(name) / "ws")
    probes, subjects = add_synthetic(home, engine.pack_id, identities=400, per_identity=2, seed=3, prefix=name.upper())
    if rebuild:
        with Gallery.open(Settings(home=home)) as gallery:
            gallery.rebuild()
    return home, [probe_face(p, engine.pack_id) for p in probes[:40]], subjects


@pytest.fixture(scope="module")
def indexed_home(tmp_path_factory, sample_home, engine):
    return _home(tmp_path_factory, sample_home, engine, "indexed", rebuild=True)


@pytest.fixture(scope="module")
def unindexed_home(tmp_path_factory, sample_home, engine):
    return _home(tmp_path_factory, sample_home, engine, "unindexed", rebuild=False)


def _assert_same_as_one_process(home, scheduler, probes, shard_counts=SHARD_COUNTS):
    """Nearest faces and candidate lists, sharded, equal those of exact search in this process."""
    matrix = np.stack([p.embedding for p in probes]).astype(np.float32)
    with Gallery.open(Settings(home=home)) as gallery:
        live = gallery.live()
        want_ids, want_scores = live.nearest_faces(matrix, K, use_index=False, search_k=-1)
        want_lists = search_many(gallery, [[p] for p in probes], top=10)
    for shards in shard_counts:
        settings = Settings(home=home, search_shards=shards, dask_scheduler=scheduler)
        with Gallery.open(settings) as gallery:
            ids, scores = sharded.nearest_faces(settings, gallery.live(), matrix, K)
            lists = search_many(gallery, [[p] for p in probes], top=10)
        np.testing.assert_array_equal(ids, want_ids, err_msg=f"{shards} shards")
        np.testing.assert_array_equal(scores, want_scores, err_msg=f"{shards} shards")  # bit-identical
        assert [c.as_dict()["candidates"] for c in lists] == [c.as_dict()["candidates"] for c in want_lists], f"{shards} shards"


@pytest.mark.parametrize("which", ["indexed_home", "unindexed_home"])
def test_sharded_search_equals_exact_search_then_after_removal_and_enrolment(request, which, scheduler, engine):
    home, probes, subjects = request.getfixturevalue(which)
    _assert_same_as_one_process(home, scheduler, probes)

    # Remove the mates of the first probes: they vanish from the shards' answers at once.
    with Gallery.open(Settings(home=home, user="test-user")) as gallery:
        for subject in subjects[:5]:
            gallery.remove_subject(subject, vacuum=False)
    _assert_same_as_one_process(home, scheduler, probes)
    with Gallery.open(Settings(home=home, search_shards=2, dask_scheduler=scheduler)) as gallery:
        found = search_many(gallery, [[p] for p in probes[:5]], top=10)
    assert not {c.subject_id for c in sum((list(f) for f in found), [])} & set(subjects[:5])

    # Enrol new people after the shards were loaded: they are searched too (and found first).
    new_probes, new_subjects = add_synthetic(home, engine.pack_id, identities=30, per_identity=1, seed=9, prefix="LATE")
    new_faces = [probe_face(p, engine.pack_id) for p in new_probes[:10]]
    _assert_same_as_one_process(home, scheduler, probes[:10] + new_faces)
    with Gallery.open(Settings(home=home, search_shards=3, dask_scheduler=scheduler)) as gallery:
        found = search_many(gallery, [[p] for p in new_faces], top=5)
    assert sum(f[0].subject_id == s for f, s in zip(found, new_subjects)) >= 8  # SYNTHETIC mates, rank 1


def test_more_shards_than_faces(tmp_path, session_home, engine, scheduler):
    home = new_home(tmp_path / "ws", session_home)
    probes, _ = add_synthetic(home, engine.pack_id, identities=5, per_identity=1, seed=4)
    faces = [probe_face(p, engine.pack_id) for p in probes]
    with Gallery.open(Settings(home=home)) as gallery:
        gallery.rebuild()
    _assert_same_as_one_process(home, scheduler, faces, shard_counts=(4, 1000))


def test_ties_go_to_the_lower_face_id_on_shards_as_in_one_process(tmp_path, session_home, engine, scheduler):
    """Several subjects enrolled with the very same embedding: tied scores, split across shards."""
    home = new_home(tmp_path / "ws", session_home)
    probes, _ = add_synthetic(home, engine.pack_id, identities=50, per_identity=1, seed=5, prefix="A")
    add_synthetic(home, engine.pack_id, identities=50, per_identity=1, seed=5, prefix="B")  # same vectors, other people
    with Gallery.open(Settings(home=home)) as gallery:
        gallery.rebuild()
    _assert_same_as_one_process(home, scheduler, [probe_face(p, engine.pack_id) for p in probes[:10]], shard_counts=(2, 3, 7))


def test_unreachable_scheduler_is_a_clear_error(indexed_home, monkeypatch):
    home, probes, _ = indexed_home
    monkeypatch.setattr(sharded, "CONNECT_TIMEOUT_S", 1.0)
    with Gallery.open(Settings(home=home, search_shards=2, dask_scheduler="tcp://127.0.0.1:9")) as gallery:
        with pytest.raises(GalleryError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9.*search_shards = 0"):
            search_many(gallery, [[probes[0]]])


def _kill_a_worker(client) -> None:
    import os
    import signal

    pids = client.run(os.getpid)
    os.kill(pids[sorted(pids)[0]], signal.SIGKILL)


def test_a_worker_that_dies_is_a_plain_error_or_is_replaced(indexed_home, unindexed_home, cluster, scheduler):
    """Both workers hold a shard. Shards read from the index build are read again by another
    worker: the search goes on. Shards scattered from this process are lost with their worker:
    a GalleryError says so plainly, and the next search scatters them again."""
    home, probes, _ = indexed_home
    _assert_same_as_one_process(home, scheduler, probes[:5], shard_counts=(2,))
    _kill_a_worker(cluster)
    _assert_same_as_one_process(home, scheduler, probes[:5], shard_counts=(2,))
    cluster.wait_for_workers(2, timeout=120)

    home, probes, _ = unindexed_home
    _assert_same_as_one_process(home, scheduler, probes[:5], shard_counts=(2,))
    _kill_a_worker(cluster)
    with Gallery.open(Settings(home=home, search_shards=2, dask_scheduler=scheduler)) as gallery:
        with pytest.raises(GalleryError, match="a Dask worker holding a shard died or the cluster stopped; search again"):
            search_many(gallery, [[probes[0]]])
    cluster.wait_for_workers(2, timeout=120)
    _assert_same_as_one_process(home, scheduler, probes[:5], shard_counts=(2,))
