"""FaceEngine on real faces: detection, alignment, embeddings, quality, and degraded copies."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from workbench.engine import (
    ARCFACE_TEMPLATE_112,
    DetectionStats,
    align_face,
    balanced_spans,
    most_prominent,
    planned_levels,
    pyramid_scales,
    tile_origins,
)
from workbench.errors import ImageError
from workbench.images import load_image
from workbench.models.runtime import Preprocessing

from conftest import face_crop
from factories import (
    blur,
    grey,
    jpeg,
    png_claiming_size,
    rotate,
    scale_face_to,
    with_exif_orientation,
)


def _inside(point, box) -> bool:
    x, y = point
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def test_six_faces_in_t1_with_consistent_geometry(t1_faces, engine):
    assert len(t1_faces) == 6
    for face in t1_faces:
        assert all(_inside(p, face.bbox_xyxy) for p in face.landmarks)
        left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]  # ArcFace order, image-left first
        assert max(left_eye[1], right_eye[1]) < nose[1] < max(mouth_left[1], mouth_right[1]) + 5
        assert face.embedding.shape == (engine.embedding_dim,) and face.embedding.dtype == np.float32
        assert abs(float(np.linalg.norm(face.embedding)) - 1) < 1e-4
        assert face.pack_id == engine.pack_id
        assert face.aligned.shape == (112, 112, 3)
        assert 0 <= face.quality.score <= 1


def test_different_people_in_t1_score_low(t1_faces):
    embeddings = np.stack([f.embedding for f in t1_faces])
    similarity = embeddings @ embeddings.T
    off_diagonal = similarity[~np.eye(6, dtype=bool)]
    assert off_diagonal.max() < 0.45


@pytest.mark.parametrize("name, expected", [("astronaut", 1), ("tom_hanks", 1)])
def test_single_portraits(engine, name, expected, astronaut_path, tom_hanks_path):
    path = {"astronaut": astronaut_path, "tom_hanks": tom_hanks_path}[name]
    faces = engine.analyse(path)
    assert len(faces) == expected
    assert faces[0].quality.inter_ocular_px > 30


def test_image_without_faces_gives_no_faces(engine):
    from skimage import data

    assert engine.analyse(np.ascontiguousarray(data.coffee())) == []


DEGRADATIONS = {
    "rotated 20 degrees": lambda rgb, w: rotate(rgb, 20),
    "blurred": lambda rgb, w: blur(rgb, 2.0),
    "jpeg quality 10": lambda rgb, w: jpeg(rgb, 10),
    "grey": lambda rgb, w: grey(rgb),
    "face 40 px wide": lambda rgb, w: scale_face_to(rgb, w, 40),
    "face 24 px wide in a 1080p frame": lambda rgb, w: _paste(scale_face_to(rgb, w, 24), (1080, 1920)),
}


def _paste(small: np.ndarray, shape) -> np.ndarray:
    canvas = np.full((*shape, 3), 90, np.uint8)
    y, x = shape[0] // 3, shape[1] // 2
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small if small.ndim == 3 else small[..., None]
    return canvas


@pytest.mark.parametrize("degradation", sorted(DEGRADATIONS))
def test_degraded_copies_match_the_right_person(engine, t1_rgb, t1_faces, degradation):
    """Each face of t1, degraded, is found and is most similar to its own original."""
    originals = np.stack([f.embedding for f in t1_faces])
    for index, face in enumerate(t1_faces):
        probe_image = DEGRADATIONS[degradation](face_crop(t1_rgb, face), face.width)
        probe = engine.prominent_face(probe_image)
        assert probe is not None, f"face {index} lost after: {degradation}"
        scores = originals @ probe.embedding
        assert int(np.argmax(scores)) == index, f"face {index} after {degradation}: scores {np.round(scores, 2)}"


def test_exif_rotated_file_is_read_upright(engine, tmp_path, astronaut_path):
    path = with_exif_orientation(load_image(astronaut_path), tmp_path / "rotated.jpg", 6)
    face = engine.prominent_face(path)
    assert face is not None
    left_eye, right_eye, nose, *_ = face.landmarks
    assert abs(face.quality.yaw_deg) < 20 and nose[1] > left_eye[1]


@pytest.mark.parametrize("shape", [(1080, 1920), (3000, 4000)])
def test_twenty_pixel_faces_are_found_in_large_images(engine, t1_rgb, t1_faces, shape):
    face = t1_faces[3]  # the most frontal face
    small = scale_face_to(face_crop(t1_rgb, face), face.width, 20)
    canvas = _paste(small, shape)
    found = engine.detect(canvas)
    assert len(found) == 1
    x1, y1, x2, y2 = found[0].bbox_xyxy
    assert 14 <= x2 - x1 <= 30
    assert shape[0] // 3 <= y1 <= shape[0] // 3 + small.shape[0]


def test_min_face_setting_drops_smaller_faces(settings, t1_path, t1_faces):
    from workbench.engine import FaceEngine

    engine = FaceEngine.from_settings(settings.replace(min_face_px=130))
    faces = engine.detect(t1_path)  # t1's faces are 93 to 114 px wide
    assert 0 < len(faces) < 6
    assert all(f.width >= 130 * 0.8 for f in faces)


def test_huge_image_is_refused_by_the_engine(engine, tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_claiming_size(20000, 20000))
    with pytest.raises(ImageError, match=str(path)):
        engine.analyse(path)


def test_batched_analysis_equals_one_at_a_time(engine, t1_path, astronaut_path):
    together = engine.analyse_many([t1_path, astronaut_path])
    alone = [engine.analyse(t1_path), engine.analyse(astronaut_path)]
    for a, b in zip(together, alone):
        assert len(a) == len(b)
        for fa, fb in zip(a, b):
            np.testing.assert_allclose(fa.embedding, fb.embedding, atol=1e-5)


def test_alignment_puts_landmarks_on_the_template(t1_rgb, t1_faces):
    """Warp the landmarks of frontal faces: they land within 6 px of the ArcFace points."""
    from workbench.engine import arcface_transform

    for face in t1_faces:
        if abs(face.quality.yaw_deg) > 15:
            continue  # a turned head cannot fit a frontal template
        matrix = arcface_transform(face.landmarks)
        warped = np.hstack([face.landmarks, np.ones((5, 1))]) @ matrix.T
        assert np.abs(warped - ARCFACE_TEMPLATE_112).max() < 6
        crop = align_face(t1_rgb, face.landmarks)
        assert crop.shape == (112, 112, 3) and crop.mean() > 20


# -- preprocessing: the wrong normalisation silently costs accuracy ---------------------------------


def _separation(engine, t1_rgb, t1_faces, preprocessing) -> tuple[float, float]:
    """(mean same-person score, mean margin over the best other person) for degraded t1 faces."""
    saved = engine.recogniser.preprocessing
    engine.recogniser.preprocessing = preprocessing
    try:
        originals = engine.embed_aligned(np.stack([f.aligned for f in t1_faces]))
        degraded = []
        for face in t1_faces:
            small = scale_face_to(face_crop(t1_rgb, face), face.width, 40)
            crop_face = engine.detect(small)[0]
            degraded.append(align_face(small, crop_face.landmarks))
        probes = engine.embed_aligned(np.stack(degraded))
    finally:
        engine.recogniser.preprocessing = saved
    scores = probes @ originals.T
    genuine = np.diag(scores)
    impostor = np.where(np.eye(len(scores), dtype=bool), -np.inf, scores).max(axis=1)
    return float(genuine.mean()), float((genuine - impostor).mean())


def test_sface_needs_rgb_0_255(engine, t1_rgb, t1_faces):
    """(x - 127.5) / 127.5 on SFace, whose graph normalises itself, makes every face look alike."""
    right = _separation(engine, t1_rgb, t1_faces, Preprocessing("RGB", 0.0, 1.0))
    normalised = _separation(engine, t1_rgb, t1_faces, Preprocessing("RGB", 127.5, 127.5))
    assert right[1] > 0.4
    assert normalised[1] < right[1] - 0.3


@pytest.fixture(scope="module")
def glint_pairs(shared_data, tmp_path_factory):
    import csv

    from workbench.evaluate import make_pairs

    folder = shared_data / "faces" / "glint24_aligned"
    path = tmp_path_factory.mktemp("pairs") / "pairs.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "same"])
        writer.writerows(make_pairs(folder, per_identity=10))
    return path, folder


def _accuracy(engine, glint_pairs, preprocessing) -> float:
    from workbench.evaluate import evaluate_pairs

    saved = engine.recogniser.preprocessing
    engine.recogniser.preprocessing = preprocessing
    try:
        return evaluate_pairs(engine, *glint_pairs, aligned=True)["accuracy"]
    finally:
        engine.recogniser.preprocessing = saved


@pytest.mark.shared_data
def test_wrong_preprocessing_costs_sface_accuracy(engine, glint_pairs):
    """The pack's RGB 0..255 beats BGR and (x-127.5)/127.5 on 480 glint24 pairs (figures: bench/bench_accuracy.py)."""
    right = _accuracy(engine, glint_pairs, Preprocessing("RGB", 0.0, 1.0))
    assert right > 0.97
    assert _accuracy(engine, glint_pairs, Preprocessing("BGR", 0.0, 1.0)) < right - 0.005
    assert _accuracy(engine, glint_pairs, Preprocessing("RGB", 127.5, 127.5)) < right - 0.2


