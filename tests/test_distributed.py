"""Scale-out on a real Dask LocalCluster with two worker processes.

The cluster costs seconds to start, so one serves the whole module. Every result is compared
with the single-process run: same tracks, same order, same ids, same faces.
"""

from __future__ import annotations

import pytest

from workbench.config import Settings
from workbench.errors import FootageError
from workbench.footage import Sampling, extract
from workbench.footage.tracking import probe_faces

from conftest import face_crop
from videos import Actor, render, write_video

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster_settings(session_home) -> Settings:
    return Settings(home=session_home, dask_workers=2)


@pytest.fixture(scope="module")
def client(cluster_settings):
    from workbench.footage.distributed import dask_client

    with dask_client(cluster_settings) as client:
        client.wait_for_workers(2, timeout=120)
        yield client


@pytest.fixture(scope="module")
def sources(tmp_path_factory, t1_rgb, t1_faces):
    """A 4 s clip where three people come and go across chunk borders, and a folder of stills."""
    root = tmp_path_factory.mktemp("dask-footage")
    a, b, c = (face_crop(t1_rgb, t1_faces[i], margin=0.6) for i in (0, 2, 5))
    actors = [
        Actor(a, (100, 120), (540, 140), 90, 110, 0.0, 3.3),
        Actor(b, (560, 250), (200, 240), 100, 100, 0.7, 4.0),
        Actor(c, (320, 100), (330, 110), 80, 80, 1.9, 2.6),
    ]
    clip = write_video(root / "three.mp4", render(actors, seconds=4.0, fps=10.0, jpeg_quality=60), fps=10.0)
    stills = root / "stills"
    stills.mkdir()
    from PIL import Image

    for i, frame in enumerate(render(actors[:1], seconds=1.0, fps=4.0)):
        Image.fromarray(frame).save(stills / f"frame{i:02d}.jpg", quality=90)
    return [clip, stills]


def summary(result) -> list:
    """Everything that must match between runs: ids, order, frames, times, boxes, best shots."""
    return [
        (
            t.track_id,
            t.best_index,
            [
                (f.frame_index, round(f.timestamp_s, 6), tuple(round(v, 2) for v in f.face.bbox_xyxy), round(f.quality_score, 4))
                for f in t.faces
            ],
        )
        for t in result.tracks
    ]


@pytest.fixture(scope="module")
def single_process(sources, engine):
    return [extract(path, engine, sampling=Sampling(fps=5)) for path in sources]


def test_cluster_equals_single_process_with_tracks_across_chunk_borders(client, cluster_settings, sources, single_process):
    from workbench.footage.distributed import extract_on_dask

    # 0.6 s chunks: every track of the clip crosses at least one border.
    results = extract_on_dask(sources, cluster_settings, sampling=Sampling(fps=5), chunk_s=0.6, client=client)
    assert [r.info.path for r in results] == [str(p) for p in sources]
    assert [summary(r) for r in results] == [summary(r) for r in single_process]
    assert [r.info.sha256 for r in results] == [r.info.sha256 for r in single_process]
    clip = results[0]
    assert len(clip.tracks) == 3
    assert [(round(t.start_s, 1), round(t.end_s, 1)) for t in clip.tracks] == [(0.0, 3.2), (0.8, 3.8), (2.0, 2.4)]
    assert len(results[1].tracks) == 1 and results[1].tracks[0].n_faces == 4
    # Embeddings travel back too: the tracks can be searched.
    assert all(probe_faces(t) for t in clip.tracks)


@pytest.mark.parametrize("scan", ["skip", "full"])
def test_cluster_honours_the_footage_scan_setting(client, session_home, sources, engine, scan):
    """Workers scan as the settings say ("skip": key frames and regions; "full": every frame whole)
    and the result equals one process's with the same scan."""
    from workbench.footage.distributed import extract_on_dask

    settings = Settings(home=session_home, dask_workers=2, footage_scan=scan)
    (result,) = extract_on_dask(sources[:1], settings, sampling=Sampling(fps=5), chunk_s=0.6, client=client)
    single = extract(sources[0], engine, sampling=Sampling(fps=5), scan=scan)
    assert summary(result) == summary(single)
    assert len(result.tracks) == 3
    assert result.scan == single.scan, "the workers searched the same frames and regions"
    if scan == "full":
        assert result.scan.key_frames == result.frames_sampled


def test_chunk_length_changes_nothing(client, cluster_settings, sources, single_process):
    from workbench.footage.distributed import extract_on_dask

    for chunk_s in (None, 0.2, 1.4):
        (result,) = extract_on_dask(sources[:1], cluster_settings, sampling=Sampling(fps=5), chunk_s=chunk_s, client=client)
        assert summary(result) == summary(single_process[0]), f"chunk_s={chunk_s}"


def test_a_scheduler_address_in_settings_is_used(client, cluster_settings, sources, single_process):
    from workbench.footage.distributed import extract_on_dask

    remote = cluster_settings.replace(dask_scheduler=client.scheduler.address)
    (result,) = extract_on_dask(sources[:1], remote, sampling=Sampling(fps=5), chunk_s=1.0)
    assert summary(result) == summary(single_process[0])


def test_bad_sources_raise_or_stand_in_place(client, cluster_settings, sources, tmp_path):
    from workbench.footage.distributed import extract_on_dask

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(FootageError, match="bad.mp4"):
        extract_on_dask([bad, sources[1]], cluster_settings, client=client)
    results = extract_on_dask([bad, sources[1]], cluster_settings, client=client, return_errors=True)
    assert isinstance(results[0], FootageError) and "bad.mp4" in str(results[0])
    assert len(results[1].tracks) == 1


def test_unreachable_scheduler_is_a_clear_error(cluster_settings):
    from workbench.errors import WorkbenchError
    from workbench.footage.distributed import dask_client

    with pytest.raises(WorkbenchError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        with dask_client(cluster_settings.replace(dask_scheduler="tcp://127.0.0.1:9"), connect_timeout_s=1):
            pass


def test_cli_footage_extract_on_the_cluster(client, sources, single_process, workspace, monkeypatch, capsys):
    """``--dask`` with the scheduler address from the environment: the same tracks as one process."""
    import json

    from workbench.cli import main

    monkeypatch.setenv("WORKBENCH_DASK_SCHEDULER", client.scheduler.address)
    status = main(["--home", str(workspace), "footage", "extract", str(sources[0]), "--dask", "--chunk-s", "1", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert status == 0
    assert [t["track_id"] for t in data["tracks"]] == [t.track_id for t in single_process[0].tracks]
    assert [t["best"]["frame_index"] for t in data["tracks"]] == [t.best.frame_index for t in single_process[0].tracks]
