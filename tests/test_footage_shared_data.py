"""Footage on real video from ../shared/data (skipped with the reason when it is absent).

* street_royal_opera_house.mp4 (1080p CCTV-like): one track per person who walks through.
* openmpf_no_faces_negative.mp4: no tracks.
* video/codecs/*: the same clip in seven codecs and containers gives the same number of tracks.
* short_hamilton_clip.mp4 searched against fr_examples/train (plus the 221 ISS portraits as
  distractors): obama is first for one of its tracks, and fusing the track's good frames
  ranks him at least as high as its best single frame, with a higher score.

The figures measured are printed (run with ``-s`` to see them) and quoted in the report.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import pytest

from workbench.cases.investigate import probes_from_path
from workbench.cli import main
from workbench.config import Settings
from workbench.footage import Sampling, extract

from test_gallery_support import new_home

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


@pytest.fixture(scope="module")
def video(shared_data) -> Path:
    return shared_data / "video"


def test_street_gives_one_track_per_person(video, engine):
    result = extract(video / "street_royal_opera_house.mp4", engine, sampling=Sampling(fps=5))
    tracks = result.tracks
    long_tracks = [t for t in tracks if t.n_faces >= 4]
    print(f"\nstreet: {len(tracks)} tracks, {len(long_tracks)} with 4+ faces, over {result.frames_sampled} frames")
    # 11 people show their face; the detector adds two false faces (the crest, a hair whorl).
    assert len(tracks) >= 6
    assert len(tracks) <= 18, "people must not be cut into many fragments"
    assert len(long_tracks) >= 6
    assert result.warnings == ()


def test_no_faces_negative_gives_no_tracks(video, engine):
    result = extract(video / "openmpf_no_faces_negative.mp4", engine, sampling=Sampling(fps=5))
    assert result.frames_sampled > 80
    assert result.tracks == ()


def test_every_codec_gives_the_same_people(video, engine):
    """The group clip re-encoded seven ways: the five people in each, their faces found in nearly
    every sampled frame (compression loses at most two of the 30 at YuNet's reliable size).
    (A track may split once: a face moving 26 px between samples sits at the tracker's gate in
    some encodings, so the track count may read 6.)"""
    files = sorted((video / "codecs").iterdir())
    results = {f.name: extract(f, engine, sampling=Sampling(fps=5)).tracks for f in files}
    faces = {name: sum(len(t.faces) for t in tracks) for name, tracks in results.items()}
    print(f"\ncodecs: tracks { {name: len(tracks) for name, tracks in results.items()} }, faces {faces}")
    assert len(files) >= 7
    assert all(5 <= len(tracks) <= 6 for tracks in results.values()), "five people in the group clip"
    assert min(faces.values()) >= 5 * 6 - 2, "five faces in each of the six sampled frames"


@pytest.fixture(scope="module")
def fr_gallery(tmp_path_factory, session_home, shared_data) -> Path:
    """fr_examples/train (5 people) plus the 221 ISS portraits as distractors."""
    home = new_home(tmp_path_factory.mktemp("fr-gallery") / "ws", session_home)
    manifest = home.parent / "iss.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["subject_id", "image_path"])
        for path in sorted((shared_data / "faces" / "iss_portraits").glob("*.jpg")):
            writer.writerow([path.stem, str(path)])
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--home", str(home), "gallery", "enrol", str(shared_data / "faces" / "fr_examples" / "train"), "--json"]) == 0
        assert main(["--home", str(home), "gallery", "enrol", "--manifest", str(manifest), "--json"]) == 0
        assert main(["--home", str(home), "case", "new", "HAMILTON-1", "--offence", "test", "--purpose", "find obama in the clip"]) == 0
    return home


def test_hamilton_search_puts_obama_first_for_a_track(fr_gallery, video, capsys):
    status = main(
        ["--home", str(fr_gallery), "search", "--case", "HAMILTON-1", str(video / "short_hamilton_clip.mp4"), "--top", "5", "--json"]
    )
    data = json.loads(capsys.readouterr().out)
    assert status == 0
    firsts = {p["probe_id"]: p["candidates"][0]["subject_id"] for p in data["probes"]}
    obama = [p for p in data["probes"] if p["candidates"][0]["subject_id"] == "obama"]
    print(f"\nhamilton: {len(data['probes'])} tracks; obama first for {[(p['probe_id'], p['start_s'], p['end_s']) for p in obama]}")
    assert obama, firsts
    assert all(p["start_s"] is not None and p["end_s"] >= p["start_s"] for p in data["probes"])
    qualities = [p["quality"] for p in data["probes"]]
    assert qualities == sorted(qualities, reverse=True)


def test_fusing_frames_ranks_the_mate_at_least_as_high_as_the_best_frame(fr_gallery, video, engine):
    from workbench.gallery.search import search
    from workbench.gallery.store import Gallery

    probes = probes_from_path(video / "short_hamilton_clip.mp4", engine)
    rows = []
    with Gallery.open(Settings(home=fr_gallery, user="test-user")) as gallery:
        for probe in probes:
            fused = search(gallery, probe.faces, top=300)
            single = search(gallery, probe.faces[0], top=300)  # faces are best quality first
            if fused[0].subject_id != "obama" and single[0].subject_id != "obama":
                continue
            if len(probe.faces) < 3:
                continue  # a glimpse of one usable frame: nothing to fuse
            rows.append((probe, fused, single))
    assert rows, "obama's track must be found"
    for probe, fused, single in rows:
        rank_fused, rank_single = fused.subject_ids.index("obama") + 1, single.subject_ids.index("obama") + 1
        margin_fused = fused[0].score - fused[1].score if rank_fused == 1 else fused[0].score - _score(fused, "obama")
        margin_single = single[0].score - single[1].score if rank_single == 1 else single[0].score - _score(single, "obama")
        print(
            f"\n{probe.probe_id} ({probe.start_s}-{probe.end_s} s, {len(probe.faces)} frames fused): obama rank {rank_fused} "
            f"score {_score(fused, 'obama'):.3f} margin {margin_fused:+.3f} | best single frame: rank {rank_single} "
            f"score {_score(single, 'obama'):.3f} margin {margin_single:+.3f}"
        )
        assert rank_fused <= rank_single
        assert _score(fused, "obama") >= _score(single, "obama") - 1e-6  # max over faces; float32 batch order aside


def _score(candidates, subject: str) -> float:
    return next(c.score for c in candidates if c.subject_id == subject)
