"""Reading footage (videos, stills, folders), sampling with true timestamps, damaged input,
face tracks with best shots on short clips made from package images, and the CLI.

Clips are made by :mod:`videos` from faces of InsightFace's ``t1.jpg`` moving over a
face-free background, encoded with PyAV (h264 and mpeg4 in mp4, mjpeg in avi).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main
from workbench.errors import FootageError
from workbench.fileio import sha256_file
from workbench.footage import (
    FootageWarning,
    Sampling,
    SourceKind,
    extract,
    extract_many,
    iter_frames,
    plan_source,
)
from workbench.images import load_image

from conftest import face_crop
from videos import (
    CODECS,
    Actor,
    crossing,
    render,
    sharpest_at,
    still_names,
    truncate,
    write_video,
)

CLIP_S = 3.0
CLIP_FPS = 10.0
#: the face of the main clip is visible from T_IN to T_OUT and sharpest at T_BEST.
T_IN, T_OUT, T_BEST = 0.5, 2.5, 1.5


@pytest.fixture(scope="module")
def patches(t1_rgb, t1_faces) -> list[np.ndarray]:
    """Loose crops of the six faces of t1.jpg, left to right."""
    return [face_crop(t1_rgb, face, margin=0.6) for face in t1_faces]


@pytest.fixture(scope="module")
def clips(tmp_path_factory, patches) -> dict[str, Path]:
    """The test footage, written once for the module.

    * ``one_<codec>``: one face crossing from T_IN to T_OUT, sharpest at T_BEST, JPEG noise.
    * ``empty``: the background only.
    * ``rotated``: a phone-style clip stored on its side with a display rotation.
    * ``vfr``: variable frame rate (irregular timestamps).
    """
    root = tmp_path_factory.mktemp("clips")
    actor = Actor(patches[2], (140, 180), (500, 190), 100, 130, T_IN, T_OUT)
    frames = render([actor], seconds=CLIP_S, fps=CLIP_FPS, blur_sigma=sharpest_at(T_BEST, blurred=2.5), jpeg_quality=40)
    out = {}
    for codec, (_, suffix) in CODECS.items():
        out[f"one_{codec}"] = write_video(root / f"one_{codec}{suffix}", frames, fps=CLIP_FPS, codec=codec)
    out["empty"] = write_video(root / "empty.mp4", render([], seconds=1.0, fps=CLIP_FPS), fps=CLIP_FPS)
    steady = render([crossing(patches[0], seconds=1.0)], seconds=1.0, fps=CLIP_FPS)
    out["rotated"] = write_video(root / "rotated.mp4", steady, fps=CLIP_FPS, rotation=90)
    out["vfr"] = write_video(root / "vfr.mp4", steady[:6], pts_ms=[0, 40, 250, 260, 700, 1010])
    return out


@pytest.fixture(scope="module")
def one_result(clips, engine):
    return extract(clips["one_libx264"], engine, sampling=Sampling(fps=5))


# -- reading and sampling --------------------------------------------------------------------------


def test_every_frame_has_its_index_and_true_timestamp(clips):
    frames = list(iter_frames(clips["one_libx264"], Sampling(fps=None)))
    assert [f.frame_index for f in frames] == list(range(int(CLIP_S * CLIP_FPS)))
    assert np.allclose([f.timestamp_s for f in frames], np.arange(len(frames)) / CLIP_FPS)
    assert frames[0].rgb.shape == (360, 640, 3) and frames[0].rgb.dtype == np.uint8


def test_variable_frame_rate_keeps_the_presentation_times(clips):
    """Times come from the stream's timestamps, not frame counts over a nominal rate."""
    frames = list(iter_frames(clips["vfr"], Sampling(fps=None)))
    assert [round(f.timestamp_s, 3) for f in frames] == [0.0, 0.04, 0.25, 0.26, 0.7, 1.01]
    assert [f.frame_index for f in frames] == list(range(6))


@pytest.mark.parametrize(
    "sampling, expected_times",
    [
        (Sampling(fps=5), [0.0, 0.2, 0.4, 0.6, 0.8]),
        (Sampling(fps=2, start_s=0.3), [0.3, 0.8]),
        (Sampling(fps=None, start_s=0.25, end_s=0.55), [0.3, 0.4, 0.5]),
        (Sampling(fps=50, end_s=0.3), [0.0, 0.1, 0.2]),  # faster than the video: every frame once
    ],
)
def test_sampling_rate_and_time_range(clips, sampling, expected_times):
    frames = list(iter_frames(clips["rotated"], sampling))
    assert [round(f.timestamp_s, 3) for f in frames] == expected_times
    assert [f.frame_index for f in frames] == [round(t * CLIP_FPS) for t in expected_times]