@pytest.mark.shared_data
def test_wrong_preprocessing_costs_mobilefacenet_accuracy(scrfd_mfn_folder, tmp_path, glint_pairs):
    """The pack's RGB (x-127.5)/128 beats BGR and raw 0..255 on the same pairs (figures: bench/bench_accuracy.py)."""
    from workbench.config import Settings
    from workbench.engine import FaceEngine
    from workbench.models import import_pack

    import_pack(tmp_path / "models", scrfd_mfn_folder, name="mfn", preprocessing=Preprocessing("RGB", 127.5, 128.0))
    engine = FaceEngine.from_settings(Settings(home=tmp_path, pack="mfn"))
    right = _accuracy(engine, glint_pairs, Preprocessing("RGB", 127.5, 128.0))
    assert right > 0.94
    assert _accuracy(engine, glint_pairs, Preprocessing("BGR", 127.5, 128.0)) < right - 0.005
    assert _accuracy(engine, glint_pairs, Preprocessing("RGB", 0.0, 1.0)) < right - 0.2


# -- quality --------------------------------------------------------------------------------------


def test_quality_ranks_degraded_shots_lower(engine, t1_rgb, t1_faces):
    face = t1_faces[3]
    crop = face_crop(t1_rgb, face)
    sharp = engine.prominent_face(crop).quality
    blurred = engine.prominent_face(blur(crop, 3.0)).quality
    tiny = engine.prominent_face(scale_face_to(crop, face.width, 30)).quality
    assert blurred.sharpness < sharp.sharpness / 2 and blurred.score < sharp.score
    assert tiny.inter_ocular_px < sharp.inter_ocular_px / 2 and tiny.score < sharp.score


