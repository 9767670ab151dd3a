"""The "skip" footage scan (``footage_scan = skip``): whole key frames, in between only where a
new face can be (live tracks' regions, changed regions). What a user relies on:

* it finds the tracks the full scan finds (test footage made from package images here; the
  shared clips when ../shared/data is present), and the hamilton search still puts Barack
  Obama first;
* on a static scene it searches a small share of the pixels the full scan searches (counted
  by the scan itself: regions and pixels, never wall time);
* chunks (Dask tasks) change nothing: they are cut where a whole scan is due;
* key frames between whole scans search only what changed since the last whole scan;
* ``WORKBENCH_FOOTAGE_SCAN=full`` scans every sampled frame whole, as before.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import pytest

from workbench.config import Settings
from workbench.engine import FaceEngine
from workbench.footage import Sampling, extract
from workbench.footage.decode import plan_source
from workbench.footage.regions import WHOLE_SCAN_PERIODS, SkipScheduler, change_boxes, detect_in_regions, pack_regions, shrink_grey
from workbench.footage.tracking import FrameFaces, box_iou, track_tracks

from conftest import face_crop
from videos import Actor, background, render, write_video

#: a full-scan track is found when a skip track holds a face in one of its frames with this IoU.
MATCH_IOU = 0.5


def found_share(full, skip) -> float:
    """Share of the full scan's tracks that the skip scan found (a shared frame, boxes IoU >= MATCH_IOU)."""
    if not full.tracks:
        return 1.0
    found = 0
    for track in full.tracks:
        boxes = {f.frame_index: f.face.bbox_xyxy for f in track.faces}
        faces = [f for other in skip.tracks for f in other.faces if f.frame_index in boxes]
        found += any(box_iou(boxes[f.frame_index], f.face.bbox_xyxy) >= MATCH_IOU for f in faces)
    return found / len(full.tracks)


def summary(result) -> list:
    return [
        (t.track_id, [(f.frame_index, tuple(round(v, 2) for v in f.face.bbox_xyxy), round(f.quality_score, 4)) for f in t.faces])
        for t in result.tracks
    ]


@pytest.fixture(scope="module")
def static_clip(tmp_path_factory, t1_rgb, t1_faces) -> Path:
    """8 s of a still 1280x720 scene (10 frames/s, JPEG noise); two people cross it, one from
    1.0 to 3.5 s, the other from 4.5 to 6.0 s; nothing moves for the rest."""
    a, b = (face_crop(t1_rgb, t1_faces[i], margin=0.6) for i in (1, 4))
    actors = [
        Actor(a, (150, 300), (700, 320), 110, 130, 1.0, 3.5),
        Actor(b, (1100, 400), (800, 380), 90, 100, 4.5, 6.0),
    ]
    frames = render(actors, seconds=8.0, fps=10.0, size=(1280, 720), jpeg_quality=70)
    return write_video(tmp_path_factory.mktemp("skip") / "static.mp4", frames, fps=10.0)


@pytest.fixture(scope="module")
def scans(static_clip, engine):
    return {scan: extract(static_clip, engine, sampling=Sampling(fps=5), scan=scan) for scan in ("full", "skip")}


def test_skip_finds_the_tracks_of_the_full_scan(scans):
    full, skip = scans["full"], scans["skip"]
    assert len(full.tracks) == 2, "the clip shows two people"
    assert found_share(full, skip) == 1.0
    assert len(skip.tracks) == len(full.tracks)
    for a, b in zip(full.tracks, skip.tracks):
        assert abs(a.start_s - b.start_s) <= 0.21 and abs(a.end_s - b.end_s) <= 0.21
        assert b.quality >= a.quality - 0.05, "the best shot is as good"


def test_skip_searches_a_small_share_of_a_static_scene(scans):
    full, skip = scans["full"].scan, scans["skip"].scan
    assert full.frames == skip.frames == 40
    assert full.key_frames == 40 and full.searched_share == 1.0
    # A key frame every 2 s of footage (4 here); between them only the people and their tracks.
    assert skip.key_frames + skip.rescans <= 6
    assert skip.searched_share < 0.3, skip
    assert skip.regions < full.key_frames


@pytest.fixture(scope="module")
def short_period_engine(session_home):
    """Key frames every 0.6 s (3 samples at 5 frames/s): a whole scan is due every
    WHOLE_SCAN_PERIODS x 0.6 = 2.4 s, so the 8 s clip holds four stretches (chunks can be cut)
    and quiet key frames between their starts."""
    return FaceEngine.from_settings(Settings(home=session_home, footage_keyframe_s=0.6))