def test_variable_frame_rate_sampling_takes_the_first_frame_of_each_slot(clips):
    frames = list(iter_frames(clips["vfr"], Sampling(fps=4)))  # slots of 0.25 s
    assert [round(f.timestamp_s, 3) for f in frames] == [0.0, 0.25, 0.7, 1.01]


def test_phone_rotation_is_applied(clips, engine):
    frames = list(iter_frames(clips["rotated"], Sampling(fps=2)))
    assert frames[0].rgb.shape == (360, 640, 3)  # stored 360 wide x 640 high, shown landscape
    assert engine.analyse(frames[0].rgb), "the upright face must be found"


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_codecs_decode_to_the_same_frames(clips, codec):
    plan = plan_source(clips[f"one_{codec}"], Sampling(fps=None))
    assert plan.info.kind is SourceKind.VIDEO
    assert plan.info.frame_count == int(CLIP_S * CLIP_FPS)
    assert (plan.info.width, plan.info.height) == (640, 360)
    assert plan.info.sha256 == sha256_file(clips[f"one_{codec}"])


def test_chunks_sample_exactly_the_frames_of_one_pass(clips):
    one_pass = plan_source(clips["one_libx264"], Sampling(fps=5))
    chunked = plan_source(clips["one_libx264"], Sampling(fps=5), chunk_s=0.6)
    assert len(one_pass.chunks) == 1 and len(chunked.chunks) == 5
    assert [c.index_offset for c in chunked.chunks] == [0, 6, 12, 18, 24]
    from workbench.footage.decode import _chunk_frames  # the per-chunk decoder the workers run

    def frames(plan):
        return [(f.frame_index, f.timestamp_s, f.rgb.tobytes()) for c in plan.chunks for f in _chunk_frames(c, [])]

    assert frames(chunked) == frames(one_pass)


def test_frames_no_sampled_frame_needs_are_not_decoded_and_change_nothing(clips, monkeypatch):
    """H.264 pictures nothing refers to are skipped unless sampled: the sampled frames are the same
    pixels as when every frame is decoded (h264 clips written with B-frames, chunked too)."""
    from workbench.footage import decode

    clip = clips["one_libx264"]
    chunked = plan_source(clip, Sampling(fps=5), chunk_s=0.6)

    def frames(plan):
        return [(f.frame_index, f.timestamp_s, f.rgb.tobytes()) for c in plan.chunks for f in decode._chunk_frames(c, [])]

    skipped = [0]
    original = decode._unneeded_packets

    def counting(chunk, stream):
        test = original(chunk, stream)
        return None if test is None else (lambda packet: test(packet) and not skipped.__setitem__(0, skipped[0] + 1))

    monkeypatch.setattr(decode, "_unneeded_packets", counting)
    with_skipping = frames(chunked)
    assert skipped[0] > 0, "the clip's unsampled B-frames are not decoded"
    monkeypatch.setattr(decode, "_unneeded_packets", lambda chunk, stream: None)
    assert with_skipping == frames(chunked)


# -- stills ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stills_folder(tmp_path_factory, clips) -> Path:
    """Ten stills named img1..img10 (natural order differs from plain sorting), from the clip."""
    folder = tmp_path_factory.mktemp("stills")
    frames = list(iter_frames(clips["one_libx264"], Sampling(fps=None)))[5:25:2]
    for name, frame in zip(still_names(10), frames):
        from PIL import Image

        Image.fromarray(frame.rgb).save(folder / name, quality=90)
    (folder / "notes.txt").write_text("not a still")
    return folder


def test_folder_of_stills_in_natural_order_with_a_listing_hash(stills_folder):
    plan = plan_source(stills_folder, Sampling(fps=None))
    assert plan.info.kind is SourceKind.STILLS
    assert [Path(f).name for f in plan.info.files] == still_names(10)
    listing = "".join(f"{sha256_file(stills_folder / n)}  {n}\n" for n in still_names(10))
    assert plan.info.sha256 == hashlib.sha256(listing.encode()).hexdigest()
    frames = list(iter_frames(stills_folder, Sampling(fps=None)))
    assert [(f.frame_index, f.timestamp_s) for f in frames] == [(i, float(i)) for i in range(10)]