def test_yaw_sign_follows_the_turn(t1_faces):
    profile = min(t1_faces, key=lambda f: f.quality.yaw_deg)
    assert profile.quality.yaw_deg < -30  # the turned face in t1 (second from the top right)
    assert profile.quality.score < max(f.quality.score for f in t1_faces)


# -- geometry helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize("shape, levels", [((480, 640), 2), ((1080, 1920), 2), ((3000, 4000), 3), ((200, 200), 1)])
def test_dense_pyramid_levels(shape, levels):
    scales = pyramid_scales(*shape, min_face_px=20)
    assert len(scales) == levels
    assert scales == sorted(scales)
    assert all(b / a <= 5.0 + 1e-9 for a, b in zip(scales, scales[1:]))


@pytest.mark.parametrize("length", [100, 640, 641, 1920, 5000])
def test_tiles_cover_the_image_with_overlap(length):
    origins = tile_origins(length)
    covered = np.zeros(length, bool)
    for o in origins:
        covered[o : o + 640] = True
    assert covered.all()
    assert all(b - a <= 640 - 160 for a, b in zip(origins, origins[1:]))


@pytest.mark.parametrize("shrink", [False, True])
@pytest.mark.parametrize("length, window, overlap", [(641, 640, 80), (1920, 640, 107), (5000, 640, 160), (2800, 2048, 109)])
def test_balanced_windows_cover_the_image_with_overlap(length, window, overlap, shrink):
    spans = balanced_spans(length, window, overlap, shrink=shrink)
    covered = np.zeros(length, bool)
    for start, size in spans:
        assert 0 <= start and start + size <= length and size <= window
        covered[start : start + size] = True
    assert covered.all()
    assert all(a_start + a_size - b_start >= overlap for (a_start, a_size), (b_start, _) in zip(spans, spans[1:]))