def test_chunks_change_nothing_in_skip_mode(static_clip, short_period_engine):
    one_pass = extract(static_clip, short_period_engine, sampling=Sampling(fps=5), scan="skip")
    for chunk_s in (0.6, 3.0):
        assert len(plan_source(static_clip, Sampling(fps=5), chunk_s=chunk_s, keyframe_s=0.6).chunks) > 1
        chunked = extract(static_clip, short_period_engine, sampling=Sampling(fps=5), scan="skip", chunk_s=chunk_s)
        assert summary(chunked) == summary(one_pass), f"chunk_s={chunk_s}"


def test_quiet_key_frames_are_searched_only_where_the_picture_changed(static_clip, short_period_engine, scans):
    short = extract(static_clip, short_period_engine, sampling=Sampling(fps=5), scan="skip")
    assert found_share(scans["full"], short) == 1.0 and len(short.tracks) == 2
    # 14 key periods; whole only at the 4 stretch starts and on lost tracks (no cut in this clip)
    assert short.scan.key_frames == 4, short.scan  # rescans of lost tracks are counted apart


def test_skip_chunks_start_where_a_whole_scan_is_due(static_clip):
    assert WHOLE_SCAN_PERIODS == 4
    plan = plan_source(static_clip, Sampling(fps=5), chunk_s=0.6, keyframe_s=0.6)
    starts = [round(float(c.pts[0] * c.time_base - c.origin_s), 3) for c in plan.chunks]
    assert starts == [0.0, 2.4, 4.8, 7.2]  # every 4 key periods of 0.6 s
    assert all(c.keyframe_s == 0.6 for c in plan.chunks)
    assert all(c.keyframe_s is None for c in plan_source(static_clip, Sampling(fps=5), chunk_s=0.6).chunks)


def test_a_slow_change_is_searched_at_the_next_key_frame():
    """A patch brightening by 6 grey levels per sample never crosses the per-sample threshold,
    but the key frames between whole scans compare with the last whole scan and search it."""
    still = background(1280, 720)
    scheduler = SkipScheduler(min_face_px=20)
    patch = (slice(300, 380), slice(600, 660))
    plans = []
    for k in range(6):  # one sample per key period: 0 whole, 1..3 quiet key frames, 4 whole again
        frame = still.copy()
        frame[patch] = np.clip(frame[patch].astype(int) + 6 * k, 0, 255).astype(np.uint8)
        plan = scheduler.plan(frame, t=float(k), period=k, signature=None)
        scheduler.observe(np.zeros((0, 15), np.float32), float(k), key=plan.full)
        plans.append(plan)
    assert plans[0].full and plans[4].full and not any(p.full for p in plans[1:4])
    assert plans[1].regions == () and plans[1].reason == "nothing changed since the last whole scan"
    (region,) = plans[3].regions  # 18 levels brighter than the whole scan: searched
    assert region[0] <= 600 and region[1] <= 300 and region[2] >= 660 and region[3] >= 380
    assert plans[5].regions == ()  # compared with the whole scan of key frame 4 again


def test_full_scan_setting_scans_every_frame_as_before(static_clip, session_home, monkeypatch):
    monkeypatch.setenv("WORKBENCH_FOOTAGE_SCAN", "full")
    settings = Settings.load(session_home)
    assert settings.footage_scan == "full"
    engine = FaceEngine.from_settings(settings)
    result = extract(static_clip, engine, sampling=Sampling(fps=5))
    assert result.scan.key_frames == result.frames_sampled == 40
    # Today's behaviour: the engine's analysis of every sampled frame, tracked.
    from workbench.footage import iter_frames
    from workbench.footage.pipeline import frame_signature

    frames = list(iter_frames(static_clip, Sampling(fps=5)))
    analysed = engine.analyse_many([f.rgb for f in frames])
    reference = track_tracks(
        [FrameFaces(f.frame_index, f.timestamp_s, tuple(faces), frame_signature(f.rgb)) for f, faces in zip(frames, analysed)],
        source_path=str(static_clip),
        source_sha256=result.info.sha256,
    )
    got = [(t.track_id, [(f.frame_index, tuple(np.round(f.face.bbox_xyxy, 1))) for f in t.faces]) for t in result.tracks]
    want = [(t.track_id, [(f.frame_index, tuple(np.round(f.face.bbox_xyxy, 1))) for f in t.faces]) for t in reference]
    assert got == want


