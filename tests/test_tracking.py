"""Linking faces into tracks: gates, crossing people, gaps, fragments, best shots, probe faces.

The first tests build faces by hand (boxes, unit embeddings, quality) so each rule is seen on
its own; the last ones run the real engine on clips of two faces of t1.jpg crossing.
"""

from __future__ import annotations

import numpy as np
import pytest

from workbench.footage import Sampling, extract
from workbench.footage.tracking import (
    FrameFaces,
    TrackerConfig,
    box_iou,
    build_tracks,
    link_faces,
    probe_faces,
    scene_change,
    scene_signature,
    track_tracks,
)
from workbench.types import Face, FaceQuality, FootageFace, Track

from conftest import face_crop
from videos import Actor, render, write_video

DIM = 128


def unit(seed: int, near: np.ndarray | None = None, spread: float = 0.0) -> np.ndarray:
    """A random unit vector; with ``near``, one at about cosine 1 - spread**2/2 of it."""
    rng = np.random.default_rng(seed)
    v = rng.normal(size=DIM)
    if near is not None:
        v = near / np.linalg.norm(near) + spread * v / np.linalg.norm(v) / np.sqrt(1.0)
    return (v / np.linalg.norm(v)).astype(np.float32)


ALICE, BOB = unit(1), unit(2)


def face(x: float, y: float, size: float = 60.0, who: np.ndarray = ALICE, quality: float = 0.8, score: float = 0.9, seed: int = 0) -> Face:
    """A face of ``size`` px centred at (x, y); its embedding is ``who`` with a little noise."""
    embedding = unit(seed, near=who, spread=0.3) if seed else who
    q = FaceQuality(inter_ocular_px=size / 2.5, sharpness=100.0, yaw_deg=0.0, pitch_deg=0.0, score=quality)
    return Face((x - size / 2, y - size / 2, x + size / 2, y + size / 2), np.zeros((5, 2)), score, quality=q, embedding=embedding)


def frames_of(*per_frame, fps: float = 5.0) -> list[FrameFaces]:
    return [FrameFaces(i, i / fps, tuple(faces)) for i, faces in enumerate(per_frame)]


def tracks_of(frames, **config) -> tuple[Track, ...]:
    return track_tracks(frames, source_path="clip.mp4", source_sha256="0" * 64, config=TrackerConfig(**config))


def who(track: Track) -> list[str]:
    return ["A" if float(f.face.embedding @ ALICE) > float(f.face.embedding @ BOB) else "B" for f in track.faces]


def test_a_face_moving_steadily_is_one_track():
    frames = frames_of(*[[face(100 + 30 * i, 200, seed=i + 1)] for i in range(10)])
    (track,) = tracks_of(frames)
    assert track.n_faces == 10 and (track.start_s, track.end_s) == (0.0, 1.8)
    assert [f.frame_index for f in track.faces] == list(range(10))


def test_two_people_crossing_do_not_swap():
    """A walks right, B walks left on the same line; at the crossing only the front face (A) is
    seen for two frames, and its box sits where B's track expects B."""
    per_frame = []
    for i in range(11):
        a, b = face(100 + 40 * i, 200, who=ALICE, seed=i + 1), face(500 - 40 * i, 200, who=BOB, seed=i + 50)
        per_frame.append([a] if i in (5, 6) else [a, b])
    tracks = tracks_of(frames_of(*per_frame))
    assert len(tracks) == 2
    assert sorted("".join(who(t)) for t in tracks) == ["A" * 11, "B" * 9]
    b_track = next(t for t in tracks if who(t)[0] == "B")
    assert [f.frame_index for f in b_track.faces] == [0, 1, 2, 3, 4, 7, 8, 9, 10], "B continues after being hidden"


def test_geometry_alone_does_not_hand_a_good_face_to_someone_else():
    """B steps exactly into A's place as A vanishes: same box, good quality, another face."""
    per_frame = [[face(200, 200, who=ALICE)] for _ in range(4)] + [[face(200, 200, who=BOB)] for _ in range(4)]
    tracks = tracks_of(frames_of(*per_frame))
    assert [who(t) for t in tracks] == [["A"] * 4, ["B"] * 4]