@pytest.mark.parametrize("shape, min_face_px", [((480, 640), 20), ((1080, 1920), 80), ((3000, 4000), 140), ((300, 200), 20)])
def test_planner_runs_one_canvas_when_the_whole_image_covers_the_smallest_face(shape, min_face_px):
    """The whole image on one canvas sees faces of reliable_face_px / scale: no finer level is searched
    when that is min_face_px or less (640x480: 16 px; 1080p: 48 px; 4000x3000: 100 px)."""
    levels = planned_levels(*shape, min_face_px=min_face_px, reliable_face_px=16)
    assert len(levels) == 1 and len(levels[0].windows(*shape)) == 1


@pytest.mark.parametrize("shape", [(1080, 1920), (3000, 4000), (8000, 8000)])
def test_planner_adds_finer_levels_only_down_to_the_smallest_face(shape):
    levels = planned_levels(*shape, min_face_px=20, reliable_face_px=16)
    assert levels[0].scale == min(1.0, 640 / max(shape)) and len(levels[0].windows(*shape)) == 1
    assert levels[-1].scale == pytest.approx(16 / 20)  # a 20 px face becomes 16 px on the finest canvas
    for coarse, fine in zip(levels, levels[1:]):
        # the finer level keeps every face the coarser one cannot see reliably (16 px on its canvas) and
        # its tiles overlap by more than the widest face it keeps, so each lies whole inside one tile
        assert fine.max_face_px >= 16 * fine.scale / coarse.scale
        assert fine.overlap > fine.max_face_px


def test_engine_refuses_an_unknown_schedule(session_home):
    from workbench.config import Settings
    from workbench.engine import FaceEngine

    with pytest.raises(ValueError, match="schedule"):
        FaceEngine.from_settings(Settings(home=session_home), schedule="sparse")


@pytest.fixture(scope="module")
def dense_engine(session_home):
    from workbench.config import Settings
    from workbench.engine import FaceEngine

    return FaceEngine.from_settings(Settings(home=session_home), schedule="dense")


def _matched(box, boxes, iou_floor=0.5) -> bool:
    for other in boxes:
        x1, y1 = max(box[0], other[0]), max(box[1], other[1])
        x2, y2 = min(box[2], other[2]), min(box[3], other[3])
        inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
        union = (box[2] - box[0]) * (box[3] - box[1]) + (other[2] - other[0]) * (other[3] - other[1]) - inter
        if inter / union >= iou_floor:
            return True
    return False


def _scaled_scene(rgb: np.ndarray, factor: float, frame) -> np.ndarray:
    """``rgb`` resized by ``factor``, alone or pasted into a grey frame of (height, width)."""
    small = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    return small if frame is None else _paste(small, frame)