def test_stills_become_one_track(stills_folder, engine):
    result = extract(stills_folder, engine, sampling=Sampling(fps=None))
    assert len(result.tracks) == 1
    assert result.tracks[0].n_faces == 10
    assert result.tracks[0].faces[0].frame_index == 0


def test_a_single_still_is_footage_of_one_frame(t1_path, engine):
    result = extract(t1_path, engine)
    assert result.info.kind is SourceKind.IMAGE
    assert len(result.tracks) == 6 and all(t.n_faces == 1 and t.start_s == 0.0 for t in result.tracks)


def test_a_bad_still_in_a_folder_is_skipped_with_a_warning(tmp_path, t1_path, engine):
    folder = tmp_path / "stills"
    folder.mkdir()
    (folder / "a1.jpg").write_bytes(t1_path.read_bytes())
    (folder / "a2.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(FootageWarning, match=r"a2\.jpg.*1\.00 s"):
        result = extract(folder, engine, sampling=Sampling(fps=None))
    assert result.frames_sampled == 1 and len(result.tracks) == 6


# -- damaged and wrong input ------------------------------------------------------------------------


def _zero_length(folder: Path, clips) -> Path:
    path = folder / "zero.mp4"
    path.write_bytes(b"")
    return path


def _text_named_mp4(folder: Path, clips) -> Path:
    path = folder / "notes.mp4"
    path.write_text("minutes of the meeting\n" * 50)
    return path


def _random_bytes(folder: Path, clips) -> Path:
    path = folder / "random.avi"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    return path


def _missing(folder: Path, clips) -> Path:
    return folder / "no-such-file.mp4"


def _empty_folder(folder: Path, clips) -> Path:
    path = folder / "empty-folder"
    path.mkdir()
    return path


def _folder_of_videos(folder: Path, clips) -> Path:
    path = folder / "videos"
    path.mkdir()
    (path / "clip.mp4").write_bytes(clips["empty"].read_bytes())
    return path


def _cut_before_index(folder: Path, clips) -> Path:
    """An mp4 written with its index at the end, cut at 60%: the index is lost."""
    frames = list(iter_frames(clips["empty"], Sampling(fps=None)))
    whole = write_video(folder / "late_index.mp4", [f.rgb for f in frames], faststart=False)
    return truncate(whole, 0.6)


def _audio_only(folder: Path, clips) -> Path:
    import av

    path = folder / "audio.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (_zero_length, r"zero\.mp4: file is empty \(0 bytes\)"),
        (_text_named_mp4, r"notes\.mp4: not a video that can be read"),
        (_random_bytes, r"random\.avi: not a video that can be read"),
        (_missing, r"no-such-file\.mp4: no such file"),
        (_empty_folder, r"empty-folder: no still images"),
        (_folder_of_videos, r"videos: no still images.*1 video file"),
        (_cut_before_index, r"late_index_cut\.mp4: not a video that can be read.*copied or exported only in part"),
        (_audio_only, r"audio\.wav: holds no video stream"),
    ],
    ids=lambda v: getattr(v, "__name__", "")[1:] if callable(v) else None,
)
def test_unreadable_input_is_a_clear_error(tmp_path, clips, engine, make, message):
    path = make(tmp_path, clips)
    with pytest.raises(FootageError, match=message):
        extract(path, engine)


@pytest.mark.parametrize("bad", [dict(fps=0), dict(fps=-5), dict(start_s=-1), dict(start_s=2, end_s=1)])
def test_bad_sampling_is_refused(bad):
    with pytest.raises(FootageError, match="must be"):
        Sampling(**bad)


def test_truncated_video_keeps_the_faces_before_the_damage(tmp_path, clips, engine):
    whole = clips["one_libx264"]
    cut = truncate(whole, 0.6, tmp_path / "cut.mp4")
    with pytest.warns(FootageWarning, match=r"cut\.mp4: .*\d+\.\d\d s") as caught:
        result = extract(cut, engine, sampling=Sampling(fps=5))
    assert result.warnings and all("cut.mp4" in w for w in result.warnings)
    assert len(caught) == len(result.warnings)
    assert len(result.tracks) == 1
    track = result.tracks[0]
    assert abs(track.start_s - 0.6) < 0.05
    assert track.end_s < 0.75 * CLIP_S  # stops at the damage, not at the declared end


def test_a_video_without_faces_gives_no_tracks(clips, engine):
    result = extract(clips["empty"], engine)
    assert result.tracks == () and result.frames_sampled == 5 and result.warnings == ()
    assert result.faces.empty