def test_a_blurred_face_continues_its_track_on_geometry():
    """A tiny or blurred face has an unreliable embedding: a clear overlap keeps it in its track."""
    blurred = face(212, 200, who=BOB, quality=0.15)  # embedding says "someone else"
    per_frame = [[face(200 + 4 * i, 200, who=ALICE)] for i in range(3)] + [[blurred]] + [[face(216, 200, who=ALICE)]]
    (track,) = tracks_of(frames_of(*per_frame))
    assert track.n_faces == 5


def test_a_track_ends_after_the_gap_and_fragments_rejoin_on_appearance():
    """Hidden for 2 s (longer than max_gap_s): two fragments, joined afterwards because their
    good faces agree; a different person after the same gap stays separate."""
    before = [[face(100 + 10 * i, 200, seed=i + 1)] for i in range(5)]
    hidden = [[] for _ in range(10)]
    same = [[face(200 + 10 * i, 200, seed=i + 20)] for i in range(5)]
    other = [[face(200 + 10 * i, 200, who=BOB, seed=i + 20)] for i in range(5)]
    assert len(tracks_of(frames_of(*before, *hidden, *same))) == 1
    assert len(tracks_of(frames_of(*before, *hidden, *same), relink_gap_s=0)) == 2
    assert len(tracks_of(frames_of(*before, *hidden, *other))) == 2


def test_low_quality_fragments_are_not_rejoined():
    """Embeddings of poor faces crowd together whoever the person is: they vouch for nothing."""
    before = [[face(100 + 10 * i, 200, quality=0.2, seed=i + 1)] for i in range(5)]
    after = [[face(200 + 10 * i, 200, quality=0.2, seed=i + 20)] for i in range(5)]
    assert len(tracks_of(frames_of(*before, *[[] for _ in range(10)], *after))) == 2


def _signature(rgb_colour) -> np.ndarray:
    import cv2

    frame = np.zeros((36, 64, 3), np.uint8)
    frame[:] = rgb_colour
    frame[10:20, 10:30] = (200, 200, 200)  # some structure, same in every frame
    return scene_signature(cv2.cvtColor(frame, cv2.COLOR_RGB2HSV))


def test_a_cut_to_another_shot_ends_every_track_and_nothing_rejoins_across_it():
    """Same place, same face, but the picture changed shot: edited footage or a DVR switching
    cameras. Nothing about position carries over a cut."""
    shot_a, shot_b = _signature((150, 40, 40)), _signature((30, 60, 160))
    assert scene_change(shot_a, shot_a) < 1e-3 and scene_change(shot_a, shot_b) > 0.9
    frames = [
        FrameFaces(i, i / 5, (face(200, 200, seed=i + 1),), shot_a if i < 4 else shot_b) for i in range(8)
    ]
    assert [t.n_faces for t in tracks_of(frames)] == [4, 4]
    assert [t.n_faces for t in tracks_of([f._replace(signature=None) for f in frames])] == [8]


def test_a_face_found_twice_in_one_frame_counts_once():
    double = [face(200, 200, score=0.95), face(205, 190, size=55, score=0.7, who=BOB)]
    (track,) = tracks_of(frames_of([face(200, 200)], double, [face(200, 200)]))
    assert track.n_faces == 3 and track.faces[1].face.detector_score == 0.95


def test_ids_follow_first_appearance_then_left_to_right_whatever_the_detection_order():
    late = face(50, 50, who=BOB)
    frames = frames_of([face(400, 200, seed=3), face(100, 300, who=unit(7))], [late, face(400, 200, seed=4), face(100, 300, who=unit(7))])
    shuffled = [FrameFaces(f.frame_index, f.timestamp_s, tuple(reversed(f.faces))) for f in frames]
    expected = [(t.track_id, t.faces[0].face.bbox_xyxy) for t in tracks_of(frames)]
    assert expected == [(t.track_id, t.faces[0].face.bbox_xyxy) for t in tracks_of(shuffled)]
    assert [box[0] for _, box in expected] == [70.0, 370.0, 20.0]


def test_best_shot_is_the_highest_quality_and_the_earliest_on_ties():
    qualities = [0.3, 0.7, 0.5, 0.7]
    (track,) = tracks_of(frames_of(*[[face(100 + 5 * i, 200, quality=q)] for i, q in enumerate(qualities)]))
    assert track.best_index == 1 and track.quality == 0.7 and track.best.frame_index == 1


