"""Video probes: ``workbench search VIDEO`` searches each face track with its good faces fused.

The gallery is the sample gallery of the gallery tests (the six faces of t1.jpg as subjects
T1-1..T1-6, plus HANKS and COLLINS); the footage shows some of those faces, degraded.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from workbench.cases.investigate import probes_from_path
from workbench.cli import main
from workbench.errors import NoFaceError

from conftest import face_crop
from test_gallery_support import copy_home, sample_folder, sample_home  # noqa: F401  (fixtures)
from videos import Actor, render, write_video


@pytest.fixture(scope="module")
def two_people(tmp_path_factory, t1_rgb, t1_faces):
    """T1-3 large and sharp on the left, T1-5 small and blurred on the right, 2 s."""
    sharp, small = face_crop(t1_rgb, t1_faces[2], margin=0.6), face_crop(t1_rgb, t1_faces[4], margin=0.6)
    actors = [Actor(sharp, (150, 180), (220, 180), 150, 150, 0.0, 2.0), Actor(small, (500, 150), (470, 160), 70, 70, 0.4, 2.0)]
    frames = render(actors, seconds=2.0, fps=10.0, jpeg_quality=50)
    return write_video(tmp_path_factory.mktemp("search-clip") / "two.mp4", frames, fps=10.0)


@pytest.fixture(scope="module")
def no_faces(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("search-empty") / "empty.mp4", render([], seconds=1.0), fps=10.0)


def test_video_probes_are_tracks_best_quality_first(two_people, engine):
    probes = probes_from_path(two_people, engine)
    assert [p.probe_id for p in probes] == ["two.mp4#track1", "two.mp4#track2"]
    assert probes[0].quality > probes[1].quality
    assert (probes[0].start_s, probes[1].start_s) == (0.0, 0.4)
    assert probes[0].end_s == 1.8
    assert 2 <= len(probes[0].faces) <= 10, "several good faces fused"


def test_a_video_without_faces_is_no_probe(no_faces, engine):
    with pytest.raises(NoFaceError, match="empty.mp4: no face found in 5 sampled frames"):
        probes_from_path(no_faces, engine)


CASE = "FOOTAGE-1"


def _with_case(home):
    """Searches run inside an open case."""
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["--home", str(home), "case", "new", CASE, "--offence", "test", "--purpose", "video search tests"]) == 0
    return home


def test_search_video_json_lists_tracks_with_times(tmp_path, sample_home, two_people, capsys):  # noqa: F811
    home = _with_case(copy_home(sample_home, tmp_path / "ws"))
    status = main(["--home", str(home), "search", "--case", CASE, str(two_people), "--top", "3", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert status == 0
    probes = data["probes"]
    assert [(p["probe_id"], p["start_s"], p["end_s"]) for p in probes] == [("two.mp4#track1", 0.0, 1.8), ("two.mp4#track2", 0.4, 1.8)]
    assert [p["candidates"][0]["subject_id"] for p in probes] == ["T1-3", "T1-5"]
    assert data["candidates"] == probes[0]["candidates"]
    assert probes[0]["quality"] >= probes[1]["quality"]
    assert all(len(p["candidates"]) == 3 for p in probes)


def test_search_video_with_fuse_uses_the_best_track(tmp_path, sample_home, two_people, capsys):  # noqa: F811
    home = _with_case(copy_home(sample_home, tmp_path / "ws"))
    status = main(["--home", str(home), "search", "--case", CASE, str(two_people), "--fuse", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert status == 0 and data["candidates"][0]["subject_id"] == "T1-3"


def test_search_video_without_faces_exits_1(tmp_path, sample_home, no_faces, capsys):  # noqa: F811
    home = _with_case(copy_home(sample_home, tmp_path / "ws"))
    status = main(["--home", str(home), "search", "--case", CASE, str(no_faces), "--json"])
    assert status == 1
    assert "no face found" in json.loads(capsys.readouterr().out)["error"]