def test_errors_can_be_returned_in_place(clips, engine, tmp_path):
    results = extract_many([clips["empty"], tmp_path / "missing.mp4"], engine, return_errors=True)
    assert results[0].tracks == ()
    assert isinstance(results[1], FootageError) and "missing.mp4" in str(results[1])


# -- tracks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_one_face_gives_one_track_with_its_times_and_best_shot(clips, engine, codec):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FootageWarning)
        result = extract(clips[f"one_{codec}"], engine, sampling=Sampling(fps=5))
    assert len(result.tracks) == 1, [t.as_dict() for t in result.tracks]
    track = result.tracks[0]
    # Sampled at 0.0, 0.2, ...: the first sample showing the face is 0.6, the last 2.4.
    assert (round(track.start_s, 3), round(track.end_s, 3)) == (0.6, 2.4)
    assert track.n_faces == 10
    assert abs(track.best.timestamp_s - T_BEST) <= 0.21, "the sharp moment is the best shot"
    assert track.source_sha256 == sha256_file(clips[f"one_{codec}"])


def test_faces_table_and_tracks_table(one_result):
    faces = one_result.faces
    assert list(faces.columns) == [
        "source", "sha256", "track_id", "frame_index", "timestamp_s", "x1", "y1", "x2", "y2", "detector_score", "quality", "is_best"
    ]
    assert len(faces) == 10 and faces.is_best.sum() == 1
    assert faces.frame_index.is_monotonic_increasing
    assert (faces.x1.diff().dropna() > 0).all(), "the face moves to the right"
    table = one_result.tracks_table()
    assert table.loc[0, "best_timestamp_s"] == one_result.tracks[0].best.timestamp_s


def test_thumbnails_are_decoded_on_demand(one_result, tmp_path, engine):
    track = one_result.tracks[0]
    crop = one_result.thumbnail(track.track_id)
    x1, y1, x2, y2 = track.best.face.bbox_xyxy
    assert abs(crop.shape[1] - 2 * (x2 - x1)) <= 3 and abs(crop.shape[0] - 2 * (y2 - y1)) <= 3
    assert engine.analyse(crop), "the best-shot crop shows the face"
    first = one_result.thumbnail(track.track_id, track.faces[0].frame_index)
    assert first.shape != crop.shape
    written = one_result.save_best_shots(tmp_path / "crops")
    assert list(written) == [1] and load_image(written[1]).shape[2] == 3


def test_track_json_summary(one_result):
    data = one_result.tracks[0].as_dict()
    assert set(data) >= {"track_id", "start_s", "end_s", "n_faces", "best"}
    assert set(data["best"]) == {"frame_index", "timestamp_s", "bbox_xyxy", "quality"}


# -- command line ---------------------------------------------------------------------------------


def run_json(capsys, *argv) -> tuple[int, dict]:
    status = main([*argv, "--json"])
    return status, json.loads(capsys.readouterr().out)


def test_cli_extract_prints_tracks_and_saves_crops(workspace, clips, tmp_path, capsys):
    crops = tmp_path / "crops"
    status, data = run_json(
        capsys, "--home", str(workspace), "footage", "extract", str(clips["one_libx264"]), str(clips["empty"]),
        "--fps", "5", "--save-crops", str(crops),
    )
    assert status == 0
    assert [s["path"] for s in data["sources"]] == [str(clips["one_libx264"]), str(clips["empty"])]
    assert len(data["tracks"]) == 1
    track = data["tracks"][0]
    assert {"track_id", "start_s", "end_s", "n_faces", "best", "source", "sha256"} <= set(track)
    assert (track["start_s"], track["end_s"], track["n_faces"]) == (0.6, 2.4, 10)
    assert set(track["best"]) == {"frame_index", "timestamp_s", "bbox_xyxy", "quality"}
    assert Path(track["crop"]).exists() and Path(track["crop"]).parent == crops


def test_cli_time_range_and_human_output(workspace, clips, capsys):
    status = main(["--home", str(workspace), "footage", "extract", str(clips["one_libx264"]), "--start", "1", "--end", "2"])
    out = capsys.readouterr().out
    assert status == 0
    assert "1 track" in out and "1.00" in out


def test_cli_bad_file_exits_1_but_reports_the_others(workspace, clips, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    status, data = run_json(capsys, "--home", str(workspace), "footage", "extract", str(bad), str(clips["empty"]))
    assert status == 1
    assert "bad.mp4: not a video" in data["sources"][0]["error"]
    assert data["sources"][1]["frames_sampled"] == 5