def test_probe_faces_are_the_good_faces_best_first():
    qualities = [0.3, 0.9, 0.5, 0.6, 0.2]
    (track,) = tracks_of(frames_of(*[[face(100 + 5 * i, 200, quality=q)] for i, q in enumerate(qualities)]))
    assert [f.quality.score for f in probe_faces(track, min_quality=0.4)] == [0.9, 0.6, 0.5]
    assert [f.quality.score for f in probe_faces(track, min_quality=0.4, max_faces=2)] == [0.9, 0.6]
    assert [f.quality.score for f in probe_faces(track, min_quality=0.95)] == [0.9], "the best shot at least"
    assert [f.quality.score for f in probe_faces(track, min_quality=0.95, relative_quality=0.6)] == [0.9, 0.6]
    with pytest.raises(ValueError, match="max_faces"):
        probe_faces(track, max_faces=0)


def test_min_faces_drops_short_tracks():
    frames = frames_of([face(100, 100), face(400, 300, who=BOB)], [face(100, 100)])
    assert [t.n_faces for t in tracks_of(frames, min_faces=2)] == [2]


@pytest.mark.parametrize(
    "faces, message",
    [
        ((), "has no faces"),
        ((FootageFace(1, 3, 0.6, face(0, 0)), FootageFace(1, 2, 0.4, face(0, 0))), "increasing frame order"),
        ((FootageFace(2, 3, 0.6, face(0, 0)),), "carry track_id 1"),
    ],
)
def test_track_records_are_validated(faces, message):
    with pytest.raises(ValueError, match=message):
        Track(1, "clip.mp4", "0" * 64, faces, 0)


@pytest.mark.parametrize("bad", [dict(max_gap_s=-1), dict(iou_weight=2), dict(min_faces=0), dict(max_overlap=0), dict(min_similarity=3)])
def test_bad_tracker_settings_are_refused(bad):
    with pytest.raises(ValueError, match="out of range"):
        TrackerConfig(**bad)


def test_frames_must_come_in_time_order():
    with pytest.raises(ValueError, match="time order"):
        link_faces([FrameFaces(1, 1.0, ()), FrameFaces(0, 0.0, ())])


def test_iou():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0


def test_build_tracks_numbers_groups_by_first_frame():
    groups = [[(5, 1.0, face(10, 10))], [(2, 0.4, face(50, 10)), (3, 0.6, face(52, 10))]]
    tracks = build_tracks(groups, source_path="s", source_sha256="h")
    assert [(t.track_id, t.start_s) for t in tracks] == [(1, 0.4), (2, 1.0)]


# -- on real faces --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crossing_clip(tmp_path_factory, t1_rgb, t1_faces):
    """Two faces of t1.jpg crossing on the same line in 3 s: the second passes in front."""
    a, b = (face_crop(t1_rgb, t1_faces[i], margin=0.6) for i in (1, 4))
    actors = [
        Actor(a, (120, 190), (520, 190), 110, 110, 0.0, 3.0),
        Actor(b, (520, 180), (120, 180), 110, 110, 0.0, 3.0),
    ]
    frames = render(actors, seconds=3.0, fps=10.0, blur_sigma=0.8, jpeg_quality=50)
    return write_video(tmp_path_factory.mktemp("crossing") / "crossing.mp4", frames, fps=10.0), (t1_faces[1], t1_faces[4])


@pytest.mark.slow
def test_real_faces_crossing_keep_their_identity(crossing_clip, engine):
    path, (face_a, face_b) = crossing_clip
    result = extract(path, engine, sampling=Sampling(fps=5))
    assert len(result.tracks) == 2, [t.as_dict() for t in result.tracks]
    for track in result.tracks:
        identities = {
            "A" if float(f.face.embedding @ face_a.embedding) > float(f.face.embedding @ face_b.embedding) else "B"
            for f in track.faces
            if f.quality_score >= 0.3
        }
        assert len(identities) == 1, f"track {track.track_id} mixes people"
        xs = [(f.face.bbox_xyxy[0] + f.face.bbox_xyxy[2]) / 2 for f in track.faces]
        assert xs == sorted(xs) or xs == sorted(xs, reverse=True), "each track moves one way"
    assert {round(t.start_s, 1) for t in result.tracks} == {0.0}
    assert {round(t.end_s, 1) for t in result.tracks} == {2.8}