def test_changes_are_found_and_noise_ignored():
    still = background(640, 360)
    rng = np.random.default_rng(3)
    noisy = np.clip(still.astype(int) + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8)
    assert change_boxes(shrink_grey(still), shrink_grey(noisy), 20, 640, 360) == []
    moved = noisy.copy()
    moved[100:160, 300:350] = 255 - moved[100:160, 300:350]
    (box,) = change_boxes(shrink_grey(still), shrink_grey(moved), 20, 640, 360)
    assert box[0] <= 300 and box[1] <= 100 and box[2] >= 350 and box[3] >= 160, "the change lies inside its box"
    assert (box[2] - box[0]) * (box[3] - box[1]) < 0.1 * 640 * 360


def test_regions_find_the_faces_a_whole_frame_scan_finds(engine, t1_rgb):
    """t1's faces searched in regions round them (packed into one mosaic) come back in frame
    pixels with the boxes of the whole-frame scan; a region cutting a face through finds nothing."""
    whole = engine.detect_rows(t1_rgb)
    regions = [(int(x1) - 40, int(y1) - 40, int(x2) + 40, int(y2) + 40, 1.0) for x1, y1, x2, y2 in whole[:, :4]]
    regions = [(max(a, 0), max(b, 0), min(c, t1_rgb.shape[1]), min(d, t1_rgb.shape[0]), s) for a, b, c, d, s in regions]
    rows, images = detect_in_regions(engine.detect_rows, t1_rgb, regions)
    assert images < len(regions), "small regions share a mosaic"
    assert len(rows) == len(whole)
    for row in whole:
        assert max(box_iou(row[:4], r[:4]) for r in rows) > 0.8
    x1, y1, x2, y2 = (int(v) for v in whole[0, :4])
    half = (x1 - 30, y1 - 30, (x1 + x2) // 2, y2 + 30, 1.0)  # the left half of a face
    cut, _ = detect_in_regions(engine.detect_rows, t1_rgb, [half])
    assert not any(box_iou(r[:4], whole[0, :4]) > 0.3 for r in cut), "a face cut by a region edge is not reported"


def test_packed_regions_do_not_overlap():
    regions = [(0, 0, 100, 150, 1.0), (500, 500, 700, 600, 1.0), (10, 10, 1000, 900, 1.0), (50, 60, 400, 200, 0.5)]
    groups = pack_regions(regions)
    assert sorted(p.box for g in groups for p in g) == sorted(r[:4] for r in regions)
    for group in groups:
        spans = [(p.mx, p.my, p.mx + p.size[0], p.my + p.size[1]) for p in group]
        for i, a in enumerate(spans):
            for b in spans[i + 1 :]:
                assert box_iou(a, b) == 0.0


# -- shared clips ------------------------------------------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.slow
def test_skip_finds_the_tracks_of_the_shared_clips(shared_data, session_home):
    engine = FaceEngine.from_settings(Settings(home=session_home, min_face_px=20))
    shares = {}
    for name in ("street_royal_opera_house.mp4", "openmpf_group_video_01.mp4", "openmpf_no_faces_negative.mp4"):
        path = shared_data / "video" / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full, skip = (extract(path, engine, sampling=Sampling(fps=2), scan=scan) for scan in ("full", "skip"))
        shares[name] = (found_share(full, skip), len(full.tracks), skip.scan.searched_share)
    print(f"\nfound share, full tracks, pixels searched: {shares}")
    total = sum(n for _, n, _ in shares.values())
    found = sum(share * n for share, n, _ in shares.values())
    assert found >= 0.98 * total, shares


@pytest.mark.shared_data
@pytest.mark.slow
def test_hamilton_search_is_unchanged_by_skipping(shared_data, tmp_path_factory, session_home):
    from workbench.cli import main
    from workbench.footage import track_probe
    from workbench.gallery.search import search
    from workbench.gallery.store import Gallery

    from test_gallery_support import new_home

    home = new_home(tmp_path_factory.mktemp("skip-gallery") / "ws", session_home)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--home", str(home), "gallery", "enrol", str(shared_data / "faces" / "fr_examples" / "train"), "--json"]) == 0
    engine = FaceEngine.from_settings(Settings(home=session_home))
    clip = shared_data / "video" / "short_hamilton_clip.mp4"
    firsts = {}
    with Gallery.open(Settings(home=home, user="test-user")) as gallery:
        for scan in ("full", "skip"):
            result = extract(clip, engine, sampling=Sampling(fps=2), scan=scan)
            probes = [track_probe(t) for t in result.tracks]
            firsts[scan] = sorted((p.start_s, search(gallery, p.faces, top=1)[0].subject_id) for p in probes if p.faces)
    print(f"\nhamilton top candidates: {firsts}")
    assert any(subject == "obama" for _, subject in firsts["full"])
    assert firsts["skip"] == firsts["full"]