@pytest.mark.parametrize(
    "factor, frame", [(1.0, None), (2.5, None), (0.35, None), (0.35, (1080, 1920)), (0.25, (1080, 1920)), (0.3, (3000, 4000))]
)
def test_planned_schedule_finds_every_face_the_dense_one_finds(engine, dense_engine, t1_rgb, t1_faces, astronaut_path, factor, frame):
    """t1.jpg's six faces and the astronaut, 23 to 280 px wide, alone or in large frames: every one
    the dense schedule finds, the planned one finds too."""
    astronaut = load_image(astronaut_path)
    for rgb, faces in ((t1_rgb, [f.bbox_xyxy for f in t1_faces]), (astronaut, [engine.detect(astronaut)[0].bbox_xyxy])):
        scene = _scaled_scene(rgb, factor, frame)
        offset = np.array([frame[1] // 2, frame[0] // 3] * 2) if frame else np.zeros(4)
        expected = [np.asarray(box) * factor + offset for box in faces]
        planned = engine.detect_rows(scene)
        dense = dense_engine.detect_rows(scene)
        found_by_dense = [box for box in expected if _matched(box, dense[:, :4])]
        assert len(found_by_dense) >= len(expected) - 1  # the dense schedule may lose a turned head at 23 px
        missed = [box for box in found_by_dense if not _matched(box, planned[:, :4])]
        assert not missed, f"planned misses {len(missed)} of the {len(found_by_dense)} faces dense finds at x{factor} in {frame}"


def test_detection_stats_count_the_canvases_run(engine, t1_rgb):
    engine.detection_stats = DetectionStats()
    frame = _paste(cv2.resize(t1_rgb, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), (1080, 1920))
    engine.detect_rows(frame)
    engine.detect_rows(t1_rgb)
    stats = engine.detection_stats
    planned = sum(len(level.windows(*image.shape[:2])) for image in (frame, t1_rgb) for level in engine.plan(*image.shape[:2]))
    assert stats.images == 2
    assert stats.canvases == planned == sum(stats.canvas_shapes.values())
    assert stats.canvas_pixels == stats.canvases * 640 * 640  # YuNet runs 640x640 canvases only
    assert 0 < stats.model_seconds < stats.total_seconds


def test_a_face_across_a_tile_edge_is_found_once(engine, t1_rgb, t1_faces):
    """A small face straddling the seam between two tiles of the finest level is kept from one of them."""
    face = t1_faces[3]
    small = scale_face_to(face_crop(t1_rgb, face, margin=0.3), face.width, 30)
    shape = (1080, 1920)
    finest = engine.plan(*shape)[-1]
    columns = sorted({x0 for x0, _, _, _ in finest.windows(*shape)})
    assert len(columns) > 1
    seam = round((columns[0] + finest.window) / finest.scale)  # the first tile's right edge, in source pixels
    frame = np.full((*shape, 3), 90, np.uint8)
    x = seam - small.shape[1] // 2
    frame[400 : 400 + small.shape[0], x : x + small.shape[1]] = small
    found = engine.detect_rows(frame)
    assert len(found) == 1
    assert found[0, 0] < seam < found[0, 2]


def test_most_prominent_prefers_large_central_faces(t1_faces):
    big_corner = t1_faces[0].replace(bbox_xyxy=(0, 0, 400, 400))
    small_centre = t1_faces[1].replace(bbox_xyxy=(900, 700, 960, 760))
    assert most_prominent([small_centre, big_corner], (1500, 2000)) is big_corner


# -- real photos from ../shared/data ----------------------------------------------------------------


@pytest.mark.shared_data
def test_compreface_face_counts(engine, shared_data):
    folder = shared_data / "faces" / "compreface_samples"
    annotations = json.loads((folder / "annotations.json").read_text())["noses"]
    for name, noses in sorted(annotations.items()):
        image = load_image(folder / name)
        faces = engine.detect(image)
        for nose in noses:
            assert sum(_inside(nose, f.bbox_xyxy) for f in faces) == 1, f"{name}: nose {nose} not in exactly one box"
        extra = len(faces) - len(noses)
        # photos up to 1000 px: exact; 30-megapixel photos: at most one unannotated face (background people)
        assert extra == 0 if max(image.shape[:2]) <= 1000 else 0 <= extra <= 1, f"{name}: {len(faces)} faces for {len(noses)} annotated"


@pytest.mark.shared_data
def test_scrfd_runs_a_finer_level_as_one_canvas(scrfd_mfn_folder, tmp_path, t1_rgb, t1_faces):
    """SCRFD takes any input shape: a 1080p frame is searched on two canvases (the whole frame, and
    the frame scaled so 20 px faces become 16 px) instead of 29 tiles, and a 20 px face is found."""
    from workbench.config import Settings
    from workbench.engine import FaceEngine
    from workbench.models import import_pack

    import_pack(tmp_path / "models", scrfd_mfn_folder, name="mfn", preprocessing=Preprocessing("RGB", 127.5, 128.0))
    engine = FaceEngine.from_settings(Settings(home=tmp_path, pack="mfn"))
    face = t1_faces[3]
    frame = _paste(scale_face_to(face_crop(t1_rgb, face), face.width, 20), (1080, 1920))
    found = engine.detect_rows(frame)
    assert len(found) == 1 and 14 <= found[0, 2] - found[0, 0] <= 30
    assert engine.detection_stats.canvases == 2
    assert set(engine.detection_stats.canvas_shapes) == {(384, 640), (864, 1536)}


@pytest.mark.shared_data
def test_exif_sample_is_upright(engine, shared_data):
    face = engine.prominent_face(shared_data / "faces" / "formats" / "exif_rotation.jpg")
    assert face is not None
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[1] < nose[1] < mouth_left[1] and right_eye[1] < nose[1] < mouth_right[1]


@pytest.mark.shared_data
def test_tiff_sample(engine, shared_data):
    assert len(engine.analyse(shared_data / "faces" / "formats" / "tiff_image.tif")) == 1


def test_large_faces_keep_the_dense_schedules_embeddings(engine, dense_engine, astronaut_path, t1_rgb):
    """The first canvas never enlarges an image that fits it, so a face found there has the
    landmarks, and the embedding, the dense schedule gave it (a portrait enrolled before and after
    stays the same). Larger images are reduced bilinearly now, as InsightFace does, not by area."""
    astronaut = load_image(astronaut_path)
    portrait = cv2.resize(astronaut, (480, 480), interpolation=cv2.INTER_AREA)  # custody-like, as the ISS portraits
    group = cv2.resize(t1_rgb, (620, 429), interpolation=cv2.INTER_AREA)
    for rgb in (portrait, group):
        planned, dense = engine.analyse(rgb)[0], dense_engine.analyse(rgb)[0]
        assert float(planned.embedding @ dense.embedding) > 0.999


def test_prominent_only_stops_early_with_the_same_prominent_face(engine, astronaut_path, t1_rgb):
    """A portrait needs one canvas when only its most prominent face is wanted; the face is the same."""
    portrait = cv2.resize(load_image(astronaut_path), (480, 480), interpolation=cv2.INTER_AREA)
    assert len(engine.plan(480, 480)) > 1  # every face of min_face_px needs a finer level here
    for rgb in (portrait, t1_rgb, _paste(cv2.resize(t1_rgb, (640, 443)), (1080, 1920))):
        engine.detection_stats = DetectionStats()
        first = engine.detect(rgb, prominent_only=True)[0]
        early = engine.detection_stats.canvases
        engine.detection_stats = DetectionStats()
        every = engine.detect(rgb)
        assert first.bbox_xyxy == every[0].bbox_xyxy and np.array_equal(first.landmarks, every[0].landmarks)
        assert early <= engine.detection_stats.canvases
    engine.detection_stats = DetectionStats()
    engine.detect(portrait, prominent_only=True)
    assert engine.detection_stats.canvases == 1


def test_input_tensors_equal_opencvs_blob_of_the_padded_canvas(t1_rgb):
    """The detectors' own tensor fill gives exactly what cv2.dnn.blobFromImage gives for the window
    padded black onto its canvas: BGR 0..255 for YuNet, RGB (x - 127.5) / 128 for SCRFD."""
    from workbench.models.detectors import _InputTensors

    window = cv2.resize(t1_rgb, (1200, 830))[100:580, 200:700]  # a non-contiguous tile, 500x480
    padded = cv2.copyMakeBorder(window, 0, 640 - 480, 0, 640 - 500, cv2.BORDER_CONSTANT, value=0)
    tensors = _InputTensors()
    yunet = tensors.fill(window, (640, 640), (2, 1, 0), 0.0, 1.0)
    assert np.array_equal(yunet, cv2.dnn.blobFromImage(cv2.cvtColor(padded, cv2.COLOR_RGB2BGR)))
    scrfd = tensors.fill(window, (640, 640), (0, 1, 2), 127.5, 1 / 128)
    expected = cv2.dnn.blobFromImage(padded, 1 / 128, (640, 640), (127.5, 127.5, 127.5), swapRB=False)
    assert np.allclose(scrfd, expected, atol=1e-6)


def test_reused_input_tensor_is_padded_black_after_a_larger_window(t1_rgb):
    """The padding is written only when the window size changes: a small window after a large
    one (and again after another small one) still sits on a black canvas."""
    from workbench.models.detectors import _InputTensors

    tensors = _InputTensors()
    scene = cv2.resize(t1_rgb, (1200, 830))
    for rows, columns in ((640, 640), (360, 640), (360, 640), (480, 500), (640, 640), (480, 500)):
        window = scene[100 : 100 + rows, 50 : 50 + columns]
        padded = cv2.copyMakeBorder(window, 0, 640 - rows, 0, 640 - columns, cv2.BORDER_CONSTANT, value=0)
        got = tensors.fill(window, (640, 640), (2, 1, 0), 0.0, 1.0)
        assert np.array_equal(got, cv2.dnn.blobFromImage(cv2.cvtColor(padded, cv2.COLOR_RGB2BGR))), (rows, columns)
