"""Reading images: every format and colour layout a custody unit meets, and every kind of bad file."""

from __future__ import annotations

import time

import numpy as np
import pytest

from workbench.errors import ImageError
from workbench.images import load_image

from factories import (
    encode,
    grey,
    png_claiming_size,
    truncated_jpeg,
    with_exif_orientation,
)


@pytest.fixture(scope="module")
def astronaut(astronaut_path):
    return load_image(astronaut_path)


@pytest.mark.parametrize("fmt, params, tolerance", [
    ("JPEG", {"quality": 95}, 6.0),
    ("PNG", {}, 0.0),
    ("BMP", {}, 0.0),
    ("TIFF", {}, 0.0),
    ("WEBP", {"lossless": True}, 0.0),
])
def test_every_format_reads_back_the_same_pixels(tmp_path, astronaut, fmt, params, tolerance):
    path = tmp_path / f"custody.{fmt.lower()}"
    path.write_bytes(encode(astronaut, fmt, **params))
    rgb = load_image(path)
    assert rgb.shape == astronaut.shape and rgb.dtype == np.uint8
    assert np.abs(rgb.astype(int) - astronaut).mean() <= tolerance


def test_bytes_and_arrays_are_accepted(astronaut):
    assert np.array_equal(load_image(encode(astronaut, "PNG")), astronaut)
    assert np.array_equal(load_image(astronaut), astronaut)


def test_grey_image_becomes_three_equal_channels(astronaut):
    rgb = load_image(encode(grey(astronaut), "PNG"))
    assert rgb.shape == astronaut.shape
    assert np.array_equal(rgb[..., 0], rgb[..., 2])


def test_transparent_pixels_are_composited_on_white(astronaut):
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    rgba[:10, :10, 3] = 0
    rgb = load_image(encode(rgba, "PNG"))
    assert (rgb[:10, :10] == 255).all()
    assert np.array_equal(rgb[20:, 20:], astronaut[20:, 20:])


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(tmp_path, astronaut, orientation):
    path = with_exif_orientation(astronaut, tmp_path / "rotated.jpg", orientation)
    rgb = load_image(path)
    assert rgb.shape == astronaut.shape
    assert np.abs(rgb.astype(int) - astronaut).mean() < 6


def _bad_inputs(tmp_path, astronaut):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "truncated.jpg").write_bytes(truncated_jpeg(astronaut))
    (tmp_path / "notes.jpg").write_text("custody record 123: not an image\n")
    (tmp_path / "huge.png").write_bytes(png_claiming_size(20000, 20000))
    (tmp_path / "large.png").write_bytes(png_claiming_size(12000, 11000))
    (tmp_path / "folder.jpg").mkdir()
    return {
        "empty.jpg": "empty",
        "truncated.jpg": "truncated",
        "notes.jpg": "not an image",
        "huge.png": "megapixel limit",
        "large.png": "12000x11000",
        "folder.jpg": "folder",
        "missing.jpg": "no such file",
    }


def test_bad_files_give_errors_that_name_the_file_and_problem(tmp_path, astronaut):
    for name, problem in _bad_inputs(tmp_path, astronaut).items():
        path = tmp_path / name
        with pytest.raises(ImageError) as info:
            load_image(path)
        message = str(info.value)
        assert str(path) in message, message
        assert problem in message, message


def test_huge_image_is_refused_from_its_header_without_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_claiming_size(20000, 20000))
    start = time.perf_counter()
    with pytest.raises(ImageError, match="megapixel limit"):
        load_image(path)
    assert time.perf_counter() - start < 1.0  # 400 megapixels would take far longer to decode


def test_file_size_limit(tmp_path, astronaut):
    path = tmp_path / "big.png"
    path.write_bytes(encode(astronaut, "PNG"))
    with pytest.raises(ImageError, match="MB limit"):
        load_image(path, max_bytes=1000)


@pytest.mark.parametrize("array, problem", [
    (np.zeros((10, 10, 3), np.float32), "uint8"),
    (np.zeros((10, 10, 2), np.uint8), "expected"),
    (np.zeros((10,), np.uint8), "expected"),
])
def test_bad_arrays_are_refused(array, problem):
    with pytest.raises(ImageError, match=problem):
        load_image(array)
