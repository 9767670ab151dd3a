"""FaceEngine on real faces: detection, alignment, embeddings, quality, and degraded copies."""

from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.engine import (
    ARCFACE_TEMPLATE_112,
    align_face,
    most_prominent,
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
def test_pyramid_levels(shape, levels):
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
def test_exif_sample_is_upright(engine, shared_data):
    face = engine.prominent_face(shared_data / "faces" / "formats" / "exif_rotation.jpg")
    assert face is not None
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[1] < nose[1] < mouth_left[1] and right_eye[1] < nose[1] < mouth_right[1]


@pytest.mark.shared_data
def test_tiff_sample(engine, shared_data):
    assert len(engine.analyse(shared_data / "faces" / "formats" / "tiff_image.tif")) == 1
